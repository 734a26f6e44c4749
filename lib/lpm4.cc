// lib/lpm4.cc: the lookups of Snabb's lib.lpm.lpm4_248 and lib.lpm.lpm4_dxr (the names those
// modules declare and call through ffi.C) over the tables their build() methods make.
#include "lib/c_helpers.h"

namespace snabb::lib {
namespace {

// 24-8: a key with the top bit clear is the answer; with it set, the rest numbers a block of 256
// keys in `little` indexed by the address's last byte.
template <typename Key>
Key search_248(uint32_t ip, const Key* big, const Key* little) {
  constexpr Key kFlag = Key{1} << (sizeof(Key) * 8 - 1);
  Key key = big[ip >> 8];
  if (!(key & kFlag)) return key;
  return little[static_cast<size_t>(key & (kFlag - 1)) * 256 + (ip & 0xff)];
}

}  // namespace
}  // namespace snabb::lib

extern "C" {

uint16_t lpm4_248_search(uint32_t ip, uint16_t* big, uint16_t* little) {
  return snabb::lib::search_248(ip, big, little);
}

uint32_t lpm4_248_search32(uint32_t ip, uint32_t* big, uint32_t* little) {
  return snabb::lib::search_248(ip, big, little);
}

uint16_t lpm4_dxr_search(uint32_t ip, uint16_t* ints, uint16_t* keys, uint32_t* bottoms,
                         uint32_t* tops) {
  uint32_t high = ip >> 16;
  auto low = static_cast<uint16_t>(ip & 0xffff);
  uint32_t bottom = bottoms[high], top = tops[high];
  while (bottom < top) {  // the first interval whose end is at or after `low`
    uint32_t middle = bottom + (top - bottom) / 2;
    if (ints[middle] < low) {
      bottom = middle + 1;
    } else {
      top = middle;
    }
  }
  return keys[top];
}

}  // extern "C"
