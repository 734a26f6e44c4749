// Packets and the packet pool: the C ABI shared by C++ and Lua (the region between the FFI markers
// is fed to ffi.cdef verbatim, so it must stay plain C without preprocessor lines).
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
enum {
  PACKET_PAYLOAD_SIZE = 10240, /* jumbo frames */
  PACKET_ADDRESS_BITS = 48,    /* packets lie below 2^48 (kPacketAddressLimit) */
  PACKET_HEADROOM = 256,       /* bytes before a fresh packet's header, for cheap prepend */
  PACKET_SLOT_SIZE = 10816,    /* headroom + header + payload + tail slack, a multiple of 64 */
  /* headroom's top bit says the packet carries a timestamp (e.g. from a capture). The timestamp
     lives in the slot's last 8 bytes, where moving the header does not move it and the hot path
     never touches it; free clears the flag along with the rest of the header. */
  PACKET_TIMESTAMPED = 0x8000,
  /* The packet is a capture's record cut short (snapped): the slot's 8 bytes before the timestamp
     hold its length on the wire and its length as captured (two uint32_t), so a capture written
     from it keeps the wire length while the packet keeps the captured length. Kept and cleared
     like the timestamp. */
  PACKET_SNAPPED = 0x4000,
  /* The packet carries a latency stamp (apps/basic/latency.lua): the TSC when Replay sent it and
     a check word, the 16 bytes before the wire length. Allocation clears the flag and clone does
     not copy it, so a packet an app makes itself, even in the slot of a stamped packet it freed,
     has none. Packet data never reaches there: a header at most 2 * PACKET_HEADROOM into the slot
     (packet.shiftleft) plus a full payload ends 28 bytes before it. */
  PACKET_LATENCY_STAMPED = 0x2000,
  PACKET_HEADROOM_MASK = 0x1fff,
  PACKET_TIMESTAMP_OFFSET = PACKET_SLOT_SIZE - 8, /* from the slot start, in nanoseconds */
  PACKET_WIRE_LENGTH_OFFSET = PACKET_SLOT_SIZE - 16,
  PACKET_LATENCY_OFFSET = PACKET_SLOT_SIZE - 32
};

/* A packet is a header followed by its payload. prepend/shiftleft move the header within its slot
   instead of moving the payload; headroom (masked with PACKET_HEADROOM_MASK) records how far the
   header sits from the slot start. A shift by an odd number of bytes puts the header at an odd
   address, so the struct is packed (alignment 1): C++ may then read it there (unpacked, that was
   undefined behaviour, and UBSan reported each misaligned load), and on x86 its loads and stores
   are the same instructions as before. LuaJIT ignores alignment when it compiles field access:
   basic1's three loop traces have the same IR and machine code (509, 324, 960 bytes) either way. */
struct __attribute__((packed)) packet {
  uint16_t length;
  uint16_t headroom;
  uint8_t data[PACKET_PAYLOAD_SIZE];
};

/* LIFO stack of free packets, so the most recently used (cache-warm) packet is reused first.
   An entry is a packet as it was freed, its header wherever prepend/shiftleft left it: free writes
   only the list, never reads or writes the packet (a packet freed in another worker than the one
   that wrote it would pull the writer's cache line over and make its next write take it back:
   two cross-core transfers a packet). Allocation puts it back in place: it reads the entry's
   headroom field (a line it writes next anyway) and takes the slot's canonical place (slot start
   + PACKET_HEADROOM), where it writes a fresh header. So an entry's headroom field must say where
   its slot starts: the pool writes a fresh header into a slot it adds (freelist_push_slot).
   Written by two owners only: C++'s freelist_push/freelist_pop below (the pool, drivers,
   tools/basic1_model, the group) and packet.lua's pop/free (inlined by the JIT into apps' loops);
   vm/ffi_layout_test checks that they agree.
   The counts are 64-bit on purpose: a type no link field has, so LuaJIT's type-based alias
   analysis keeps nfree in a register across an app's loop instead of reloading it after every
   link store. The list is inline and the struct never moves, so compiled Lua indexes it at a
   constant address rather than loading a pointer to it for every allocate and free. */
struct packet_freelist {
  int64_t nfree;
  int64_t max_packets;
  struct packet* list[];
};

