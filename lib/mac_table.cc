// lib/mac_table.cc: the MAC table loops of Snabb's learning bridge (apps/bridge/learning.h's names,
// called by apps/bridge/mac_table.lua through ffi.C). A table is an array of buckets of
// SNABB_MAC_BUCKET_SIZE slots filled from the first; a slot whose mac is 0 is free, and so are the
// ones after it. The bridge keeps two tables (main, shadow) and learns into both.
#include "lib/c_helpers.h"

namespace snabb::lib {
namespace {

// The forwarding tables of learning.lua, in the order it fills pft_C.
enum { kUnicast = 0, kFlood = 1, kDiscard = 2 };

void insert(uint64_t mac, uint16_t port, uint16_t group, snabb_mac_hash_table* table,
            uint32_t index) {
  snabb_mac_entry* bucket = snabb_mac_bucket(table, index);
  for (int slot = 0; slot < SNABB_MAC_BUCKET_SIZE; ++slot) {
    snabb_mac_entry& entry = bucket[slot];
    if (entry.mac == mac) {  // known: it may have moved to another port
      entry.port = port;
      entry.group = group;
      return;
    }
    if (entry.mac == 0) {
      entry = {mac, port, group};
      table->entries++;
      if (slot == 0) table->ubuckets++;
      return;
    }
  }
  table->overflow = 1;  // the bucket is full: the Lua side resizes at its next timeout
}

const snabb_mac_entry* find(uint64_t mac, const snabb_mac_entry* bucket) {
  for (int slot = 0; slot < SNABB_MAC_BUCKET_SIZE && bucket[slot].mac != 0; ++slot) {
    if (bucket[slot].mac == mac) return &bucket[slot];
  }
  return nullptr;
}

void file(snabb_pft* pft, struct packet* p, snabb_port_list* plist) {
  snabb_pft_entry& entry = pft->entries[pft->length++];
  entry.p = p;
  if (plist) entry.plist = plist;
}

}  // namespace
}  // namespace snabb::lib

extern "C" {

void mac_table_insert(uint64_t mac, uint16_t port, uint16_t group, snabb_mac_hash_table** tables,
                      uint32_t index) {
  snabb::lib::insert(mac, port, group, tables[0], index);
  snabb::lib::insert(mac, port, group, tables[1], index);
}

snabb_mac_lookup_result* mac_table_lookup(uint64_t mac, snabb_mac_entry* bucket) {
  // A miss answers port 0 from a result nobody writes.
  static snabb_mac_lookup_result not_found = {0, 0};
  const snabb_mac_entry* entry = snabb::lib::find(mac, bucket);
  if (!entry) return &not_found;
  static_assert(offsetof(snabb_mac_entry, group) == offsetof(snabb_mac_entry, port) + 2);
  return reinterpret_cast<snabb_mac_lookup_result*>(const_cast<uint16_t*>(&entry->port));
}

void mac_table_lookup_pft(uint64_t mac, snabb_mac_entry* bucket, uint16_t port, uint16_t group,
                          struct packet* p, snabb_pft** pfts, snabb_port_list* flood_pl) {
  using snabb::lib::file;
  const snabb_mac_entry* entry = snabb::lib::find(mac, bucket);
  if (!entry) {
    file(pfts[snabb::lib::kFlood], p, flood_pl);
  } else if (entry->port == port || (group != 0 && entry->group == group)) {
    file(pfts[snabb::lib::kDiscard], p, nullptr);  // back where it came from (or its group)
  } else {
    // Unicast entries come with a one-port list of their own (learning.lua allocates them).
    snabb_pft* pft = pfts[snabb::lib::kUnicast];
    pft->entries[pft->length].plist->ports[0] = entry->port;
    file(pft, p, nullptr);
  }
}

}  // extern "C"
