// A stand-in for runtime/stats.h (helper stats20's reader of the shared-memory counters, issue 20
// contract 1) until it lands: the same Snapshot shape, filled from this process's engine only.
// Removed when the real header is merged.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/engine.h"

namespace snabb::stats {

struct Engine {
  uint64_t breaths = 0, cycles = 0, packets = 0;
  std::vector<uint64_t> breath_buckets, bucket_limits;
  double tsc_hz = 0;
  double start_time = 0;
};
struct App {
  std::string name;
  uint64_t calls = 0, cycles = 0, idle_cycles = 0, packets_in = 0, packets_out = 0, errors = 0;
  int64_t freed = 0;
  std::map<std::string, uint64_t> counters;
};
struct Link {
  std::string name, from, to;
  uint64_t txpackets = 0, txbytes = 0, rxpackets = 0, rxbytes = 0, txdrop = 0, queued = 0;
};
struct Snapshot {
  Engine engine;
  std::vector<App> apps;
  std::vector<Link> links;
  int pid = 0;
  std::string config;
};

inline Snapshot read(const std::string&) {
  Snapshot s;
  s.pid = getpid();
  const engine_stats* e = snabb_engine_stats();
  s.engine.breaths = e->breaths, s.engine.cycles = e->cycles, s.engine.packets = e->packets;
  s.engine.tsc_hz = snabb_tsc_hz();
  return s;
}

}  // namespace snabb::stats
