// The FFI regions of the runtime headers are compiled twice: by the C++ compiler and by LuaJIT's
// ffi.cdef (through core.cdefs). This checks both see the same layout, field by field, and that
// the two owners of the packet free list and of the link ring encoding (C++'s inline functions in
// runtime/packet.h and runtime/link.h, Lua's in core.packet and core.link) each read what the other
// writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "runtime/engine.h"
#include "runtime/link.h"
#include "runtime/packet.h"
#include "runtime/stats.h"
#include "vm/vm.h"

namespace snabb::vm {
namespace {

using runtime::Link;

enum class Kind { kSigned, kUnsigned, kOther };  // integers, and everything else

struct Field {
  std::string name;
  size_t offset;
  size_t size;
  size_t align;
  Kind kind;
};

struct Struct {
  std::string ctype;  // as Lua names it
  size_t size;
  size_t align;
  std::vector<Field> fields;
};

template <typename T>
Field make_field(const char* name, size_t offset) {
  Kind kind = Kind::kOther;
  if constexpr (std::is_integral_v<T>) kind = std::is_signed_v<T> ? Kind::kSigned : Kind::kUnsigned;
  if constexpr (std::is_unbounded_array_v<T>) {  // a flexible array member: no size of its own
    return {name, offset, 0, alignof(std::remove_extent_t<T>), kind};
  } else {
    return {name, offset, sizeof(T), alignof(T), kind};
  }
}

// Field F of type T as the C++ compiler lays it out.
#define CXX_FIELD(T, F) make_field<decltype(T::F)>(#F, offsetof(T, F))

// Every struct in the FFI regions, with every field. CoversTheWholeStruct below fails when a field
// is added in C++ but not here.
std::vector<Struct> ffi_structs() {
  return {
      {"struct packet",
       sizeof(packet),
       alignof(packet),
       {CXX_FIELD(packet, length), CXX_FIELD(packet, headroom), CXX_FIELD(packet, data)}},
      {"struct packet_freelist",
       sizeof(packet_freelist),
       alignof(packet_freelist),
       {CXX_FIELD(packet_freelist, nfree), CXX_FIELD(packet_freelist, max_packets),
        CXX_FIELD(packet_freelist, list)}},
      {"struct link_stats",
       sizeof(link_stats),
       alignof(link_stats),
       {CXX_FIELD(link_stats, txpackets), CXX_FIELD(link_stats, txbytes),
        CXX_FIELD(link_stats, rxpackets), CXX_FIELD(link_stats, rxbytes),
        CXX_FIELD(link_stats, txdrop)}},
      {"struct link",
       sizeof(Link),
       alignof(Link),
       {CXX_FIELD(Link, read), CXX_FIELD(Link, write), CXX_FIELD(Link, stats),
        CXX_FIELD(Link, synced_read), CXX_FIELD(Link, synced_write), CXX_FIELD(Link, synced_txdrop),
        CXX_FIELD(Link, queued_bytes), CXX_FIELD(Link, ring)}},
      {"struct app_stats",
       sizeof(app_stats),
       alignof(app_stats),
       {CXX_FIELD(app_stats, calls), CXX_FIELD(app_stats, cycles), CXX_FIELD(app_stats, packets_in),
        CXX_FIELD(app_stats, packets_out), CXX_FIELD(app_stats, errors),
        CXX_FIELD(app_stats, freed), CXX_FIELD(app_stats, idle_cycles)}},
      {"struct engine_stats",
       sizeof(engine_stats),
       alignof(engine_stats),
       {CXX_FIELD(engine_stats, breaths), CXX_FIELD(engine_stats, cycles),
        CXX_FIELD(engine_stats, packets), CXX_FIELD(engine_stats, breath_cycles),
        CXX_FIELD(engine_stats, heartbeat_ns)}},
      {"struct stats_header",
       sizeof(stats_header),
       alignof(stats_header),
       {CXX_FIELD(stats_header, magic), CXX_FIELD(stats_header, version),
        CXX_FIELD(stats_header, kind), CXX_FIELD(stats_header, offset),
        CXX_FIELD(stats_header, size), CXX_FIELD(stats_header, pid),
        CXX_FIELD(stats_header, created_ns), CXX_FIELD(stats_header, reserved)}},
      {"struct engine_info",
       sizeof(engine_info),
       alignof(engine_info),
       {CXX_FIELD(engine_info, tsc_hz), CXX_FIELD(engine_info, started_ns),
        CXX_FIELD(engine_info, breath_buckets), CXX_FIELD(engine_info, reserved)}},
      {"struct stats_engine_file",
       sizeof(stats_engine_file),
       alignof(stats_engine_file),
       {CXX_FIELD(stats_engine_file, header), CXX_FIELD(stats_engine_file, info),
        CXX_FIELD(stats_engine_file, stats)}},
      {"struct stats_app_file",
       sizeof(stats_app_file),
       alignof(stats_app_file),
       {CXX_FIELD(stats_app_file, header), CXX_FIELD(stats_app_file, stats)}},
      {"struct stats_link_file",
       sizeof(stats_link_file),
       alignof(stats_link_file),
       {CXX_FIELD(stats_link_file, header), CXX_FIELD(stats_link_file, pad),
        CXX_FIELD(stats_link_file, link)}},
  };
}

#undef CXX_FIELD

// Lua's view of a type, through the cdefs the runtime's Lua code uses.
constexpr char kLuaHelpers[] = R"lua(
local ffi = require("ffi")
require("core.cdefs")
require("core.stats_cdefs")

function struct_layout (ct)
   return ffi.sizeof(ct), ffi.alignof(ct)
end

-- Returns offset, size, kind (0 signed, 1 unsigned, 2 other) and, for integers, the offset of the
-- first byte a store to the field writes (nil, nil, nil when LuaJIT has no such field).
function field_layout (ct, name)
   local offset = ffi.offsetof(ct, name)
   if offset == nil then return nil end
   local o = ffi.new(ct)
   local v = o[name]
   local is64 = type(v) == "cdata" and (ffi.istype("int64_t", v) or ffi.istype("uint64_t", v))
   if type(v) == "cdata" and not is64 then
      -- Arrays, nested structs (references) and pointers; a flexible array member has no size.
      return offset, ffi.sizeof(v) or 0, 2, nil
   end
   -- Integers: store all ones into a zeroed struct and see which bytes change. (An int64_t -1:
   -- the number -1 converts to uint64_t as 2^63.)
   o[name] = ffi.cast("int64_t", -1)
   local bytes = ffi.cast("uint8_t *", o)
   local first, size = nil, 0
   for i = 0, ffi.sizeof(ct) - 1 do
      if bytes[i] ~= 0 then
         first = first or i
         size = size + 1
      end
   end
   return offset, size, o[name] < 0 and 0 or 1, first
end

function constant (name)
   return ffi.C[name]
end

-- Packets cross as addresses (below 2^48: exact in a double), passed in as decimal strings.
local packet, link = require("core.packet"), require("core.link")
local function ptr (ct, address) return ffi.cast(ct, tonumber(address)) end
local function address (p) return tonumber(ffi.cast("uintptr_t", p)) end
function lua_receive (l) return address(link.receive(ptr("struct link *", l))) end
function lua_transmit (l, p) link.transmit(ptr("struct link *", l), ptr("struct packet *", p)) end
function lua_allocate () return address(packet.allocate()) end
function lua_free (p) packet.free(ptr("struct packet *", p)) end
-- Makes p a 100-byte packet and moves its header `bytes` forward as packet.shiftleft does; returns
-- where it is now.
function lua_shiftleft (p, bytes)
   local q = ptr("struct packet *", p)
   q.length = 100
   return address(packet.shiftleft(q, tonumber(bytes)))
end
)lua";

class FfiLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override { vm_.run(kLuaHelpers, "=ffi_layout_test"); }

