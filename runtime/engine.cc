#include "runtime/engine.h"

#include <time.h>

#include <algorithm>
#include <exception>

#include "runtime/clock.h"
#include "runtime/packet.h"
#include "runtime/stats.h"

namespace snabb::runtime {
namespace {

// A breath repeats its push round while packets keep moving (feedback loops, apps that leave
// packets queued), but never more than this many times.
constexpr int kMaxPushRounds = 4;

bool any_ready(const std::vector<Link*>& links) {
  for (const Link* l : links) {
    if (!link_empty(l)) return true;
  }
  return false;
}

// Packets out of the free list: in apps, in links, or leaked. The pool may grow during an app
// call (allocation from an empty free list), which adds to allocated and free alike.
int64_t packets_in_use() {
  static packet_freelist* const freelist = snabb_packet_freelist();
  return freelist ? snabb_packet_allocated() - freelist->nfree : 0;
}

}  // namespace

void Engine::set_graph(std::vector<AppNode> nodes) {
  nodes_ = std::move(nodes);
  pullers_.clear();
  pushers_.clear();
  for (AppNode& node : nodes_) {
    if (node.app->has_pull()) pullers_.push_back(&node);
    if (node.push_entries.empty() && node.app->has_push() && !node.inputs.empty()) {
      node.push_entries.push_back({node.inputs});
    }
    if (!node.push_entries.empty()) pushers_.push_back(&node);
  }
}

uint64_t Engine::call(AppNode& node, Method method, uint64_t& now, size_t entry) {
  current_ = &node;
  current_method_ = method;
  current_profile_zone = node.profile_zone;
  const uint64_t start = now;
  const int64_t in_use = packets_in_use();
  try {
    method == Method::kPull ? node.app->pull() : node.app->push_entry(entry);
  } catch (const std::exception& e) {
    node.failed = true;
    node.stats->errors++;
    failed_ = true;
    failures_.push_back({node.name, method == Method::kPull ? "pull" : "push", e.what()});
  }
  uint64_t in = 0, out = 0, dropped = 0;
  for (Link* l : node.inputs) {
    const LinkDelta d = link_sync(l);
    in += d.read;
    // A link from the app back to itself: this sync folds its writes too, so count them here.
    if (std::find(node.outputs.begin(), node.outputs.end(), l) != node.outputs.end()) {
      out += d.written;
      dropped += d.dropped;
    }
  }
  for (Link* l : node.outputs) {
    const LinkDelta d = link_sync(l);
    out += d.written;
    dropped += d.dropped;
  }
  // A full link frees what the app sends it during the call: that is the link's txdrop.
  const int64_t freed = in_use - packets_in_use() - static_cast<int64_t>(dropped);
  now = rdtsc();
  const uint64_t cycles = now - start;
  current_ = nullptr;
  current_profile_zone = 0;
  app_stats& s = *node.stats;
  s.calls++;
  s.cycles += cycles;
  s.packets_in += in;
  s.packets_out += out;
  s.freed += freed;
  if (in + out == 0) s.idle_cycles += cycles;
  stats_->cycles += cycles;
  stats_->packets += in;
  return in + out;
}

int breath_bucket(uint64_t cycles) {
  if (cycles < 8) return static_cast<int>(cycles);
  const int exponent = 63 - __builtin_clzll(cycles);  // >= 3
  const int mantissa = static_cast<int>(cycles >> (exponent - 3)) & 7;
  return 8 + (exponent - 3) * 8 + mantissa;
}

uint64_t Engine::breathe() {
  uint64_t now = rdtsc();
  return breathe(now);
}

// One TSC read per app call: the end of one call is the start of the next, so the few cycles of
// engine bookkeeping between two calls count towards the second. (A read costs ~30 cycles here,
// which is a lot for a breath of a few packets.)
uint64_t Engine::breathe(uint64_t& now) {
  const uint64_t start = now;
  uint64_t moved = 0;
  for (AppNode* node : pullers_) {
    if (!node->failed) moved += call(*node, Method::kPull, now);
  }
  // The first round calls every entry, as Snabb calls push every breath; later rounds only those
  // with packets waiting.
  for (int round = 0; round < kMaxPushRounds; ++round) {
    uint64_t moved_this_round = 0;
    for (AppNode* node : pushers_) {
      const size_t n = node->push_entries.size();
      for (size_t e = 0; e < n && !node->failed; ++e) {
        if (round == 0 || any_ready(node->push_entries[e].links)) {
          moved_this_round += call(*node, Method::kPush, now, e);
        }
      }
    }
    moved += moved_this_round;
    if (moved_this_round == 0) break;
  }
  if (now == start) now = rdtsc();  // no app was called: keep the clock moving all the same
  stats_->breaths++;
  packet_pool_rebalance();  // in a group: gives surplus free packets back (packet.h)
  if (moved) stats_->breath_cycles[breath_bucket(now - start)]++;
  return moved;
}

bool Engine::run_until(uint64_t deadline_ns, bool busywait, double hz) {
  clear_failure();
  if (hz > 0) return run_paced(deadline_ns, static_cast<uint64_t>(1e9 / hz));
  long idle_sleep_ns = 0;
  // The wall clock is read only when 10 us of TSC have passed since the last reading.
  const uint64_t clock_interval = static_cast<uint64_t>(tsc_hz() / 100'000);
  uint64_t now = rdtsc(), next_clock_read = now;
  do {
    const uint64_t moved = breathe(now);
    if (failed_) return false;
    if (!busywait) {
      // Back off while idle, up to 100 us, and return to full speed at the first packet.
      idle_sleep_ns = moved ? 0 : std::min<long>(idle_sleep_ns + 1000, 100'000);
      if (idle_sleep_ns) {
        const timespec ts{0, idle_sleep_ns};
        nanosleep(&ts, nullptr);
        now = rdtsc();
      }
    }
    if (now >= next_clock_read) {
      const uint64_t t = monotonic_ns();
      stats_->heartbeat_ns = t;
      if (t >= deadline_ns) break;
      next_clock_read = now + clock_interval;
    }
  } while (!stop_requested_);
  return true;
}

// One breath every interval_ns, sleeping in between (a late breath starts the rhythm again).
bool Engine::run_paced(uint64_t deadline_ns, uint64_t interval_ns) {
  do {
    uint64_t t = monotonic_ns();
    stats_->heartbeat_ns = t;
    if (next_breath_ns_ > t) {
      const uint64_t wait = std::min(next_breath_ns_, deadline_ns) - t;
      const timespec ts{static_cast<time_t>(wait / 1'000'000'000),
                        static_cast<long>(wait % 1'000'000'000)};
      nanosleep(&ts, nullptr);
      t = monotonic_ns();
      if (t < next_breath_ns_) break;  // the deadline came first
    }
    next_breath_ns_ = std::max(next_breath_ns_ + interval_ns, t);
    breathe();
    if (failed_) return false;
  } while (monotonic_ns() < deadline_ns && !stop_requested_);
  return true;
}

void Engine::set_stats(engine_stats* s) {
  if (!s) s = &own_stats_;
  if (s != stats_) *s = *stats_;
  stats_ = s;
}

Engine& engine() {
  static Engine instance;
  return instance;
}

}  // namespace snabb::runtime

extern "C" {
engine_stats* snabb_engine_stats(void) { return &snabb::runtime::engine().stats(); }
void snabb_engine_set_stats(engine_stats* s) { snabb::runtime::engine().set_stats(s); }
const char* snabb_engine_current_app(void) { return snabb::runtime::engine().current_app(); }
int32_t snabb_engine_failure_count(void) {
  return static_cast<int32_t>(snabb::runtime::engine().failures().size());
}
const char* snabb_engine_failure(int32_t i, int32_t field) {
  const auto& failures = snabb::runtime::engine().failures();
  if (i < 0 || static_cast<size_t>(i) >= failures.size()) return "";
  const snabb::runtime::AppFailure& f = failures[static_cast<size_t>(i)];
  return (field == 0 ? f.app : field == 1 ? f.method : f.message).c_str();
}
uint64_t snabb_engine_breath_bucket_limit(int32_t i) {
  if (i < 8) return static_cast<uint64_t>(i) + 1;
  const int exponent = (i - 8) / 8 + 3, mantissa = (i - 8) % 8;
  return exponent == 63 && mantissa == 7 ? UINT64_MAX : uint64_t{9u + mantissa} << (exponent - 3);
}
}
