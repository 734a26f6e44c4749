// Snabb's C helpers under their own names (clib.h).
#include "runtime/clib.h"

#include <errno.h>
#include <sys/stat.h>
#include <time.h>

namespace {

double seconds(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

extern "C" {

uint64_t get_time_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

double get_monotonic_time() { return seconds(CLOCK_MONOTONIC); }

double get_unix_time() { return seconds(CLOCK_REALTIME); }

void sleep_ns(int nanoseconds) {
  timespec ts{nanoseconds / 1000000000, nanoseconds % 1000000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void full_memory_barrier() { __sync_synchronize(); }

void prefetch_for_read(const void* address) { __builtin_prefetch(address, 0); }

// PREFETCHW, written out: without -mprfchw, __builtin_prefetch(address, 1) compiles to prefetcht0,
// which takes the line shared, and the write that follows waits for the other core's copy to go
// (0F 0D /1: a NOP on CPUs without it).
void prefetch_for_write(const void* address) { asm volatile("prefetchw (%0)" : : "r"(address)); }

unsigned int stat_mtime(const char* path) {
  struct stat st;
  return stat(path, &st) == 0 ? static_cast<unsigned int>(st.st_mtime) : 0;
}

void nop() {}

}  // extern "C"
