// sync: core.sync's atomics (sync.h), on GCC's __atomic built-ins (sequentially consistent, as
// Snabb's lock-prefixed instructions are).
#include "runtime/sync.h"

#include <x86intrin.h>

extern "C" {

uint32_t snabb_sync_load(uint32_t* src) { return __atomic_load_n(src, __ATOMIC_SEQ_CST); }

uint64_t snabb_sync_load64(uint64_t* src) { return __atomic_load_n(src, __ATOMIC_SEQ_CST); }

bool snabb_sync_cas(int* dst, int expected, int desired) {
  return __atomic_compare_exchange_n(dst, &expected, desired, false, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST);
}

bool snabb_sync_cas64(uint64_t* dst, uint64_t expected, uint64_t desired) {
  return __atomic_compare_exchange_n(dst, &expected, desired, false, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST);
}

void snabb_sync_lock(int* dst) {
  while (__atomic_exchange_n(dst, 1, __ATOMIC_ACQUIRE) != 0) {
    while (__atomic_load_n(dst, __ATOMIC_RELAXED) != 0) _mm_pause();
  }
}

void snabb_sync_unlock(int* dst) { __atomic_store_n(dst, 0, __ATOMIC_RELEASE); }

}  // extern "C"
