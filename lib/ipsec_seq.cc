// lib/ipsec_seq.cc: the ESP anti-replay window of Snabb's lib.ipsec.esp (lib/ipsec/track_seq_no.h's
// names, through ffi.C): RFC 4303 appendix A, extended sequence numbers. The window is a circular
// bitmap: bit (s mod w) says whether sequence number s, within (t - w, t], was seen.
#include "lib/c_helpers.h"

namespace snabb::lib {
namespace {

bool seen(const uint8_t* window, uint32_t w, uint64_t s) {
  uint64_t bit = s % w;
  return window[bit / 8] & (1u << (bit % 8));
}

void set_seen(uint8_t* window, uint32_t w, uint64_t s, bool value) {
  uint64_t bit = s % w;
  if (value) {
    window[bit / 8] |= static_cast<uint8_t>(1u << (bit % 8));
  } else {
    window[bit / 8] &= static_cast<uint8_t>(~(1u << (bit % 8)));
  }
}

}  // namespace
}  // namespace snabb::lib

extern "C" {

int64_t check_seq_no(uint32_t seq_lo, uint64_t t, uint8_t* window, uint32_t w) {
  auto t_lo = static_cast<uint32_t>(t);
  auto t_hi = static_cast<uint32_t>(t >> 32);
  uint32_t bottom = t_lo - w + 1;  // the window's first number's low bits (mod 2^32)
  uint32_t seq_hi;
  if (t_lo >= w - 1) {  // the window lies within one 2^32 subspace (A2.2 case A)
    seq_hi = seq_lo >= bottom ? t_hi : t_hi + 1;
  } else {  // it spans the previous subspace's end (case B)
    if (seq_lo >= bottom) {
      if (t_hi == 0) return -1;  // before the first sequence number
      seq_hi = t_hi - 1;
    } else {
      seq_hi = t_hi;
    }
  }
  uint64_t s = static_cast<uint64_t>(seq_hi) << 32 | seq_lo;
  if (s <= t && snabb::lib::seen(window, w, s)) return -1;
  return seq_hi;
}

uint64_t track_seq_no(uint32_t seq_hi, uint32_t seq_lo, uint64_t t, uint8_t* window, uint32_t w) {
  uint64_t s = static_cast<uint64_t>(seq_hi) << 32 | seq_lo;
  if (s > t) {
    // The window slides up to s: the numbers it now covers for the first time are unseen.
    uint64_t fresh = s - t < w ? s - t : w;
    for (uint64_t i = 0; i < fresh; ++i) snabb::lib::set_seen(window, w, s - i, false);
    t = s;
  }
  snabb::lib::set_seen(window, w, s, true);
  return t;
}

}  // extern "C"
