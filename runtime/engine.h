// The engine's breath loop: every app's pull, then every push entry in topological order (once a
// breath, as Snabb), repeated for entries with packets waiting while packets move. Each call is
// bracketed by TSC reads (one per call, shared with the next) and followed by a sync of the app's
// links, so cycles and packets per app are exact and always on. The graph itself (what to run, in
// which order) is decided by the Lua engine (engine.lua) and handed over with set_graph().
#pragma once
#include <stdint.h>

#ifdef __cplusplus
#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "runtime/link.h"
extern "C" {
#endif

// BEGIN FFI
/* Per-app counters, kept across restarts of the app. */
struct app_stats {
  uint64_t calls;
  uint64_t cycles;
  uint64_t packets_in;
  uint64_t packets_out;
  uint64_t errors;
  /* Packets freed minus packets allocated (or cloned) during the app's pull, push and tick, not
     counting packets a full output link dropped (that link's txdrop): what the app dropped
     (positive: a sink frees all it receives) or made (negative: a source, a Tee's clones). */
  int64_t freed;
  /* Cycles of the calls that moved no packet (polling with nothing to do), part of cycles: cycles
     per packet are (cycles - idle_cycles) / packets. */
  uint64_t idle_cycles;
};

enum { ENGINE_BREATH_BUCKETS = 512 };

struct engine_stats {
  uint64_t breaths;
  uint64_t cycles;  /* inside app calls and link syncs */
  uint64_t packets; /* received by apps */
  /* How long breaths that moved packets took, in TSC cycles: a histogram with 8 buckets per
     power of two (12.5% resolution); snabb_engine_breath_bucket_limit gives each bucket's range. */
  uint64_t breath_cycles[ENGINE_BREATH_BUCKETS];
  /* CLOCK_MONOTONIC at the engine's last reading of it (every 10 us while it runs breaths; 0:
     never ran): how long ago the engine last breathed, for snabb ps. */
  uint64_t heartbeat_ns;
};

struct engine_stats* snabb_engine_stats(void);
/* The first cycle count above histogram bucket i. */
uint64_t snabb_engine_breath_bucket_limit(int32_t i);
/* TSC ticks per second (measured once, against CLOCK_MONOTONIC). */
double snabb_tsc_hz(void);
/* The TSC now (for Lua, which has no rdtsc). */
uint64_t snabb_rdtsc(void);
/* Name of the app whose method is running, or "" outside app calls. */
const char* snabb_engine_current_app(void);
/* The failures of the last run or breath: how many, and the app, method and message of failure i
   (field 0, 1, 2); every one, when several apps failed in the same breath. */
int32_t snabb_engine_failure_count(void);
const char* snabb_engine_failure(int32_t i, int32_t field);

/* A pull or push a Lua app hands to C (its c_pull/c_push field, with c_arg): the engine calls it
   directly, without entering Lua. */
typedef void (*app_c_method)(void* arg);
// END FFI

#ifdef __cplusplus
}

namespace snabb::runtime {

// One app as the engine sees it. Lua apps (vm/lua_app.h) and native C++ apps implement this.
// pull/push may throw; the engine then takes the app out of the breath and reports the error.
class App {
 public:
  virtual ~App() = default;
  virtual bool has_pull() const { return false; }
  virtual bool has_push() const { return false; }
  virtual void pull() {}
  virtual void push() {}
  // Push entry `entry` of the app's node (AppNode::push_entries): a Lua app's push or one of its
  // push_link methods, called with that entry's link; native apps have one push.
  virtual void push_entry(size_t entry) { push(); }
  // Native apps see their ports here; Lua apps use self.input/self.output instead.
  virtual void set_links(std::vector<Link*> inputs, std::vector<Link*> outputs) {}
};

// One push call of a breath: the app's push (or a push_link method) for a run of its input links.
// Every entry is called once a breath, as Snabb calls push, and again in the same breath (up to
// kMaxPushRounds) while packets wait on one of its links.
struct PushEntry {
  std::vector<Link*> links;
};

struct AppNode {
  std::string name;
  int profile_zone = 0;  // observe/vmprofile's zone for samples taken during this app's calls
  App* app = nullptr;    // owned elsewhere (Lua registry or the native app table)
  app_stats* stats = nullptr;
  std::vector<Link*> inputs;
  std::vector<Link*> outputs;
  // In call order; empty: one entry for all inputs when the app has push and inputs.
  std::vector<PushEntry> push_entries;
  bool failed = false;
};

struct AppFailure {
  std::string app;
  std::string method;
  std::string message;
};

class Engine {
 public:
  // Nodes in topological order (every app before the apps it feeds, where the graph allows).
  void set_graph(std::vector<AppNode> nodes);
  // Runs breaths until the monotonic clock passes deadline_ns. Returns false when an app failed;
  // last_failure() says which; that app is skipped until set_graph() brings it back. hz > 0
  // paces the breaths to that many a second (Snabb's engine.Hz), sleeping in between.
  bool run_until(uint64_t deadline_ns, bool busywait, double hz = 0);
  // One breath; returns the number of packets moved.
  uint64_t breathe();
  const AppFailure& last_failure() const { return failures_.back(); }
  // Every failure since the run or breath started (several apps may fail in one breath).
  const std::vector<AppFailure>& failures() const { return failures_; }
  bool failed() const { return failed_; }
  void clear_failure() {
    failed_ = false;
    failures_.clear();
  }
  // Makes run_until return after the current breath; safe to call from a signal handler.
  static void request_stop() { stop_requested_ = 1; }
  static bool stop_requested() { return stop_requested_; }
  static void clear_stop_request() { stop_requested_ = 0; }
  const char* current_app() const { return current_ ? current_->name.c_str() : ""; }
  // "pull" or "push" during an app call (read by vm/safety's signal handlers).
  const char* current_method() const { return current_method_ == Method::kPull ? "pull" : "push"; }
  engine_stats& stats() { return *stats_; }
  // Where the counters live from now on (a stats file: runtime/stats.h), their values copied
  // there; nullptr: back in the engine's own memory.
  void set_stats(engine_stats* s);

 private:
  enum class Method { kPull, kPush };
  // `now` is the TSC when the breath or call starts; both leave it at their end.
  uint64_t breathe(uint64_t& now);
  bool run_paced(uint64_t deadline_ns, uint64_t interval_ns);
  uint64_t call(AppNode& node, Method method, uint64_t& now, size_t entry = 0);

  std::vector<AppNode> nodes_;
  std::vector<AppNode*> pullers_;
  std::vector<AppNode*> pushers_;
  AppNode* current_ = nullptr;
  Method current_method_ = Method::kPull;
  bool failed_ = false;
  uint64_t next_breath_ns_ = 0;  // run_paced's next breath (monotonic_ns)
  std::vector<AppFailure> failures_;
  engine_stats own_stats_{};
  engine_stats* stats_ = &own_stats_;
  static inline volatile sig_atomic_t stop_requested_ = 0;
};

// The histogram bucket of a breath that took `cycles` (see engine_stats.breath_cycles).
int breath_bucket(uint64_t cycles);

// The vmprofile zone of the app being called, 0 between calls; read by observe/vmprofile's signal
// handler, so it is a plain volatile int set around each call.
inline volatile sig_atomic_t current_profile_zone = 0;

// The process's engine (one per worker process, as there is one LuaJIT VM per process).
Engine& engine();

}  // namespace snabb::runtime
#endif
