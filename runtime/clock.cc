#include "runtime/clock.h"

#include <time.h>

namespace snabb::runtime {

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

double tsc_hz() {
  // 20 ms against the monotonic clock: well under 0.1% error, once per process.
  static const double hz = [] {
    const uint64_t t0 = monotonic_ns(), c0 = rdtsc();
    while (monotonic_ns() - t0 < 20'000'000) {
    }
    const uint64_t t1 = monotonic_ns(), c1 = rdtsc();
    return static_cast<double>(c1 - c0) * 1e9 / static_cast<double>(t1 - t0);
  }();
  return hz;
}

}  // namespace snabb::runtime

extern "C" double snabb_tsc_hz(void) { return snabb::runtime::tsc_hz(); }
extern "C" uint64_t snabb_rdtsc(void) { return snabb::runtime::rdtsc(); }
