#include "runtime/engine.h"

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "runtime/clock.h"
#include "runtime/link.h"
#include "runtime/packet.h"

namespace snabb::runtime {
namespace {

// Every app call, as "name.method", in the order the engine made them.
using CallLog = std::vector<std::string>;

class TestApp : public App {
 public:
  TestApp(std::string name, CallLog* log) : name_(std::move(name)), log_(log) {}
  void set_links(std::vector<Link*> inputs, std::vector<Link*> outputs) override {
    inputs_ = std::move(inputs);
    outputs_ = std::move(outputs);
  }

 protected:
  void note(const char* method) { log_->push_back(name_ + "." + method); }

  std::string name_;
  CallLog* log_;
  std::vector<Link*> inputs_;
  std::vector<Link*> outputs_;
};

// Transmits `per_pull` packets of `length` bytes on every output per pull.
class Source : public TestApp {
 public:
  Source(std::string name, CallLog* log, int per_pull, uint16_t length = 100)
      : TestApp(std::move(name), log), per_pull_(per_pull), length_(length) {}
  bool has_pull() const override { return true; }
  void set_per_pull(int n) { per_pull_ = n; }
  void pull() override {
    note("pull");
    for (Link* l : outputs_) {
      for (int i = 0; i < per_pull_; ++i) {
        packet* p = packet_allocate();
        p->length = length_;
        link_transmit(l, p);
      }
    }
  }

 private:
  int per_pull_;
  uint16_t length_;
};

// Moves everything from input i to output i.
class Forwarder : public TestApp {
 public:
  using TestApp::TestApp;
  bool has_push() const override { return true; }
  void push() override {
    note("push");
    for (size_t i = 0; i < inputs_.size(); ++i) {
      while (!link_empty(inputs_[i])) link_transmit(outputs_[i], link_receive(inputs_[i]));
    }
  }
};

class Sink : public TestApp {
 public:
  using TestApp::TestApp;
  bool has_push() const override { return true; }
  void push() override {
    note("push");
    for (Link* l : inputs_) {
      while (!link_empty(l)) {
        packet_free(link_receive(l));
        ++received_;
      }
    }
  }
  uint64_t received() const { return received_; }

 private:
  uint64_t received_ = 0;
};

// Frees every fifth packet it receives and forwards the others (as an NF that drops 20%).
class Dropper : public TestApp {
 public:
  using TestApp::TestApp;
  bool has_push() const override { return true; }
  void push() override {
    note("push");
    while (!link_empty(inputs_[0])) {
      packet* p = link_receive(inputs_[0]);
      if (++seen_ % 5 == 0) {
        packet_free(p);
      } else {
        link_transmit(outputs_[0], p);
      }
    }
  }

 private:
  uint64_t seen_ = 0;
};

// Takes one packet, then fails.
class ThrowingPusher : public TestApp {
 public:
  using TestApp::TestApp;
  bool has_push() const override { return true; }
  void push() override {
    note("push");
    packet_free(link_receive(inputs_[0]));
    throw std::runtime_error("bad packet in " + name_);
  }
};

class ThrowingPuller : public TestApp {
 public:
  using TestApp::TestApp;
  bool has_pull() const override { return true; }
  void pull() override {
    note("pull");
    throw std::runtime_error("device gone");
  }
};

// Builds a graph of test apps and owns everything the engine only points to.
class EngineTest : public ::testing::Test {
 protected:
  void TearDown() override {
    engine_.set_graph({});
    for (Link* l : links_) snabb_link_delete(l);
    // No packet leaked: everything allocated is back in the free list.
    EXPECT_EQ(snabb_packet_freelist()->nfree, snabb_packet_allocated());
  }

  template <typename T, typename... Args>
  T* add(std::string name, Args&&... args) {
    auto app = std::make_unique<T>(name, &log_, std::forward<Args>(args)...);
    T* raw = app.get();
    apps_.push_back(std::move(app));
    stats_.emplace_back();
    AppNode node;
    node.name = std::move(name);
    node.app = raw;
    node.stats = &stats_.back();
    nodes_.push_back(std::move(node));
    return raw;
  }

