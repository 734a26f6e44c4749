// Links: rings of packets between apps. Each ring entry is a packet's address with its length in
// the top 16 bits (packets lie below 2^48: packet.h), so a transmit is one store and the length it
// had when sent travels with it. The ring has two owners: the inline functions below (native apps,
// drivers' bursts, the engine's sync) and link.lua (inlined by the JIT into apps' loops);
// jit/ffi_layout_test checks that each reads what the other writes. Lua moves the cursors; C++
// folds cursor movement and the entries' lengths into the per-link stats after each app call
// (link_sync), so the per-packet path updates no counters. The cursors count packets freely and
// wrap modulo 2^32 (bit.tobit in Lua, unsigned arithmetic here), so moving one is a single add.
// Stats are exact as long as a link is synced at least once per ring's worth of packets, which the
// engine does after every app call (and link.stats() does on demand).
#pragma once
#include <stdint.h>

#include "runtime/packet.h"

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
enum { LINK_RING_SIZE = 1024, LINK_RING_MASK = 1023, LINK_LENGTH_SHIFT = PACKET_ADDRESS_BITS };

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
  uint64_t queued_bytes; /* in the ring at the last sync */
  /* Tagged: address | length << LINK_LENGTH_SHIFT. Typed as pointers, not uint64_t, because
     LuaJIT's alias analysis goes by type: then a transmit's store cannot alias the free list's
     64-bit count, which a loop keeps in a register. */
  struct packet* ring[LINK_RING_SIZE];
};

/* NULL when there is no memory for it (snabb_error() says why: runtime/error.h). */
struct link* snabb_link_new(void);
/* Frees the packets still queued (counted as drops) and the link itself; 0, or -1 when a queued
   packet was already free (freed twice: the link is freed all the same). */
int snabb_link_delete(struct link* l);
/* Frees the packets still queued (counted as drops), as snabb_link_delete does, without freeing
   the link itself (one in a stats file, runtime/stats.h, is unmapped by its owner). 0, or -1 when a
   queued packet was already free. */
int snabb_link_drain(struct link* l);
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
  uint32_t dropped;  // packets dropped (ring full) since the last sync
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

// The ring encoding: entry = address | length << LINK_LENGTH_SHIFT.
inline packet* link_entry(const packet* p) {
  return reinterpret_cast<packet*>(reinterpret_cast<uintptr_t>(p) | uintptr_t{p->length}
                                                                        << LINK_LENGTH_SHIFT);
}
inline packet* link_entry_packet(const packet* entry) {
  return reinterpret_cast<packet*>(reinterpret_cast<uintptr_t>(entry) & (kPacketAddressLimit - 1));
}
inline uint32_t link_entry_length(const packet* entry) {
  return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(entry) >> LINK_LENGTH_SHIFT);
}
// The ring entry at `cursor`.
inline packet*& link_slot(Link* l, int32_t cursor) { return l->ring[cursor & LINK_RING_MASK]; }

// One packet at a time (native apps; the Lua versions live in link.lua).
inline packet* link_receive(Link* l) {
  packet* p = link_entry_packet(link_slot(l, l->read));
  l->read = link_advance(l->read, 1);
  return p;
}
// A full link frees the packet and counts a drop (its bytes count as offered).
inline void link_transmit(Link* l, packet* p) {
  if (link_nreadable(l) == LINK_RING_SIZE) {
    l->stats.txdrop++;
    l->stats.txbytes += p->length;
    packet_free(p);
    return;
  }
  link_slot(l, l->write) = link_entry(p);
  l->write = link_advance(l->write, 1);
}

// Bursts (drivers): entries are written or read in place, then the cursor moves once, so the other
// side sees the whole burst at once and a burst costs one cursor store.
inline uint32_t link_nwritable(const Link* l) { return LINK_RING_SIZE - link_nreadable(l); }
// Puts packets after the write cursor (the caller checked link_nwritable); commit() shows them to
// the receiver. Lives in registers: the cursor is read once and stored once.
class LinkBurst {
 public:
  explicit LinkBurst(Link* l) : l_(l), write_(l->write) {}
  void put(packet* p) {
    link_slot(l_, write_) = link_entry(p);
    write_ = link_advance(write_, 1);
  }
  void commit() { l_->write = write_; }

 private:
  Link* l_;
  int32_t write_;
};
// Queued packet i (0: the next to receive), still in the link.
inline packet* link_peek(Link* l, uint32_t i) {
  return link_entry_packet(link_slot(l, link_advance(l->read, i)));
}
// Replaces queued packet i by p (a driver's copy of it).
inline void link_replace(Link* l, uint32_t i, packet* p) {
  link_slot(l, link_advance(l->read, i)) = link_entry(p);
}
// Receives the first n queued packets (after link_peek: the caller owns them now).
inline void link_consume(Link* l, uint32_t n) { l->read = link_advance(l->read, n); }

}  // namespace snabb::runtime
#endif