/* Errors: the failure value, and snabb_error() says why (runtime/error.h). */
/* NULL when the pool cannot be set up. */
struct packet_freelist* snabb_packet_freelist(void);
/* Adds fresh packets to the free list; returns how many: 0 at the pool's cap (snabb_error() then
   says what the cap is and where it comes from), -1 when no memory could be mapped. */
int32_t snabb_packet_grow(void);
/* Packets taken from the system (or adopted: DPDK's mbufs); the pool never shrinks. */
int32_t snabb_packet_allocated(void);
/* How many packets the pool may take from the system: by default half of what the memory available
   and the cgroup's limit allow, at most 1,000,000 (runtime/packet.cc). */
int32_t snabb_packet_cap(void);
/* How many times an allocation found the pool at its cap, and what it says then (the cap and
   where it comes from): not an error of the last call, so no other failure overwrites it. */
int64_t snabb_packet_exhaustions(void);
const char* snabb_packet_exhaustion(void);
/* Sets the pool's capacity; returns 0, or -1 for a capacity outside 1..2^24 or once packets have
   been allocated. */
int snabb_packet_set_max(int32_t max_packets);
// END FFI

#ifdef __cplusplus
}

#include <string>

namespace snabb::runtime {

// Packets lie below this address: a link's ring entry keeps the packet's length in the bits above
// (link.h). The pool checks each chunk it maps, DPDK's driver its mbufs.
constexpr unsigned kPacketAddressBits = PACKET_ADDRESS_BITS;
constexpr uintptr_t kPacketAddressLimit = uintptr_t{1} << kPacketAddressBits;

// The free list's C++ owner (the Lua one is packet.lua's pop and free); see packet_freelist.
inline packet* freelist_entry(uint8_t* slot) {
  return reinterpret_cast<packet*>(slot + PACKET_HEADROOM);
}
inline uint8_t* freelist_entry_slot(packet* entry) {
  return reinterpret_cast<uint8_t*>(entry) - PACKET_HEADROOM;
}
// A slot whose memory may hold anything (a pool's fresh chunk, a driver's mbuf) made an entry: its
// canonical place gets a fresh header, which is what tells allocation where the slot starts.
inline packet* freelist_fresh_entry(uint8_t* slot) {
  packet* p = freelist_entry(slot);
  p->length = 0;
  p->headroom = PACKET_HEADROOM;
  return p;
}
inline void freelist_push_slot(packet_freelist* fl, uint8_t* slot) {
  fl->list[fl->nfree++] = freelist_fresh_entry(slot);
}
// A packet as an app leaves it, wherever its header is: the packet is not touched.
inline void freelist_push(packet_freelist* fl, packet* p) { fl->list[fl->nfree++] = p; }
// An entry's canonical place: itself when its header is there (most packets), else found from its
// headroom field.
inline packet* freelist_canonical(packet* entry) {
  if (entry->headroom != PACKET_HEADROOM) {
    entry = freelist_entry(reinterpret_cast<uint8_t*>(entry) -
                           (entry->headroom & PACKET_HEADROOM_MASK));
  }
  return entry;
}
// The caller checks nfree > 0 first. Returns the canonical place, whose header may hold anything
// (the caller writes a fresh one, or gives the slot to a driver).
inline packet* freelist_pop(packet_freelist* fl) {
  return freelist_canonical(fl->list[--fl->nfree]);
}

// Sets the pool's capacity; only before the first packet is allocated.
void set_packet_pool_max(int32_t max_packets);
// The smallest memory limit of the cgroups a process is in (v2 memory.max, v1
// memory.limit_in_bytes, up to the root of each hierarchy), given the text of its /proc/PID/cgroup
// and /proc/PID/mountinfo; 0 for none, else *file names where it is set. The pool's default
// capacity follows it (packet.cc).
uint64_t cgroup_memory_limit(const std::string& proc_cgroup, const std::string& mountinfo,
                             std::string* file);
// Allocation from C++ (native apps); throws std::runtime_error when the pool is exhausted.
packet* packet_allocate();
void packet_free(packet* p);

// Adds a slot from memory the pool does not own (DPDK's mbufs: drivers/dpdk) to the free list and
// counts it as allocated; throws when that would pass the pool's capacity.
void packet_pool_adopt(uint8_t* slot);

// A pool in a group (core.group, runtime/group.cc) maps no memory of its own: its free list is the
// worker's list in the group's shared memory (mapped over the pool's, at the same address, so
// compiled Lua keeps indexing it as a constant), grow takes a batch from the group and the engine
// gives a batch back between breaths when the list holds more than kGroupHighWater packets.
class PacketSource {
 public:
  virtual ~PacketSource() = default;
  // Pushes up to n free packets onto fl; returns how many (0: the group is at its cap).
  virtual int32_t take(packet_freelist* fl, int32_t n) = 0;
  // Moves the group's packets among fl's top n to the group; returns how many. adopted: fl may
  // hold slots that are not the group's (the pool has adopted some: DPDK's mbufs).
  virtual int32_t give(packet_freelist* fl, int32_t n, bool adopted) = 0;
  // What the exhaustion message says of the group ("the group in DIR: N packets").
  virtual std::string describe() const = 0;
  // The group's cap (packet.cap() in a worker).
  virtual int32_t cap() const = 0;
};
// A worker takes 2,048 at a time and gives back 512 at a time, above a stock of 2,048. Alternating
// runs of examples/pipeline.lua in two workers, and of the same with a second stage that reads each
// packet's length and a byte of it (as a network function does), Mpps:
//   take 1,024, give 2,048 (4,096 -> 2,048)   plain 130.8-141.2   reading 75.1-78.7
//   take 2,048, give 512 (2,560 -> 2,048)      plain 141.7-146.2   reading 77.0-80.4
//   take 1,024, give 512                       plain 135.3-149.3   reading 73.7-75.0
//   take 512, give 512                         plain 143.7-146.6   reading 66-67 (another hour)
constexpr int32_t kGroupBatch = 2048;                      // packets a grow takes from the group
constexpr int64_t kGroupLowWater = 2 * 1024;               // a give-back leaves this many ...
constexpr int64_t kGroupHighWater = kGroupLowWater + 512;  // ... once the list holds more than this
// Makes the pool take its packets from source; throws once packets have been allocated.
void packet_pool_join(PacketSource* source);
// The free list of a pool in a group (nullptr outside one), and the give-back, for the inline
// check.
extern packet_freelist* group_freelist;
void packet_pool_give_back();
// Called by the engine after each breath: one compare outside a group. (Demoting the lines of
// the packets a worker freed in the breath to the shared cache, CLDEMOTE, when it gives packets
// back, made two workers slower: apps/interlink/README.md.)
inline void packet_pool_rebalance() {
  if (group_freelist == nullptr) return;
  if (group_freelist->nfree > kGroupHighWater) packet_pool_give_back();
}

inline uint8_t* packet_slot(packet* p) {
  return reinterpret_cast<uint8_t*>(p) - (p->headroom & PACKET_HEADROOM_MASK);
}
// The packet's timestamp in nanoseconds since the epoch; false when it has none.
inline bool packet_timestamp(packet* p, uint64_t* ns) {
  if (!(p->headroom & PACKET_TIMESTAMPED)) return false;
  __builtin_memcpy(ns, packet_slot(p) + PACKET_TIMESTAMP_OFFSET, sizeof *ns);
  return true;
}
inline void packet_set_timestamp(packet* p, uint64_t ns) {
  __builtin_memcpy(packet_slot(p) + PACKET_TIMESTAMP_OFFSET, &ns, sizeof ns);
  p->headroom |= PACKET_TIMESTAMPED;
}
// The length on the wire of a snapped capture record, while the packet still has the length it
// was captured with (an app that changed it made a different packet); false otherwise.
inline bool packet_wire_length(packet* p, uint32_t* wire) {
  if (!(p->headroom & PACKET_SNAPPED)) return false;
  uint32_t lengths[2];  // wire, captured
  __builtin_memcpy(lengths, packet_slot(p) + PACKET_WIRE_LENGTH_OFFSET, sizeof lengths);
  if (lengths[1] != p->length) return false;
  *wire = lengths[0];
  return true;
}
// Marks p, as it is now, as a record of a wire_length-byte frame cut short.
inline void packet_set_wire_length(packet* p, uint32_t wire_length) {
  const uint32_t lengths[2] = {wire_length, p->length};
  __builtin_memcpy(packet_slot(p) + PACKET_WIRE_LENGTH_OFFSET, lengths, sizeof lengths);
  p->headroom |= PACKET_SNAPPED;
}

}  // namespace snabb::runtime
#endif
