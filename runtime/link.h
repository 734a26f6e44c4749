// Links: rings of packet pointers between apps. Lua moves the cursors and notes each packet's
// length; C++ folds that into the per-link stats after each app call (link_sync), so the per-packet
// path updates no counters. The cursors count packets freely and wrap modulo 2^32 (bit.tobit in
// Lua, unsigned arithmetic here), so moving one is a single add. Stats are exact as long as a link
// is synced at least once per ring's worth of packets, which the engine does after every app call
// (and link.stats() does on demand).
#pragma once
#include <stdint.h>

#include "runtime/packet.h"

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
enum { LINK_RING_SIZE = 1024, LINK_RING_MASK = 1023 };

struct link_stats {
  uint64_t txpackets; /* offered to the link: queued + dropped */
  uint64_t txbytes;
  uint64_t rxpackets;
  uint64_t rxbytes;
  uint64_t txdrop; /* dropped because the ring was full */
};

struct link {
  int32_t read;
  int32_t write;
  struct link_stats stats;
  /* Below: bookkeeping for link_sync. */
  int32_t synced_read;
  int32_t synced_write;
  uint64_t synced_txdrop;
  /* Length of each packet as it was transmitted. 32 bits wide, not 16 like packet.length, because
     LuaJIT's alias analysis goes by type: a note then never aliases a packet's length, so a loop
     that transmits keeps the lengths it has read in registers (basic1 +2.7%). */
  uint32_t lengths[LINK_RING_SIZE];
  struct packet* packets[LINK_RING_SIZE];
};

struct link* snabb_link_new(void);
/* Frees the packets still queued (counted as drops) and the link itself. */
void snabb_link_delete(struct link* l);
/* Folds cursor movement since the last sync into stats. */
void snabb_link_sync(struct link* l);
// END FFI

#ifdef __cplusplus
}

namespace snabb::runtime {

// POSIX's link() hides the struct's plain name in C++.
using Link = struct ::link;

struct LinkDelta {
  uint32_t read;     // packets received since the last sync
  uint32_t written;  // packets queued since the last sync
};

LinkDelta link_sync(Link* l);

// Packets from cursor `from` up to cursor `to`, modulo 2^32.
inline uint32_t link_distance(int32_t from, int32_t to) {
  return static_cast<uint32_t>(to) - static_cast<uint32_t>(from);
}
inline uint32_t link_nreadable(const Link* l) { return link_distance(l->read, l->write); }
inline bool link_empty(const Link* l) { return l->read == l->write; }

// The cursor `n` packets after `cursor`; in unsigned arithmetic, as INT32_MAX + 1 would overflow.
inline int32_t link_advance(int32_t cursor, uint32_t n) {
  return static_cast<int32_t>(static_cast<uint32_t>(cursor) + n);
}

// Native-app access to links (the Lua versions live in link.lua).
inline packet* link_receive(Link* l) {
  packet* p = l->packets[l->read & LINK_RING_MASK];
  l->read = link_advance(l->read, 1);
  return p;
}
void link_transmit(Link* l, packet* p);

}  // namespace snabb::runtime
#endif
