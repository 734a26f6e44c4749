// Links: rings of packet pointers between apps. Lua moves the cursors and notes each packet's
// length; C++ folds that into the per-link stats after each app call (link_sync), so the per-packet
// path updates no counters. Stats are exact as long as a link is synced at least once per ring's
// worth of packets, which the engine does after every app call (and link.stats() does on demand).
#pragma once
#include <stdint.h>

#include "runtime/packet.h"

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
enum {
  LINK_RING_SIZE = 1024,
  LINK_RING_MASK = 1023,
  LINK_CURSOR_MASK = 0x7fffffff /* cursors run freely modulo 2^31 */
};

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
  uint16_t lengths[LINK_RING_SIZE]; /* length of each packet as it was transmitted */
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

inline uint32_t link_nreadable(const Link* l) {
  return static_cast<uint32_t>(l->write - l->read) & LINK_CURSOR_MASK;
}
inline bool link_empty(const Link* l) { return l->read == l->write; }

// The cursor after `cursor`, modulo 2^31; in unsigned arithmetic, as INT32_MAX + 1 would overflow.
inline int32_t link_next(int32_t cursor) {
  return static_cast<int32_t>((static_cast<uint32_t>(cursor) + 1) & LINK_CURSOR_MASK);
}

// Native-app access to links (the Lua versions live in link.lua).
inline packet* link_receive(Link* l) {
  packet* p = l->packets[l->read & LINK_RING_MASK];
  l->read = link_next(l->read);
  return p;
}
void link_transmit(Link* l, packet* p);

}  // namespace snabb::runtime
#endif