  // Calls global Lua function `fn` with string arguments; results as numbers, -1 for nil.
  std::vector<double> call(const char* fn, const std::vector<std::string>& args, int nresults) {
    lua_State* L = vm_.state();
    const int top = lua_gettop(L);
    lua_getglobal(L, fn);
    for (const std::string& a : args) lua_pushstring(L, a.c_str());
    std::vector<double> results;
    if (lua_pcall(L, static_cast<int>(args.size()), nresults, 0) != 0) {
      ADD_FAILURE() << fn << ": " << lua_tostring(L, -1);
      lua_settop(L, top);
      return std::vector<double>(nresults, -1);
    }
    for (int i = top + 1; i <= top + nresults; ++i) {
      results.push_back(lua_isnil(L, i) ? -1 : lua_tonumber(L, i));
    }
    lua_settop(L, top);
    return results;
  }

  LuaVm vm_;
};

TEST_F(FfiLayoutTest, StructSizesAndAlignmentsMatch) {
  for (const Struct& s : ffi_structs()) {
    const std::vector<double> lua = call("struct_layout", {s.ctype}, 2);
    EXPECT_EQ(lua[0], s.size) << "sizeof(" << s.ctype << ")";
    EXPECT_EQ(lua[1], s.align) << "alignof(" << s.ctype << ")";
  }
}

