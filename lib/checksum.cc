// lib/checksum.cc: Snabb's IP checksum functions (lib/checksum.h's names, for Snabb's
// lib.checksum and its callers through ffi.C): RFC 1071 sums, RFC 1624 incremental updates and
// the TCP/UDP pseudo-header. The bulk sum has two paths: AVX2 (32 bytes a step, chosen at start-up
// when the CPU has it) and a portable one (64-bit words in four chains); cksum_generic dispatches,
// cksum_avx2 and cksum_sse2 take one path each (tools/bench-checksum compares them).
#include <arpa/inet.h>
#include <immintrin.h>

#include <bit>
#include <cstring>

#include "lib/c_helpers.h"

namespace snabb::lib {
namespace {

// Adds with the end-around carry of ones' complement arithmetic, 64 bits wide.
inline uint64_t add_carry(uint64_t sum, uint64_t word) {
  sum += word;
  return sum + (sum < word);
}

// The ones' complement sum, 64 bits wide, of the last n < 32 bytes at p as native 16-bit words:
// 8 bytes at a time, then the rest zero-padded in place (an odd last byte is its word's first) in
// fixed-size pieces placed where their bytes lie in a native 8-byte word. (A memcpy of n bytes was
// a libc call, and bytes stored and read back as a word stall store forwarding: 20 bytes took 95
// cycles, 64 took 45.)
inline uint64_t tail_sum(const unsigned char* p, size_t n) {
  uint64_t sum = 0;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    sum = add_carry(sum, w);
  }
  auto place = [](uint64_t v, size_t at, size_t size) {
    return std::endian::native == std::endian::little ? v << (8 * at) : v << (8 * (8 - at - size));
  };
  uint64_t w = 0;
  size_t at = 0;
  if (n & 4) {
    uint32_t x;
    std::memcpy(&x, p, 4);
    w = place(x, 0, 4);
    at = 4;
  }
  if (n & 2) {
    uint16_t x;
    std::memcpy(&x, p + at, 2);
    w |= place(x, at, 2);
    at += 2;
  }
  if (n & 1) w |= place(p[at], at, 1);
  return add_carry(sum, w);
}

uint16_t fold64(uint64_t sum) {
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// The ones' complement sum of p[0..n) as native 16-bit words, folded to 16 bits. The sum is
// byte-order independent (RFC 1071 2.B): words are summed in native order, 32 bytes at a time in
// four independent chains, and swapped once at the end by the caller.
uint16_t native_sum(const unsigned char* p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (; n >= 32; p += 32, n -= 32) {
    uint64_t w[4];
    std::memcpy(w, p, 32);
    a = add_carry(a, w[0]);
    b = add_carry(b, w[1]);
    c = add_carry(c, w[2]);
    d = add_carry(d, w[3]);
  }
  a = add_carry(a, tail_sum(p, n));
  return fold64(add_carry(add_carry(a, b), add_carry(c, d)));
}

// The same with AVX2: each 32-byte step adds its eight 32-bit words, zero-extended, into the 64-bit
// lanes of the accumulators (no carry is lost: a lane gains under 2^32 a step), 64 bytes a loop;
// the last n < 32 bytes go to tail_sum. Words keep their 16-bit alignment to p, so the sums fold
// alike. (A masked load of the tail was as fast on data in cache, but took 80 ns instead of 40
// when the bytes had just been written, as an app's header is before its checksum.)
__attribute__((target("avx2"))) uint16_t native_sum_avx2(const unsigned char* p, size_t n) {
  if (n < 32) return fold64(tail_sum(p, n));
  __m256i zero = _mm256_setzero_si256();
  __m256i a = zero, b = zero, c = zero, d = zero;
  for (; n >= 64; p += 64, n -= 64) {
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    a = _mm256_add_epi64(a, _mm256_unpacklo_epi32(v, zero));
    b = _mm256_add_epi64(b, _mm256_unpackhi_epi32(v, zero));
    c = _mm256_add_epi64(c, _mm256_unpacklo_epi32(w, zero));
    d = _mm256_add_epi64(d, _mm256_unpackhi_epi32(w, zero));
  }
  if (n >= 32) {
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    a = _mm256_add_epi64(a, _mm256_unpacklo_epi32(v, zero));
    b = _mm256_add_epi64(b, _mm256_unpackhi_epi32(v, zero));
    p += 32;
    n -= 32;
  }
  // Under 2^62 a lane for n under 64 GiB: the adds below cannot wrap.
  __m256i all = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
  __m128i two = _mm_add_epi64(_mm256_castsi256_si128(all), _mm256_extracti128_si256(all, 1));
  uint64_t sum = static_cast<uint64_t>(_mm_cvtsi128_si64(two)) +
                 static_cast<uint64_t>(_mm_extract_epi64(two, 1));
  return fold64(add_carry(sum, tail_sum(p, n)));
}

// Decided once at start-up (static initialisation, before any Lua runs).
const bool kHasAvx2 = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") != 0;
}();

// The RFC 1071 checksum from a native-order sum.
uint16_t finish(uint32_t sum, uint16_t initial) {
  if constexpr (std::endian::native == std::endian::little) sum = __builtin_bswap16(sum);
  sum += initial;
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

uint16_t checksum_portable(const unsigned char* p, size_t n, uint16_t initial) {
  return finish(native_sum(p, n), initial);
}

// The AVX2 path wins at every length measured, 20 bytes (an IPv4 header) included
// (tools/bench-checksum); on a CPU without AVX2, the portable one.
uint16_t checksum(const unsigned char* p, size_t n, uint16_t initial) {
  return finish(kHasAvx2 ? native_sum_avx2(p, n) : native_sum(p, n), initial);
}

// ~(~checksum + ~old + new) (RFC 1624 eqn. 3), on big-endian values.
uint16_t updated(uint16_t checksum, uint32_t old_sum, uint32_t new_sum) {
  uint32_t sum = static_cast<uint16_t>(~checksum) + old_sum + new_sum;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace
}  // namespace snabb::lib

using snabb::lib::checksum;

extern "C" {

uint16_t cksum_generic(unsigned char* p, size_t n, uint16_t initial) {
  return checksum(p, n, initial);
}
uint16_t cksum_sse2(unsigned char* p, size_t n, uint16_t initial) {
  return snabb::lib::checksum_portable(p, n, initial);
}
uint16_t cksum_avx2(unsigned char* p, size_t n, uint16_t initial) {
  return checksum(p, n, initial);
}
int cksum_has_avx2(void) { return snabb::lib::kHasAvx2 ? 1 : 0; }

void checksum_update_incremental_16(uint16_t* checksum_cell, uint16_t* value_cell,
                                    uint16_t new_value) {
  uint32_t old_complement = static_cast<uint16_t>(~ntohs(*value_cell));
  *checksum_cell = htons(snabb::lib::updated(ntohs(*checksum_cell), old_complement, new_value));
  *value_cell = htons(new_value);
}

void checksum_update_incremental_32(uint16_t* checksum_cell, uint32_t* value_cell,
                                    uint32_t new_value) {
  uint32_t old = ntohl(*value_cell);
  uint32_t old_complement =
      static_cast<uint16_t>(~(old >> 16)) + static_cast<uint16_t>(~(old & 0xffff));
  uint32_t new_sum = (new_value >> 16) + (new_value & 0xffff);
  *checksum_cell = htons(snabb::lib::updated(ntohs(*checksum_cell), old_complement, new_sum));
  *value_cell = htonl(new_value);
}

uint32_t pseudo_header_initial(const int8_t* buf, size_t len) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(buf);
  auto be16 = [bytes](size_t at) { return static_cast<uint32_t>(bytes[at] << 8 | bytes[at + 1]); };
  uint32_t sum = 0;
  unsigned protocol;
  switch (bytes[0] >> 4) {
    case 4: {
      size_t header = (bytes[0] & 0x0f) * 4;
      protocol = bytes[9];
      if (protocol != 6 && protocol != 17) return 0xFFFF0001;
      if (checksum(bytes, header, 0) != 0) return 0xFFFF0002;
      // Source and destination addresses, protocol, and the L4 length (what follows the header).
      for (size_t at = 12; at < 20; at += 2) sum += be16(at);
      sum += protocol + ((len - header) & 0xffff);
      break;
    }
    case 6:
      protocol = bytes[6];  // the next header: extension headers are not followed
      if (protocol != 6 && protocol != 17) return 0xFFFF0001;
      // Source and destination addresses, the payload length field, the next header.
      for (size_t at = 8; at < 40; at += 2) sum += be16(at);
      sum += be16(4) + protocol;
      break;
    default:
      return 0xFFFF0001;
  }
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

}  // extern "C"
