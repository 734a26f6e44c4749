// The C functions that Snabb code calls through ffi.C under Snabb's own names (core/lib.h there:
// clocks, sleeping, barriers, prefetches, a file's mtime), with the same signatures, so its apps
// and libraries run unchanged; `require("core.lib_h")` declares them (made from this header's FFI
// region, as Snabb's build makes core.lib_h from core/lib.h). They are the only C functions of the
// runtime without the snabb_ prefix: their names are Snabb's API.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
/* CLOCK_MONOTONIC in nanoseconds (core.timer's clock). */
uint64_t get_time_ns();
/* CLOCK_MONOTONIC in seconds (engine.now's clock). */
double get_monotonic_time();
/* CLOCK_REALTIME in seconds since the epoch. */
double get_unix_time();
/* Sleeps nanoseconds (less than a second, as in Snabb). */
void sleep_ns(int nanoseconds);
/* A full hardware memory barrier (mfence). */
void full_memory_barrier();
void prefetch_for_read(const void *address);
void prefetch_for_write(const void *address);
/* The last-modification time of path in seconds, or 0 when it cannot be read. */
unsigned int stat_mtime(const char *path);
// END FFI

/* core.clib_h's nop(): does nothing (a call through the FFI is a compiler barrier). */
void nop();

#ifdef __cplusplus
}
#endif