  // Adds a link from an output of app `from` to an input of app `to`.
  Link* connect(const std::string& from, const std::string& to) {
    Link* l = snabb_link_new();
    links_.push_back(l);
    node(from).outputs.push_back(l);
    node(to).inputs.push_back(l);
    return l;
  }

  AppNode& node(const std::string& name) {
    for (AppNode& n : nodes_) {
      if (n.name == name) return n;
    }
    throw std::logic_error("no app " + name);
  }
  app_stats& stats(const std::string& name) { return *node(name).stats; }

  // Hands the graph, in the order the apps were added, to the engine.
  void start() {
    for (AppNode& n : nodes_) n.app->set_links(n.inputs, n.outputs);
    engine_.set_graph(nodes_);
  }

  Engine engine_;
  CallLog log_;
  std::vector<std::unique_ptr<App>> apps_;
  std::deque<app_stats> stats_;  // deque: stable addresses
  std::vector<AppNode> nodes_;
  std::vector<Link*> links_;
};

TEST_F(EngineTest, ChainDeliversWithinOneBreath) {
  // Longer than the engine's push-round limit, so only topological order can get packets through.
  constexpr int kPerPull = 50;
  add<Source>("src", kPerPull);
  const std::vector<std::string> hops = {"f1", "f2", "f3", "f4", "f5", "f6"};
  for (const std::string& h : hops) add<Forwarder>(h);
  Sink* sink = add<Sink>("sink");
  connect("src", "f1");
  for (size_t i = 0; i + 1 < hops.size(); ++i) connect(hops[i], hops[i + 1]);
  connect("f6", "sink");
  start();

  const uint64_t moved = engine_.breathe();
  EXPECT_EQ(sink->received(), static_cast<uint64_t>(kPerPull));
  // Each of the 7 links carried kPerPull packets: counted once written and once read.
  EXPECT_EQ(moved, 2u * 7 * kPerPull);
  const CallLog expected = {"src.pull", "f1.push", "f2.push", "f3.push",
                            "f4.push",  "f5.push", "f6.push", "sink.push"};
  EXPECT_EQ(log_, expected);
  for (Link* l : links_) EXPECT_TRUE(link_empty(l));
}

TEST_F(EngineTest, PushOrderFollowsGraphOrder) {
  add<Source>("src", 3);
  add<Sink>("b");
  add<Sink>("a");
  connect("src", "b");
  connect("src", "a");
  start();
  engine_.breathe();
  EXPECT_EQ(log_, (CallLog{"src.pull", "b.push", "a.push"}));
}

// As in Snabb, push is called every breath, packets or not (Snabb apps rely on it: e.g. ones that
// read a link set up by hand, or send on a timer from push); only the extra rounds wait for input.
TEST_F(EngineTest, PushCalledEveryBreath) {
  add<Source>("idle", 0);
  add<Sink>("sink");
  connect("idle", "sink");
  start();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(engine_.breathe(), 0u);
  EXPECT_EQ(stats("idle").calls, 5u);
  EXPECT_EQ(stats("sink").calls, 5u);
  CallLog expected;
  for (int i = 0; i < 5; ++i) expected.insert(expected.end(), {"idle.pull", "sink.push"});
  EXPECT_EQ(log_, expected);
  // Polling that moves nothing is idle: all of the source's cycles, and of the sink's.
  EXPECT_GT(stats("idle").cycles, 0u);
  EXPECT_EQ(stats("idle").idle_cycles, stats("idle").cycles);
  EXPECT_EQ(stats("sink").idle_cycles, stats("sink").cycles);
}

// An app without input links is not pushed (Snabb pushes per input link).
TEST_F(EngineTest, PushNeedsAnInputLink) {
  add<Sink>("alone");
  start();
  for (int i = 0; i < 3; ++i) engine_.breathe();
  EXPECT_EQ(stats("alone").calls, 0u);
}

// A source that is done after a few pulls (as PcapReader at the end of its file) keeps being
// polled: those calls count as idle, apart from the ones that sent packets.
TEST_F(EngineTest, IdleCallsAreCountedApart) {
  Source* src_app = add<Source>("src", 10);
  add<Sink>("sink");
  connect("src", "sink");
  start();
  for (int i = 0; i < 3; ++i) engine_.breathe();
  const uint64_t busy_cycles = stats("src").cycles;
  EXPECT_EQ(stats("src").idle_cycles, 0u);
  src_app->set_per_pull(0);  // done: nothing left to send
  for (int i = 0; i < 7; ++i) engine_.breathe();
  const app_stats& src = stats("src");
  EXPECT_EQ(src.calls, 10u);
  EXPECT_EQ(src.packets_out, 30u);
  EXPECT_GT(src.idle_cycles, 0u);
  EXPECT_EQ(src.cycles - src.idle_cycles, busy_cycles);
  EXPECT_EQ(stats("sink").calls, 10u);  // pushed every breath: 7 idle calls
  EXPECT_GT(stats("sink").idle_cycles, 0u);
}

TEST_F(EngineTest, PushCalledOncePerBreathWhenDrained) {
  add<Source>("src", 10);
  add<Sink>("sink");
  connect("src", "sink");
  start();
  for (int i = 0; i < 4; ++i) engine_.breathe();
  // The sink drains its input in one call, so no further push round calls it again.
  EXPECT_EQ(stats("sink").calls, 4u);
}

TEST_F(EngineTest, CountsPacketsCallsAndCycles) {
  constexpr int kPerPull = 40;
  constexpr int kBreaths = 25;
  constexpr uint16_t kLength = 321;
  add<Source>("src", kPerPull, kLength);
  add<Forwarder>("fwd");
  Sink* sink = add<Sink>("sink");
  Link* in = connect("src", "fwd");
  Link* out = connect("fwd", "sink");
  start();
  uint64_t moved = 0;
  for (int i = 0; i < kBreaths; ++i) moved += engine_.breathe();

  const uint64_t n = uint64_t{kPerPull} * kBreaths;
  EXPECT_EQ(sink->received(), n);
  EXPECT_EQ(moved, 4 * n);

  const app_stats& src = stats("src");
  EXPECT_EQ(src.calls, static_cast<uint64_t>(kBreaths));
  EXPECT_EQ(src.packets_in, 0u);
  EXPECT_EQ(src.packets_out, n);
  const app_stats& fwd = stats("fwd");
  EXPECT_EQ(fwd.calls, static_cast<uint64_t>(kBreaths));
  EXPECT_EQ(fwd.packets_in, n);
  EXPECT_EQ(fwd.packets_out, n);
  const app_stats& snk = stats("sink");
  EXPECT_EQ(snk.calls, static_cast<uint64_t>(kBreaths));
  EXPECT_EQ(snk.packets_in, n);
  EXPECT_EQ(snk.packets_out, 0u);
  uint64_t app_cycles = 0;
  for (const char* name : {"src", "fwd", "sink"}) {
    EXPECT_GT(stats(name).cycles, 0u) << name;
    EXPECT_EQ(stats(name).errors, 0u) << name;
    EXPECT_EQ(stats(name).idle_cycles, 0u) << name;  // every call moved packets
    app_cycles += stats(name).cycles;
  }

  const engine_stats& es = engine_.stats();
  EXPECT_EQ(es.breaths, static_cast<uint64_t>(kBreaths));
  EXPECT_EQ(es.packets, 2 * n);  // received by fwd and by sink
  EXPECT_EQ(es.cycles, app_cycles);

  // The engine synced the links after each call.
  for (Link* l : {in, out}) {
    EXPECT_EQ(l->stats.txpackets, n);
    EXPECT_EQ(l->stats.rxpackets, n);
    EXPECT_EQ(l->stats.txbytes, n * kLength);
    EXPECT_EQ(l->stats.rxbytes, n * kLength);
    EXPECT_EQ(l->stats.txdrop, 0u);
  }
  EXPECT_FALSE(engine_.failed());
}

// An app that loops back into itself: its packets are both received and sent by it.
class Reflector : public TestApp {
 public:
  using TestApp::TestApp;
  bool has_push() const override { return true; }
  void push() override {
    note("push");
    // Sends each packet back once (marked by length 1), then drops it, so the loop ends. Only
    // what was queued at the start of the call is taken, so looped packets wait for the next call.
    std::vector<uint32_t> queued;
    for (Link* l : inputs_) queued.push_back(link_nreadable(l));
    for (size_t i = 0; i < inputs_.size(); ++i) {
      for (uint32_t n = 0; n < queued[i]; ++n) {
        packet* p = link_receive(inputs_[i]);
        if (p->length == 1) {
          packet_free(p);
        } else {
          p->length = 1;
          link_transmit(outputs_[0], p);
        }
      }
    }
  }
};

// freed: what each app freed minus what it allocated, by the free list's count around its calls;
// packets a full link dropped are the link's txdrop, not the sender's.
TEST_F(EngineTest, FreedCountsWhatEachAppDropsOrMakes) {
  constexpr int kPerPull = 100;
  constexpr int kBreaths = 10;
  add<Source>("src", kPerPull);
  add<Dropper>("drop");
  add<Sink>("sink");
  connect("src", "drop");
  connect("drop", "sink");
  start();
  for (int i = 0; i < kBreaths; ++i) engine_.breathe();
  const int64_t n = int64_t{kPerPull} * kBreaths;
  EXPECT_EQ(stats("src").freed, -n);
  EXPECT_EQ(stats("drop").freed, n / 5);
  EXPECT_EQ(stats("sink").freed, n - n / 5);
  EXPECT_EQ(stats("drop").packets_in - stats("drop").packets_out, uint64_t(n / 5));
}

TEST_F(EngineTest, FreedLeavesLinkDropsToTheLink) {
  constexpr int kPerPull = LINK_RING_SIZE + 76;
  add<Source>("src", kPerPull);
  add<Sink>("sink");
  Link* l = connect("src", "sink");
  start();
  engine_.breathe();
  EXPECT_EQ(l->stats.txdrop, 76u);
  EXPECT_EQ(stats("src").freed, -kPerPull);  // it allocated them all; the link freed 76
  EXPECT_EQ(stats("src").packets_out, uint64_t{LINK_RING_SIZE});
  EXPECT_EQ(stats("sink").freed, LINK_RING_SIZE);
}

TEST_F(EngineTest, SelfLoopCountsBothDirections) {
  add<Source>("src", 5);
  add<Reflector>("loop");
  connect("src", "loop");
  connect("loop", "loop");
  start();
  engine_.breathe();
  // Round 1: 5 in from src, 5 out to itself; round 2: those 5 back in, dropped.
  EXPECT_EQ(stats("loop").calls, 2u);
  EXPECT_EQ(stats("loop").packets_in, 10u);
  EXPECT_EQ(stats("loop").packets_out, 5u);
}

TEST_F(EngineTest, FailingPushIsReportedAndSkipped) {
  constexpr int kPerPull = 8;
  add<Source>("src", kPerPull);
  add<ThrowingPusher>("bad");
  Sink* bad_sink = add<Sink>("bad_sink");
  add<Forwarder>("fwd");
  Sink* sink = add<Sink>("sink");
  connect("src", "bad");
  connect("bad", "bad_sink");
  connect("src", "fwd");
  connect("fwd", "sink");
  start();

  engine_.breathe();
  ASSERT_TRUE(engine_.failed());
  const AppFailure& f = engine_.last_failure();
  EXPECT_EQ(f.app, "bad");
  EXPECT_EQ(f.method, "push");
  EXPECT_EQ(f.message, "bad packet in bad");
  const app_stats& bad = stats("bad");
  EXPECT_EQ(bad.errors, 1u);
  EXPECT_EQ(bad.calls, 1u);
  EXPECT_EQ(bad.packets_in, 1u);  // links are synced even when the call throws
  // The rest of the breath went on.
  EXPECT_EQ(sink->received(), static_cast<uint64_t>(kPerPull));

  engine_.clear_failure();
  for (int i = 0; i < 10; ++i) engine_.breathe();
  EXPECT_FALSE(engine_.failed());
  EXPECT_EQ(bad.calls, 1u) << "a failed app must be skipped";
  EXPECT_EQ(bad.errors, 1u);
  EXPECT_EQ(bad_sink->received(), 0u);
  EXPECT_EQ(sink->received(), 11u * kPerPull);
  EXPECT_EQ(stats("fwd").calls, 11u);
  // The failed app's input backs up (TearDown checks those packets are not leaked).
  EXPECT_EQ(link_nreadable(links_[0]), 11u * kPerPull - 1);
}

TEST_F(EngineTest, FailingPullIsReported) {
  add<ThrowingPuller>("nic");
  add<Source>("src", 2);
  Sink* sink = add<Sink>("sink");
  connect("nic", "sink");
  connect("src", "sink");
  start();
  engine_.breathe();
  ASSERT_TRUE(engine_.failed());
  EXPECT_EQ(engine_.last_failure().app, "nic");
  EXPECT_EQ(engine_.last_failure().method, "pull");
  EXPECT_EQ(engine_.last_failure().message, "device gone");
  EXPECT_EQ(sink->received(), 2u);
  engine_.breathe();
  EXPECT_EQ(stats("nic").calls, 1u);
  EXPECT_EQ(stats("nic").errors, 1u);
  EXPECT_EQ(sink->received(), 4u);
}

// Two apps failing in one breath: both are reported, not only the last.
TEST_F(EngineTest, EveryFailureOfABreathIsReported) {
  add<ThrowingPuller>("nic");
  add<Source>("src", 2);
  add<ThrowingPusher>("bad");
  connect("src", "bad");
  start();
  engine_.breathe();
  ASSERT_EQ(engine_.failures().size(), 2u);
  EXPECT_EQ(engine_.failures()[0].app, "nic");
  EXPECT_EQ(engine_.failures()[0].method, "pull");
  EXPECT_EQ(engine_.failures()[1].app, "bad");
  EXPECT_EQ(engine_.failures()[1].message, "bad packet in bad");
  EXPECT_EQ(engine_.last_failure().app, "bad");
  engine_.clear_failure();
  EXPECT_TRUE(engine_.failures().empty());
}

TEST_F(EngineTest, RunUntilStopsAtFailure) {
  add<Source>("src", 4);
  add<ThrowingPusher>("bad");
  Sink* sink = add<Sink>("sink");
  connect("src", "bad");
  connect("src", "sink");
  start();
  const uint64_t start_ns = monotonic_ns();
  EXPECT_FALSE(engine_.run_until(start_ns + 10'000'000'000, true));
  EXPECT_LT(monotonic_ns() - start_ns, 5'000'000'000u) << "run_until kept running after a failure";
  EXPECT_EQ(engine_.stats().breaths, 1u);
  EXPECT_EQ(engine_.last_failure().app, "bad");
  EXPECT_EQ(engine_.last_failure().method, "push");

  // With the failed app skipped, a new run goes to its deadline and the rest keeps moving.
  EXPECT_TRUE(engine_.run_until(monotonic_ns() + 20'000'000, false));
  EXPECT_GT(engine_.stats().breaths, 1u);
  EXPECT_EQ(stats("bad").calls, 1u);
  EXPECT_EQ(sink->received(), 4 * engine_.stats().breaths);
}

TEST_F(EngineTest, RunUntilRunsToDeadline) {
  add<Source>("src", 1);
  Sink* sink = add<Sink>("sink");
  connect("src", "sink");
  start();
  const uint64_t deadline = monotonic_ns() + 20'000'000;
  EXPECT_TRUE(engine_.run_until(deadline, true));
  EXPECT_GE(monotonic_ns(), deadline);
  EXPECT_GT(engine_.stats().breaths, 1u);
  EXPECT_EQ(sink->received(), engine_.stats().breaths);
}

// Breaths that call no app (every app failed, or none configured) still reach the deadline.
TEST_F(EngineTest, RunUntilEndsWithoutAppCalls) {
  start();
  const uint64_t deadline = monotonic_ns() + 20'000'000;
  EXPECT_TRUE(engine_.run_until(deadline, true));
  EXPECT_GE(monotonic_ns(), deadline);
  EXPECT_LT(monotonic_ns() - deadline, 1'000'000'000u);
}

TEST_F(EngineTest, RequestStopEndsRunAfterCurrentBreath) {
  add<Source>("src", 1);
  add<Sink>("sink");
  connect("src", "sink");
  start();
  Engine::request_stop();
  const uint64_t start_ns = monotonic_ns();
  EXPECT_TRUE(engine_.run_until(start_ns + 10'000'000'000, true));
  Engine::clear_stop_request();
  EXPECT_LT(monotonic_ns() - start_ns, 5'000'000'000u);
  EXPECT_EQ(engine_.stats().breaths, 1u);
}

TEST_F(EngineTest, CurrentAppIsSetOnlyDuringCalls) {
  class Probe : public TestApp {
   public:
    Probe(std::string name, CallLog* log, Engine* engine) : TestApp(name, log), engine_(engine) {}
    bool has_pull() const override { return true; }
    void pull() override { note(engine_->current_app()); }

   private:
    Engine* engine_;
  };
  add<Probe>("probe", &engine_);
  start();
  EXPECT_STREQ(engine_.current_app(), "");
  engine_.breathe();
  EXPECT_STREQ(engine_.current_app(), "");
  EXPECT_EQ(log_, CallLog{"probe.probe"});
}

TEST(BreathHistogram, BucketsCoverEveryCountInOrder) {
  // Each count falls in the bucket whose range holds it; ranges are contiguous and 12.5% wide.
  uint64_t lower = 0;
  for (int32_t i = 0; i < ENGINE_BREATH_BUCKETS; ++i) {
    const uint64_t limit = snabb_engine_breath_bucket_limit(i);
    if (limit == UINT64_MAX) break;
    ASSERT_GT(limit, lower) << i;
    EXPECT_EQ(breath_bucket(lower), i);
    EXPECT_EQ(breath_bucket(limit - 1), i);
    if (i >= 8) {
      EXPECT_LE(limit - lower, (lower + 7) / 8) << i;
    }
    lower = limit;
  }
  EXPECT_LT(breath_bucket(UINT64_MAX), ENGINE_BREATH_BUCKETS);
  EXPECT_EQ(breath_bucket(1030), breath_bucket(1150));
  EXPECT_NE(breath_bucket(1000), breath_bucket(1200));
}

TEST_F(EngineTest, HistogramCountsBreathsThatMovedPackets) {
  add<Source>("src", 1);
  add<Sink>("sink");
  connect("src", "sink");
  start();
  engine_.run_until(monotonic_ns() + 5'000'000, true);
  uint64_t counted = 0;
  for (uint64_t n : engine_.stats().breath_cycles) counted += n;
  EXPECT_EQ(counted, engine_.stats().breaths);
  EXPECT_GT(snabb_tsc_hz(), 1e8);
}

}  // namespace
}  // namespace snabb::runtime
