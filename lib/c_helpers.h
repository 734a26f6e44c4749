// lib/c_helpers.h: the C functions that Snabb's lib/ and apps/ Lua code calls through ffi.C, under
// Snabb's names and signatures, so that Snabb's modules (which ffi.cdef Snabb's own headers:
// lib/checksum.h, lib/ipsec/track_seq_no.h, lib/ipc/shmem/shmem.h, apps/bridge/learning.h, and the
// declarations inside lib/lpm/lpm4_248.lua and lpm4_dxr.lua) find them in the snabb binary. Our
// own C++, written from what those headers declare and their Lua callers need (lib/README.md).
// They keep Snabb's names rather than the snabb_ prefix: the callers are Snabb's code.
#ifndef SNABB_LIB_C_HELPERS_H_
#define SNABB_LIB_C_HELPERS_H_

#include <cstddef>
#include <cstdint>

extern "C" {

// IP checksums (RFC 1071): the ones' complement of the ones' complement sum of p[0..n) read as
// big-endian 16-bit words (an odd last byte padded with a zero), plus `initial`, in host order
// (store it with htons). 0 over data that includes a valid checksum. The names are Snabb's:
// cksum_generic and cksum_avx2 take the AVX2 path when the CPU has AVX2 (decided once at
// start-up), the portable path otherwise; cksum_sse2 always takes the portable one (64-bit words,
// x86-64's baseline).
// cksum_has_avx2: 1 when the AVX2 path is in use.
uint16_t cksum_generic(unsigned char* p, size_t n, uint16_t initial);
uint16_t cksum_sse2(unsigned char* p, size_t n, uint16_t initial);
uint16_t cksum_avx2(unsigned char* p, size_t n, uint16_t initial);
int cksum_has_avx2(void);

// RFC 1624: *value_cell (network order) becomes new_value (given in host order) and the checksum
// at *checksum_cell (network order) is updated to match, without summing the data again.
void checksum_update_incremental_16(uint16_t* checksum_cell, uint16_t* value_cell,
                                    uint16_t new_value);
void checksum_update_incremental_32(uint16_t* checksum_cell, uint32_t* value_cell,
                                    uint32_t new_value);

// The TCP/UDP pseudo-header sum (folded to 16 bits, host order) of the IPv4 or IPv6 packet at buf
// (len bytes from its IP header): the `initial` to give cksum_* over the L4 header and payload.
// 0xFFFF0001: not IPv4/IPv6 carrying TCP or UDP; 0xFFFF0002: an IPv4 header whose checksum is
// wrong.
uint32_t pseudo_header_initial(const int8_t* buf, size_t len);

// ESP anti-replay window with extended (64-bit) sequence numbers, RFC 4303 appendix A. `t` is the
// highest sequence number seen, `window` a bitmap of `w` bits (w a multiple of 8, zeroed at
// first) of which numbers in (t - w, t] were seen. check_seq_no: the high 32 bits of the packet's
// sequence number inferred from its low 32 bits `seq_lo`, or -1 when it was seen already or lies
// below the window. track_seq_no: records seq_hi:seq_lo as seen, returns the new t.
uint64_t track_seq_no(uint32_t seq_hi, uint32_t seq_lo, uint64_t t, uint8_t* window, uint32_t w);
int64_t check_seq_no(uint32_t seq_lo, uint64_t t, uint8_t* window, uint32_t w);

// Shared memory over a file, for lib.ipc.shmem: `fh` is a Lua io file, which LuaJIT passes to a
// void* parameter as its FILE* (NULL once closed). shmem_grow: the file grows to new_size and
// is mapped again (base, old_size: the previous mapping, base may be NULL); shmem_attach: maps
// `size` bytes of the file. Both return the mapping (shared, writable when the file was opened
// for writing) or NULL. shmem_unmap: munmap, true on success.
char* shmem_grow(void* fh, void* base, size_t old_size, size_t new_size);
char* shmem_attach(void* fh, size_t size);
bool shmem_unmap(void* mem, size_t size);

// The learning bridge's MAC table (apps/bridge/mac_table.lua and learning.lua): the layouts are
// Snabb's learning.h, declared here with our names for C++ (the Lua side declares Snabb's).
struct packet;
enum { SNABB_MAC_BUCKET_SIZE = 6 };
struct snabb_port_list {
  uint16_t length;
  uint16_t ports[1];  // `length` of them
};
struct snabb_pft_entry {
  struct packet* p;
  snabb_port_list* plist;
};
struct snabb_pft {
  uint16_t length;
  snabb_pft_entry entries[1];
};
struct snabb_mac_entry {
  uint64_t mac;  // 0: a free slot
  uint16_t port;
  uint16_t group;
};
struct snabb_mac_hash_table {
  uint32_t ubuckets;  // buckets with at least one entry
  uint32_t entries;
  uint8_t overflow;  // 1: an insert found its bucket full
  snabb_mac_entry buckets[1][SNABB_MAC_BUCKET_SIZE];
};
// Bucket i of a table (the buckets run past the declared one: mac_table.lua allocates them; an
// index into buckets[] itself past 0 is out of its declared bounds).
inline snabb_mac_entry* snabb_mac_bucket(snabb_mac_hash_table* table, uint32_t i) {
  return &table->buckets[0][0] + static_cast<size_t>(i) * SNABB_MAC_BUCKET_SIZE;
}
struct snabb_mac_lookup_result {
  uint16_t port;  // 0: not found
  uint16_t group;
};
// Stores mac -> (port, group) in bucket `index` of tables[0] (main) and tables[1] (shadow).
void mac_table_insert(uint64_t mac, uint16_t port, uint16_t group, snabb_mac_hash_table** tables,
                      uint32_t index);
// The port and group of mac in `bucket`; port 0 when it is not there.
snabb_mac_lookup_result* mac_table_lookup(uint64_t mac, snabb_mac_entry* bucket);
// Files packet p (from `port`, in split-horizon `group`, 0 for none) in pfts[0] (unicast, to the
// port found), pfts[2] (discard: found on its own port or group) or pfts[1] (flood to flood_pl).
void mac_table_lookup_pft(uint64_t mac, snabb_mac_entry* bucket, uint16_t port, uint16_t group,
                          struct packet* p, snabb_pft** pfts, snabb_port_list* flood_pl);

// Longest-prefix match lookups over tables built by lib/lpm/lpm4_248.lua and lpm4_dxr.lua.
// 24-8: big[ip >> 8] is the key, or (with the top bit set) a block of 256 in `little` for the
// last byte.
uint16_t lpm4_248_search(uint32_t ip, uint16_t* big, uint16_t* little);
uint32_t lpm4_248_search32(uint32_t ip, uint32_t* big, uint32_t* little);
// DXR: the intervals of ip's /16 are [bottoms[ip >> 16], tops[ip >> 16]] in ints (their ends'
// low 16 bits, ascending): the key of the first that ends at or after ip.
uint16_t lpm4_dxr_search(uint32_t ip, uint16_t* ints, uint16_t* keys, uint32_t* bottoms,
                         uint32_t* tops);
}

#endif  // SNABB_LIB_C_HELPERS_H_
