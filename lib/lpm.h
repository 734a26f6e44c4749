// The native half of lib.lpm (lib/lpm.lua): memory for its tables (anonymous mappings, zero
// until written, transparent huge pages advised so that a 64 MB tbl24 costs few TLB entries), the
// batch lookups (prefetching the tbl24 entries of a whole batch before reading them), and IPv6
// text addresses through inet_pton. The tables themselves are built by the Lua; the layout the
// lookups read is described there: int32 entries, a value 0 .. 2^31-1, or (negative) 0x80000000
// | the offset of a group of 256 entries in tbl8.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
/* bytes of zeroes, 4 KB aligned (2 MB when bytes >= 2 MB); NULL when there is no memory. */
void* snabb_lpm_alloc(size_t bytes);
void snabb_lpm_free(void* p, size_t bytes);
/* values[i] = the value of addrs[i] (host order) in the 24-8 table (tbl24, tbl8). */
void snabb_lpm4_lookup_batch(const int32_t* tbl24, const int32_t* tbl8, const uint32_t* addrs,
                             uint32_t* values, size_t n);
/* values[i] = the value of the 16 bytes at addrs + 16 i in the 24-8-...-8 table. */
void snabb_lpm6_lookup_batch(const int32_t* tbl24, const int32_t* tbl8, const uint8_t* addrs,
                             uint32_t* values, size_t n);
/* text -> 16 bytes at out: 1, or 0 when text is not an IPv6 address. */
int snabb_lpm_parse6(const char* text, uint8_t* out);
// END FFI

#ifdef __cplusplus
}
#endif
