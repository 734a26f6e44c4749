// interlink: the ring of apps.interlink's transmitter and receiver, a single-producer
// single-consumer queue of packets between two processes of a group (core.group: the packets are
// in memory every worker maps at one address) or two apps of one process. It is a file mapped
// MAP_SHARED, GROUPDIR/interlink/NAME (or RUNDIR/interlink/NAME outside a group); an all-zero file
// is an empty ring, so either side may make it first. Entries are link entries (runtime/link.h:
// the packet's address with its length above bit 48), which the apps copy between their links and
// the ring as they are, without touching the packets. Each side has a cache line of its own: its
// cursor, published once per push or pull (after the entries it covers: x86 keeps stores in
// order), its process (claimed with a compare-and-swap; a second live claimant is refused) and its
// count of packets. In a group, the transmitter's line also carries its worker's clock, which the
// receiver's marks must pass (runtime/group.h). Lua reads and writes it (apps/interlink/ring.lua);
// this header is its layout.
#pragma once
#include <stdint.h>

#include "runtime/packet.h"

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
enum {
  INTERLINK_SIZE = 1024, /* entries: a power of two */
  INTERLINK_MASK = 1023,
  INTERLINK_MAGIC = 0x4b4c4e49 /* "INLK" in the file */
};

struct interlink {
  uint32_t magic; /* written by whichever side maps it first */
  uint32_t size;  /* INTERLINK_SIZE */
  uint64_t pad0[7];
  /* The transmitter's line. write counts packets published, modulo 2^32. */
  int32_t write;
  int32_t tx_pid;       /* the transmitter's process, 0 when none is attached */
  uint64_t txpackets;   /* packets published */
  uint64_t tx_attaches; /* transmitters that attached, replacements included */
  uint64_t tx_clock;    /* the transmitter's worker's clock as it last published (group.h) */
  uint64_t pad1[4];
  /* The receiver's line. */
  int32_t read;
  int32_t rx_pid;
  uint64_t rxpackets;
  uint64_t rx_attaches;
  uint64_t pad2[5];
  struct packet* ring[INTERLINK_SIZE];
};
// END FFI

#ifdef __cplusplus
}
static_assert(sizeof(struct interlink) == 3 * 64 + INTERLINK_SIZE * 8);
#endif
