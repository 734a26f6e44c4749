// lib/lpm.h: memory, batch lookups and IPv6 parsing for lib.lpm (lib/lpm.lua).
#include "lib/lpm.h"

#include <arpa/inet.h>
#include <sys/mman.h>

namespace {

constexpr size_t kHuge = size_t{2} << 20;
constexpr int32_t kOffsetMask = 0x7fffffff;
// Addresses whose tbl24 entries are prefetched ahead of the ones being read.
constexpr size_t kAhead = 16;

inline uint32_t Tbl24Index6(const uint8_t* a) {
  return (uint32_t{a[0]} << 16) | (uint32_t{a[1]} << 8) | a[2];
}

}  // namespace

extern "C" {

void* snabb_lpm_alloc(size_t bytes) {
  if (bytes < kHuge) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  // Map 2 MB more and trim, so that the table starts on a huge page boundary.
  size_t span = bytes + kHuge;
  void* p = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto base = reinterpret_cast<uintptr_t>(p);
  uintptr_t start = (base + kHuge - 1) & ~(kHuge - 1);
  if (start > base) munmap(p, start - base);
  uintptr_t end = start + ((bytes + 4095) & ~size_t{4095});
  if (base + span > end) munmap(reinterpret_cast<void*>(end), base + span - end);
  madvise(reinterpret_cast<void*>(start), bytes, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(start);
}

void snabb_lpm_free(void* p, size_t bytes) {
  if (p != nullptr) munmap(p, bytes);
}

void snabb_lpm4_lookup_batch(const int32_t* tbl24, const int32_t* tbl8, const uint32_t* addrs,
                             uint32_t* values, size_t n) {
  for (size_t i = 0; i < n && i < kAhead; i++) __builtin_prefetch(&tbl24[addrs[i] >> 8]);
  for (size_t i = 0; i < n; i++) {
    if (i + kAhead < n) __builtin_prefetch(&tbl24[addrs[i + kAhead] >> 8]);
    uint32_t a = addrs[i];
    int32_t e = tbl24[a >> 8];
    if (e < 0) e = tbl8[(e & kOffsetMask) + (a & 0xff)];
    values[i] = static_cast<uint32_t>(e);
  }
}

void snabb_lpm6_lookup_batch(const int32_t* tbl24, const int32_t* tbl8, const uint8_t* addrs,
                             uint32_t* values, size_t n) {
  for (size_t i = 0; i < n && i < kAhead; i++)
    __builtin_prefetch(&tbl24[Tbl24Index6(addrs + 16 * i)]);
  for (size_t i = 0; i < n; i++) {
    if (i + kAhead < n) __builtin_prefetch(&tbl24[Tbl24Index6(addrs + 16 * (i + kAhead))]);
    const uint8_t* a = addrs + 16 * i;
    int32_t e = tbl24[Tbl24Index6(a)];
    for (int b = 3; e < 0; b++) e = tbl8[(e & kOffsetMask) + a[b]];
    values[i] = static_cast<uint32_t>(e);
  }
}

int snabb_lpm_parse6(const char* text, uint8_t* out) {
  return inet_pton(AF_INET6, text, out) == 1 ? 1 : 0;
}

}  // extern "C"
