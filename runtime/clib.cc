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

void prefetch_for_write(const void* address) { __builtin_prefetch(address, 1); }

unsigned int stat_mtime(const char* path) {
  struct stat st;
  return stat(path, &st) == 0 ? static_cast<unsigned int>(st.st_mtime) : 0;
}

void nop() {}

}  // extern "C"
