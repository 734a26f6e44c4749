// Clocks: the invariant TSC for exact per-call cycle counts, CLOCK_MONOTONIC for wall time.
#pragma once
#include <x86intrin.h>

#include <cstdint>

namespace snabb::runtime {

inline uint64_t rdtsc() { return __rdtsc(); }

uint64_t monotonic_ns();
double tsc_hz();

}  // namespace snabb::runtime
