// stats_test: the C++ reader (snabb::stats::read) against files laid out as stats.h says, written
// here as core.stats writes them (the Lua writer is tested end to end by tests/top_test.sh and
// tests/ps_test.sh): counters, names escaped and unescaped, app counter files, and each refusal.
#include "runtime/stats.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

#include "runtime/link.h"

namespace snabb::stats {
namespace {

class StatsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/stats_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  // A zeroed file of T at dir_/rel (directories made), mapped; the header set for kind.
  template <typename T>
  T* make(const std::string& rel, uint32_t kind, uint32_t offset, uint64_t size) {
    std::string path = dir_;
    size_t start = 0;
    while (true) {
      const size_t slash = rel.find('/', start);
      if (slash == std::string::npos) break;
      mkdir((dir_ + "/" + rel.substr(0, slash)).c_str(), 0700);
      start = slash + 1;
    }
    path += "/" + rel;
    const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(ftruncate(fd, sizeof(T)), 0);
    void* mem = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    EXPECT_NE(mem, MAP_FAILED);
    auto* h = static_cast<stats_header*>(mem);
    h->magic = STATS_MAGIC;
    h->version = STATS_VERSION;
    h->kind = kind;
    h->offset = offset;
    h->size = size;
    h->pid = 4242;
    return static_cast<T*>(mem);
  }

  void write_counter(const std::string& rel, uint64_t value) {
    std::ofstream f(dir_ + "/" + rel, std::ios::binary);
    f.write(reinterpret_cast<const char*>(&value), sizeof value);
  }

  std::string dir_;
};

TEST_F(StatsTest, ReadsWhatTheWriterLaysOut) {
  auto* e = make<stats_engine_file>("engine/stats", STATS_ENGINE,
                                    offsetof(stats_engine_file, stats), sizeof(engine_stats));
  e->info.tsc_hz = 2000000000;
  e->info.started_ns = 1700000000000000000;
  e->stats.breaths = 1000;
  e->stats.packets = 512000;
  e->stats.breath_cycles[100] = 7;
  std::ofstream(dir_ + "/engine/config") << "/etc/snabb/x.lua\n";
  auto* a = make<stats_app_file>("apps/tee/stats", STATS_APP, offsetof(stats_app_file, stats),
                                 sizeof(app_stats));
  a->stats.calls = 3;
  a->stats.packets_in = 10;
  a->stats.packets_out = 20;
  a->stats.freed = -10;
  write_counter("apps/tee/rx_missed.counter", 5);
  // A name with a slash and a leading dot, escaped (stats.h).
  make<stats_app_file>("apps/%2Ex%2Fy/stats", STATS_APP, offsetof(stats_app_file, stats),
                       sizeof(app_stats));
  auto* l = make<stats_link_file>("links/tee.a -> sink.input/stats", STATS_LINK,
                                  offsetof(stats_link_file, link), sizeof(runtime::Link));
  l->link.stats.txpackets = 100;
  l->link.stats.rxpackets = 90;
  l->link.stats.txdrop = 4;
  l->link.stats.txbytes = 6000;

  const Snapshot s = read(dir_);
  EXPECT_EQ(s.pid, 4242);
  EXPECT_EQ(s.config, "/etc/snabb/x.lua");
  EXPECT_EQ(s.engine.breaths, 1000u);
  EXPECT_EQ(s.engine.packets, 512000u);
  EXPECT_EQ(s.engine.tsc_hz, 2e9);
  ASSERT_EQ(s.engine.breath_buckets.size(), size_t{ENGINE_BREATH_BUCKETS});
  EXPECT_EQ(s.engine.breath_buckets[100], 7u);
  EXPECT_EQ(s.engine.bucket_limits[100], snabb_engine_breath_bucket_limit(100));
  ASSERT_EQ(s.apps.size(), 2u);
  EXPECT_EQ(s.apps[0].name, ".x/y");
  const App& tee = s.apps[1];
  EXPECT_EQ(tee.name, "tee");
  EXPECT_EQ(tee.calls, 3u);
  EXPECT_EQ(tee.freed, -10);
  EXPECT_EQ(tee.counters.at("rx_missed"), 5u);
  ASSERT_EQ(s.links.size(), 1u);
  EXPECT_EQ(s.links[0].from, "tee.a");
  EXPECT_EQ(s.links[0].to, "sink.input");
  EXPECT_EQ(s.links[0].queued, 6u);  // 100 offered = 90 received + 4 dropped + 6 queued
  // Live: a change is seen by the next read.
  l->link.stats.rxpackets = 96;
  EXPECT_EQ(read(dir_).links[0].queued, 0u);
  const std::string json = to_json(s);
  EXPECT_NE(json.find("\"name\": \"tee.a -> sink.input\""), std::string::npos) << json;
  EXPECT_NE(
      json.find("\"breath_buckets\": [[" + std::to_string(s.engine.bucket_limits[100]) + ", 7]]"),
      std::string::npos)
      << json;
}

TEST_F(StatsTest, RefusesWhatItCannotRead) {
  try {
    read(dir_);
    FAIL() << "read an empty directory";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("engine/stats: No such file or directory (not the run "
                                         "directory of a snabb run, bench or basic1)"),
              std::string::npos)
        << e.what();
  }
  auto* e = make<stats_engine_file>("engine/stats", STATS_ENGINE,
                                    offsetof(stats_engine_file, stats), sizeof(engine_stats));
  e->header.version = 99;
  EXPECT_THROW(
      {
        try {
          read(dir_);
        } catch (const std::runtime_error& err) {
          EXPECT_NE(std::string(err.what()).find("stats version 99, this snabb reads 1"),
                    std::string::npos)
              << err.what();
          throw;
        }
      },
      std::runtime_error);
  e->header.version = STATS_VERSION;
  e->header.magic = 0;
  EXPECT_THROW(read(dir_), std::runtime_error);
  e->header.magic = STATS_MAGIC;
  e->header.kind = STATS_LINK;
  EXPECT_THROW(read(dir_), std::runtime_error);
  e->header.kind = STATS_ENGINE;
  e->header.offset = sizeof(stats_engine_file);  // counters past the end
  EXPECT_THROW(read(dir_), std::runtime_error);
  EXPECT_THROW(read(dir_ + "/none"), std::runtime_error);
}

TEST(StatsNames, EscapeRoundTrips) {
  EXPECT_EQ(escape_name("a.out -> b.in"), "a.out -> b.in");
  EXPECT_EQ(escape_name("x/y%z"), "x%2Fy%25z");
  EXPECT_EQ(escape_name(".."), "%2E.");
  for (const std::string name : {"a.out -> b.in", "x/y%z", ".", "..", "tab\there", "%zz"}) {
    EXPECT_EQ(unescape_name(escape_name(name)), name);
  }
}

}  // namespace
}  // namespace snabb::stats
