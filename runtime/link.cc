#include "runtime/link.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace snabb::runtime {

LinkDelta link_sync(Link* l) {
  // Writes first: a packet's length is noted while the packet is still in the ring, untouched.
  const int32_t w = l->write, r = l->read;
  const uint32_t written = static_cast<uint32_t>(w - l->synced_write) & LINK_CURSOR_MASK;
  uint64_t bytes = 0;
  for (int32_t i = l->synced_write; i != w; i = (i + 1) & LINK_CURSOR_MASK) {
    const uint16_t len = l->packets[i & LINK_RING_MASK]->length;
    l->lengths[i & LINK_RING_MASK] = len;
    bytes += len;
  }
  l->stats.txpackets += written + (l->stats.txdrop - l->synced_txdrop);
  l->stats.txbytes += bytes;
  l->synced_write = w;
  l->synced_txdrop = l->stats.txdrop;

  const uint32_t read = static_cast<uint32_t>(r - l->synced_read) & LINK_CURSOR_MASK;
  bytes = 0;
  for (int32_t i = l->synced_read; i != r; i = (i + 1) & LINK_CURSOR_MASK) {
    bytes += l->lengths[i & LINK_RING_MASK];
  }
  l->stats.rxpackets += read;
  l->stats.rxbytes += bytes;
  l->synced_read = r;
  return {read, written};
}

void link_transmit(Link* l, packet* p) {
  if (link_nreadable(l) == LINK_RING_SIZE) {
    l->stats.txdrop++;
    l->stats.txbytes += p->length;
    packet_free(p);
    return;
  }
  l->packets[l->write & LINK_RING_MASK] = p;
  l->write = (l->write + 1) & LINK_CURSOR_MASK;
}

}  // namespace snabb::runtime

extern "C" {

link* snabb_link_new(void) {
  void* mem = std::aligned_alloc(64, (sizeof(link) + 63) & ~size_t{63});
  if (!mem) throw std::bad_alloc();
  std::memset(mem, 0, sizeof(link));
  return static_cast<link*>(mem);
}

void snabb_link_delete(link* l) {
  if (!l) return;
  snabb::runtime::link_sync(l);
  while (!snabb::runtime::link_empty(l)) {
    snabb::runtime::packet_free(snabb::runtime::link_receive(l));
    l->stats.txdrop++;
  }
  std::free(l);
}

void snabb_link_sync(link* l) { snabb::runtime::link_sync(l); }
}
