// sync: core.sync, Snabb's synchronisation primitives between processes sharing memory (Snabb
// makes them with DynASM; these are C++ atomics doing the same): loads, compare-and-swap, and a
// spinlock on an int that is 0 when free.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
uint32_t snabb_sync_load(uint32_t *src);
uint64_t snabb_sync_load64(uint64_t *src);
/* Stores desired at dst if it holds expected; whether it did. */
bool snabb_sync_cas(int *dst, int expected, int desired);
bool snabb_sync_cas64(uint64_t *dst, uint64_t expected, uint64_t desired);
/* Takes the spinlock at dst (spinning until it is free), and gives it back. */
void snabb_sync_lock(int *dst);
void snabb_sync_unlock(int *dst);
// END FFI

#ifdef __cplusplus
}
#endif
