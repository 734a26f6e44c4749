#include "runtime/link.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "runtime/error.h"

namespace snabb::runtime {

namespace {

// The one loop every packet passes through outside Lua (3% of basic1 with SSE2 alone): compiled
// also for AVX2 and AVX-512, picked at load time for the CPU at hand.
__attribute__((target_clones("avx512f", "avx2", "default"))) uint64_t sum_entry_lengths(
    packet* const* entries, uint32_t n) {
  uint64_t bytes = 0;
  for (uint32_t i = 0; i < n; ++i) bytes += link_entry_length(entries[i]);
  return bytes;
}

// Sum of the lengths in ring entries [from, to): at most two contiguous slices.
uint64_t sum_lengths(const Link* l, int32_t from, int32_t to) {
  const uint32_t n = std::min<uint32_t>(link_distance(from, to), LINK_RING_SIZE);
  const uint32_t start = from & LINK_RING_MASK;
  const uint32_t first = std::min<uint32_t>(n, LINK_RING_SIZE - start);
  return sum_entry_lengths(l->ring + start, first) + sum_entry_lengths(l->ring, n - first);
}

}  // namespace

LinkDelta link_sync(Link* l) {
  const int32_t w = l->write, r = l->read;
  if (w == l->synced_write && r == l->synced_read && l->stats.txdrop == l->synced_txdrop) {
    return {0, 0, 0};  // the common case for half of an app's links in each call
  }
  const uint32_t written = link_distance(l->synced_write, w);
  const uint64_t queued = sum_lengths(l, l->synced_write, w);
  const auto dropped = static_cast<uint32_t>(l->stats.txdrop - l->synced_txdrop);
  l->stats.txpackets += written + dropped;
  l->stats.txbytes += queued;
  l->queued_bytes += queued;
  l->synced_write = w;
  l->synced_txdrop = l->stats.txdrop;

  const uint32_t read = link_distance(l->synced_read, r);
  // A receiver usually empties its link, and then it has received every byte queued: no sum.
  const uint64_t received = r == w ? l->queued_bytes : sum_lengths(l, l->synced_read, r);
  l->stats.rxpackets += read;
  l->stats.rxbytes += received;
  l->queued_bytes -= received;
  l->synced_read = r;
  return {read, written, dropped};
}

}  // namespace snabb::runtime

namespace {

// Links start half-way into a cache line. Packet headers start cache-line aligned, and a store to a
// header followed by a load of a link's cursor at the same address modulo 4 KiB is a false
// dependency for the CPU (4K aliasing): basic1's Sink ran at a third of its speed in one run of
// three, depending on where the links landed.
constexpr size_t kLinkOffset = 32;

}  // namespace

extern "C" {

link* snabb_link_new(void) {
  const size_t bytes = (sizeof(link) + kLinkOffset + 63) & ~size_t{63};
  void* mem = std::aligned_alloc(64, bytes);
  if (!mem) {
    snabb::runtime::set_error("out of memory for a link (" + std::to_string(bytes) + " bytes)");
    return nullptr;
  }
  std::memset(mem, 0, sizeof(link) + kLinkOffset);
  return reinterpret_cast<link*>(static_cast<char*>(mem) + kLinkOffset);
}

int snabb_link_delete(link* l) {
  if (!l) return 0;
  const int rc = snabb_link_drain(l);
  std::free(reinterpret_cast<char*>(l) - kLinkOffset);
  return rc;
}

int snabb_link_drain(link* l) {
  snabb::runtime::link_sync(l);
  // A receive from an empty link (the caller's bug) leaves read past write, which would read as
  // 2^32 - 1 queued packets and free NULL ones (config_fuzz): nothing is queued then.
  if (snabb::runtime::link_nreadable(l) > LINK_RING_SIZE) {
    snabb::runtime::link_consume(l, snabb::runtime::link_nreadable(l));  // read = write
  }
  int rc = 0;
  while (!snabb::runtime::link_empty(l)) {
    packet* p = snabb::runtime::link_receive(l);
    l->stats.txdrop++;
    rc |= snabb::runtime::c_call(-1, [&] {
      snabb::runtime::packet_free(p);
      return 0;
    });
  }
  return rc;
}

void snabb_link_sync(link* l) { snabb::runtime::link_sync(l); }
}