TEST_F(FfiLayoutTest, FieldOffsetsSizesAndSignednessMatch) {
  int checked = 0;
  for (const Struct& s : ffi_structs()) {
    for (const Field& f : s.fields) {
      const std::string what = s.ctype + "." + f.name;
      const std::vector<double> lua = call("field_layout", {s.ctype, f.name}, 4);
      ASSERT_NE(lua[0], -1) << what << ": LuaJIT's cdef has no such field";
      EXPECT_EQ(lua[0], f.offset) << "offsetof(" << what << ")";
      EXPECT_EQ(lua[1], f.size) << "sizeof(" << what << ")";
      EXPECT_EQ(lua[2], static_cast<int>(f.kind)) << what << ": signedness or kind differs";
      if (f.kind != Kind::kOther) {
        EXPECT_EQ(lua[3], f.offset) << what << ": a Lua store lands elsewhere";
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 51);
}

// The field lists above must account for every byte of each C++ struct (bar alignment padding),
// or a field added to a header would go unchecked.
TEST(FfiFieldListTest, CoversTheWholeStruct) {
  for (const Struct& s : ffi_structs()) {
    std::vector<Field> fields = s.fields;
    std::sort(fields.begin(), fields.end(),
              [](const Field& a, const Field& b) { return a.offset < b.offset; });
    size_t end = 0;
    for (const Field& f : fields) {
      const size_t aligned = (end + f.align - 1) / f.align * f.align;
      EXPECT_EQ(f.offset, aligned) << s.ctype << ": unlisted bytes before " << f.name;
      end = f.offset + f.size;
    }
    const size_t total = (end + s.align - 1) / s.align * s.align;
    EXPECT_EQ(s.size, total) << s.ctype << ": unlisted bytes after the last listed field";
  }
}

TEST_F(FfiLayoutTest, EnumConstantsMatch) {
  const std::map<std::string, long> constants = {
      {"PACKET_PAYLOAD_SIZE", PACKET_PAYLOAD_SIZE},
      {"PACKET_HEADROOM", PACKET_HEADROOM},
      {"PACKET_SLOT_SIZE", PACKET_SLOT_SIZE},
      {"PACKET_ADDRESS_BITS", PACKET_ADDRESS_BITS},
      {"PACKET_HEADROOM_MASK", PACKET_HEADROOM_MASK},
      {"LINK_RING_SIZE", LINK_RING_SIZE},
      {"LINK_RING_MASK", LINK_RING_MASK},
      {"LINK_LENGTH_SHIFT", LINK_LENGTH_SHIFT},
      {"STATS_MAGIC", STATS_MAGIC},
      {"STATS_VERSION", STATS_VERSION},
      {"STATS_ENGINE", STATS_ENGINE},
      {"STATS_APP", STATS_APP},
      {"STATS_LINK", STATS_LINK},
  };
  for (const auto& [name, value] : constants) {
    const std::vector<double> lua = call("constant", {name}, 1);
    EXPECT_EQ(lua[0], value) << "ffi.C." << name;
  }
}

std::string address(const void* p) { return std::to_string(reinterpret_cast<uintptr_t>(p)); }

// Packets of every length a ring entry must carry, and one whose header moved to an odd address.
std::vector<packet*> test_packets() {
  std::vector<packet*> packets;
  for (int length : {0, 1, 60, 1500, 9000, int{PACKET_PAYLOAD_SIZE}}) {
    packet* p = runtime::packet_allocate();
    p->length = static_cast<uint16_t>(length);
    packets.push_back(p);
  }
  packet* moved = runtime::packet_allocate();
  moved->length = 100;
  packets.push_back(reinterpret_cast<packet*>(reinterpret_cast<uint8_t*>(moved) + 3));
  packets.back()->length = 97;
  packets.back()->headroom = PACKET_HEADROOM + 3;
  return packets;
}

// Entries C++ writes (link_transmit, a driver's LinkBurst), Lua's link.receive reads; entries
// Lua's link.transmit writes, C++ reads (link_receive, link_peek, and link_sync's byte counts from
// the lengths in the entries).
TEST_F(FfiLayoutTest, RingEncodingIsTheSameInCppAndLua) {
  Link* l = snabb_link_new();
  ASSERT_NE(l, nullptr);
  const std::vector<packet*> packets = test_packets();
  for (size_t i = 0; i < packets.size(); ++i) {
    if (i % 2) {
      runtime::link_transmit(l, packets[i]);
    } else {
      runtime::LinkBurst burst(l);
      burst.put(packets[i]);
      burst.commit();
    }
  }
  for (packet* p : packets) {
    EXPECT_EQ(call("lua_receive", {address(l)}, 1)[0], reinterpret_cast<uintptr_t>(p))
        << "Lua read another packet from C++'s entry for a " << p->length << "-byte packet";
  }
  snabb_link_sync(l);
  uint64_t bytes = 0;
  for (packet* p : packets) {
    call("lua_transmit", {address(l), address(p)}, 0);
    bytes += p->length;
  }
  EXPECT_EQ(runtime::link_peek(l, 1), packets[1]);
  for (packet* p : packets) EXPECT_EQ(runtime::link_receive(l), p);
  snabb_link_sync(l);
  EXPECT_EQ(l->stats.rxbytes, 2 * bytes) << "C++ read other lengths from Lua's entries";
  for (packet* p : packets) runtime::packet_free(p);
  snabb_link_delete(l);
}

// A packet C++ frees (freelist_push, freelist_push_slot) is the one Lua's packet.allocate takes
// next, at its slot's canonical place; one Lua frees is the one C++'s freelist_pop takes.
TEST_F(FfiLayoutTest, FreeListEntriesAreTheSameInCppAndLua) {
  packet_freelist* fl = snabb_packet_freelist();
  ASSERT_NE(fl, nullptr);
  for (packet* p : test_packets()) {
    uint8_t* slot = runtime::packet_slot(p);
    const auto canonical = reinterpret_cast<uintptr_t>(slot + PACKET_HEADROOM);
    runtime::freelist_push(fl, p);
    EXPECT_EQ(call("lua_allocate", {}, 1)[0], canonical) << "after C++'s freelist_push";
    runtime::freelist_push_slot(fl, slot);
    EXPECT_EQ(call("lua_allocate", {}, 1)[0], canonical) << "after C++'s freelist_push_slot";
    const std::vector<double> moved = call("lua_shiftleft", {std::to_string(canonical), "5"}, 1);
    call("lua_free", {std::to_string(static_cast<uintptr_t>(moved[0]))}, 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(runtime::freelist_pop(fl)), canonical)
        << "after Lua's packet.free";
    runtime::freelist_push_slot(fl, slot);
  }
}

// The harness itself must be able to see a mismatch.
TEST_F(FfiLayoutTest, HelpersDetectMissingFields) {
  EXPECT_EQ(call("field_layout", {"struct link", "no_such_field"}, 4)[0], -1);
  const std::vector<double> length = call("field_layout", {"struct packet", "length"}, 4);
  EXPECT_EQ(length[1], 2);
  EXPECT_EQ(length[2], static_cast<int>(Kind::kUnsigned));
  const std::vector<double> nfree = call("field_layout", {"struct packet_freelist", "nfree"}, 4);
  EXPECT_EQ(nfree[1], 8);
  EXPECT_EQ(nfree[2], static_cast<int>(Kind::kSigned));
}

}  // namespace
}  // namespace snabb::vm
