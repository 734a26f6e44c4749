-- core.packet: allocate, free and edit packets (struct packet, runtime/packet.h).
-- The free list is a LIFO stack shared with C++; allocate/free are written so the JIT inlines them
-- into an app's loop (no C call unless the pool has to grow). The list's one other writer is C++'s
-- freelist_push/freelist_pop (runtime/packet.h); jit/ffi_layout_test checks the two agree.
local ffi = require("ffi")
require("core.cdefs")
local c_error = require("core.lib").c_error
ffi.cdef("void *memmove(void *dst, const void *src, size_t n);")
require("core.lib_h") -- prefetch_for_write
local C = ffi.C
local cast, copy, fill = ffi.cast, ffi.copy, ffi.fill
local band, bor = bit.band, bit.bor

local M = {}

local packet_ptr_t = ffi.typeof("struct packet *")
local u8_ptr_t = ffi.typeof("uint8_t *")
local u32_ptr_t = ffi.typeof("uint32_t *")
local u64_ptr_t = ffi.typeof("uint64_t *")
local HEADROOM = C.PACKET_HEADROOM
local HEADROOM_MASK, TIMESTAMPED = C.PACKET_HEADROOM_MASK, C.PACKET_TIMESTAMPED
local TIMESTAMP_OFFSET, WIRE_LENGTH_OFFSET = C.PACKET_TIMESTAMP_OFFSET, C.PACKET_WIRE_LENGTH_OFFSET
-- Flags whose data sits at the slot's end: a timestamp, a snapped record's wire length.
local CAPTURED = bor(TIMESTAMPED, C.PACKET_SNAPPED)
local MAX_SHIFT = 2 * HEADROOM -- how far the header may move forward before we memmove instead
local PAYLOAD = C.PACKET_PAYLOAD_SIZE
-- A fresh packet's header (length 0, headroom HEADROOM) as one little-endian 32-bit store.
local FRESH_HEADER = HEADROOM * 65536

M.max_payload = PAYLOAD
M.headroom = HEADROOM
-- Snabb's layout constants: a fresh packet has default_headroom bytes before its header, which
-- prepend and shiftleft move within packet_alignment bytes (ours: within 2 * headroom, in a
-- 10,816-byte slot, so the header's address modulo 512 is not its headroom as in Snabb), and
-- keep at least minimum_alignment-aligned.
M.default_headroom = HEADROOM
M.packet_alignment = MAX_SHIFT
M.minimum_alignment = 2

local freelist = C.snabb_packet_freelist()
if freelist == nil then c_error(nil, 0) end

-- Called by pop, called by allocate or clone: the error names their caller (level 4). At the cap,
-- the message says what the cap is and where it comes from (runtime/packet.cc), and which app was
-- allocating; the engine stops the process with it (engine.main).
local function grow ()
   local added = C.snabb_packet_grow()
   if added < 0 then c_error(nil, 4) end
   if added == 0 then
      local app = ffi.string(C.snabb_engine_current_app())
      error(ffi.string(C.snabb_error()) ..
            (app ~= "" and (" (the last allocation was by app '%s')"):format(app) or ""), 4)
   end
end

-- A packet off the free list at its slot's canonical place, whose header may hold anything. An
-- entry is the packet as it was freed: its headroom field says where its slot starts (most are in
-- place already). This line is the one the caller writes next.
local function pop ()
   if freelist.nfree == 0 then grow() end
   local n = freelist.nfree - 1
   freelist.nfree = n
   local p = freelist.list[n]
   local headroom = p.headroom
   if headroom ~= HEADROOM then
      p = cast(packet_ptr_t, cast(u8_ptr_t, p) - band(headroom, HEADROOM_MASK) + HEADROOM)
   end
   return p
end

-- Prefetches for writing the packet k places down the free list (the one the k+1-th allocation
-- from now takes). For a source in a worker of a group (apps.pcap's Replay): the slots another
-- worker freed are in that core's cache, and a write to each stalls on taking its line back;
-- Replay prefetching 16 ahead sent 24.2 -> 36.9 Mpps through examples/pipeline.lua's two
-- workers. Compiled, the call is one PREFETCHW (third_party/luajit/prefetch-intrinsic.patch).
-- Not for one process, whose slots are in its own cache (as a C call it cost Replay 14% there).
function M.prefetch_ahead (k)
   local n = freelist.nfree - 1 - k
   if n >= 0 then C.prefetch_for_write(freelist.list[n]) end
end

-- The header is made fresh here, not when the packet is freed: the allocating app writes this
-- cache line next anyway, while a freed packet's line (say, one a NIC sent) may be cold.
local function allocate ()
   local p = pop()
   cast(u32_ptr_t, p)[0] = FRESH_HEADER
   return p
end

local function free (p)
   local n = freelist.nfree
   -- (nil would go on the list as NULL, for an allocation to crash on: free reads no field of p
   -- that would refuse it. A NULL cdata pointer is nil here too.)
   if n >= freelist.max_packets or p == nil then
      if p == nil then error("packet.free: not a packet (nil)", 2) end
      error("packet.free: more packets freed than allocated (freed twice?)", 2)
   end
   -- p goes on the list as it is, its header wherever it is: free neither reads nor writes the
   -- packet, so a packet freed in another worker than the one that wrote it leaves its cache
   -- line there (pop puts it back in place; runtime/packet.h).
   freelist.list[n] = p
   freelist.nfree = n + 1
end

local function check_length (length, what)
   if length > PAYLOAD then
      error(("%s: packet would be %d bytes, more than the %d-byte maximum"):format(
         what, length, PAYLOAD), 3)
   end
end

-- A small packet and its header are one 64-byte block (60 bytes, a minimum Ethernet frame without
-- FCS, share the header's cache line), which clone copies whole: as a struct of vectors, which
-- compiles to two 32-byte moves with AVX2, else four 16-byte ones
-- (third_party/luajit/vector-copies.patch), and with no barrier after it (ffi.copy has one, after
-- which the JIT reloads every value it holds: link cursors, the template's length). By LuaJIT's
-- type-based alias analysis these stores alias nothing else.
local SMALL = 60
-- Whether the JIT uses a CPU feature (jit.status() lists them after its on/off flag).
local function jit_uses (feature)
   for _, f in ipairs({select(2, jit.status())}) do
      if f == feature then return true end
   end
   return false
end
local small_packet_ptr_t
if jit_uses("AVX2") then
   ffi.cdef("typedef uint8_t snabb_v256 __attribute__((vector_size(32)));")
   small_packet_ptr_t = ffi.typeof("struct { snabb_v256 w0, w1; } *")
else
   ffi.cdef("typedef uint8_t snabb_v128 __attribute__((vector_size(16)));")
   small_packet_ptr_t = ffi.typeof("struct { snabb_v128 w0, w1, w2, w3; } *")
end

-- The timestamp's place in p's slot (see PACKET_TIMESTAMPED in runtime/packet.h).
local function timestamp_ptr (p)
   return cast(u64_ptr_t, cast(u8_ptr_t, p) - band(p.headroom, HEADROOM_MASK) + TIMESTAMP_OFFSET)
end

-- Nanoseconds since the epoch (a uint64_t cdata), or nil for a packet without a timestamp.
local function timestamp (p)
   if band(p.headroom, TIMESTAMPED) == 0 then return nil end
   return timestamp_ptr(p)[0]
end

local function set_timestamp (p, ns)
   timestamp_ptr(p)[0] = ns
   p.headroom = bor(p.headroom, TIMESTAMPED)
end

-- A fresh clone c of p gets p's timestamp and wire length (16 bytes at the slot's end) and flags.
local function copy_captured (c, p, headroom)
   local from = cast(u64_ptr_t, cast(u8_ptr_t, p) - band(headroom, HEADROOM_MASK) + WIRE_LENGTH_OFFSET)
   local to = cast(u64_ptr_t, cast(u8_ptr_t, c) - HEADROOM + WIRE_LENGTH_OFFSET)
   to[0], to[1] = from[0], from[1]
   c.headroom = bor(HEADROOM, band(headroom, CAPTURED))
end

local function clone (p)
   local c = pop()
   local length, headroom = p.length, p.headroom
   if length <= SMALL then
      cast(small_packet_ptr_t, c)[0] = cast(small_packet_ptr_t, p)[0]
      if headroom == HEADROOM then return c end -- the header copied is a fresh one
      c.headroom = HEADROOM
   else
      cast(u32_ptr_t, c)[0] = FRESH_HEADER
      c.length = length
      copy(c.data, p.data, length)
   end
   if band(headroom, CAPTURED) ~= 0 then copy_captured(c, p, headroom) end
   return c
end

local function append (p, ptr, length)
   check_length(p.length + length, "packet.append")
   copy(p.data + p.length, ptr, length)
   p.length = p.length + length
   return p
end

-- Opens `bytes` at the front of the packet; returns the (possibly moved) packet.
-- (The headroom field keeps its timestamp flag: only its low bits change.)
local function shiftright (p, bytes)
   local length, field = p.length, p.headroom
   check_length(length + bytes, "packet.shiftright")
   if bytes <= band(field, HEADROOM_MASK) then
      p = cast(packet_ptr_t, cast(u8_ptr_t, p) - bytes)
      p.length, p.headroom = length + bytes, field - bytes
   else
      C.memmove(p.data + bytes, p.data, length)
      p.length = length + bytes
   end
   return p
end

-- Removes `bytes` from the front of the packet; returns the (possibly moved) packet.
local function shiftleft (p, bytes)
   local length, field = p.length, p.headroom
   if bytes > length then
      error(("packet.shiftleft: %d bytes from a %d-byte packet"):format(bytes, length), 2)
   end
   if band(field, HEADROOM_MASK) + bytes <= MAX_SHIFT then
      p = cast(packet_ptr_t, cast(u8_ptr_t, p) + bytes)
      p.length, p.headroom = length - bytes, field + bytes
   else
      C.memmove(p.data, p.data + bytes, length - bytes)
      p.length = length - bytes
   end
   return p
end

local function prepend (p, ptr, length)
   p = shiftright(p, length)
   copy(p.data, ptr, length)
   return p
end

-- Sets the length; bytes gained at the end are zeroed.
local function resize (p, length)
   check_length(length, "packet.resize")
   if length > p.length then fill(p.data + p.length, length - p.length) end
   p.length = length
   return p
end

local function from_pointer (ptr, length)
   return append(allocate(), ptr, length)
end

local function from_string (s)
   return from_pointer(s, #s)
end

M.allocate, M.free, M.clone = allocate, free, clone

-- Snabb's free() is account_free (counting the free for engine.report_load) then free_internal
-- (back to the free list). Here the engine counts what apps receive instead, so account_free counts
-- nothing and free_internal is free: a driver that hands packets back in its own way calls both,
-- as in Snabb.
function M.account_free (p) end -- luacheck: ignore p
M.free_internal = free
-- Snabb's pool setup calls: the pool here is made on first use and grows by itself
-- (initialize(max_packets) sets the cap, as set_max_packets does, when given before the first
-- allocation); a group free list between processes is the workers' business (no-op).
function M.initialize (max_packets)
   if max_packets and M.allocated() == 0 then M.set_max_packets(max_packets) end
end
function M.enable_group_freelist () end
function M.shutdown () end -- luacheck: ignore
function M.preallocate_step ()
   if C.snabb_packet_grow() < 0 then c_error("packet.preallocate_step", 2) end
end
function M.new_packet () return allocate() end

-- Debug mode (snabb --debug, SNABB_DEBUG): free refuses a packet that is already free, naming the
-- app. A freed packet's header gets length 0xFFFF, more than any packet holds; every allocation
-- (allocate, clone, C++'s packet_allocate, a driver's receive) writes a fresh header, so the mark
-- lasts exactly as long as the packet is free. Only the function changes, so the normal free is
-- the same code as without debug mode. (A packet freed first by C++ carries no mark.)
local FREED = 0xFFFF
local function checked_free (p)
   if p.length == FREED then
      local app = ffi.string(C.snabb_engine_current_app())
      error(("packet.free: packet %s freed twice%s"):format(
         tostring(cast("void *", p)):gsub("^cdata<void %*>: ", ""),
         app ~= "" and (" (in app '%s')"):format(app) or ""), 2)
   end
   p.length = FREED
   free(p)
end

-- Call before any module copies packet.free into a local (programs/main.lua does, first thing).
function M.set_debug (on)
   M.free = on and checked_free or free
end
M.append, M.prepend, M.shiftleft, M.shiftright, M.resize = append, prepend, shiftleft, shiftright, resize
M.from_pointer, M.from_string = from_pointer, from_string
M.timestamp, M.set_timestamp = timestamp, set_timestamp
function M.data (p) return p.data end
function M.length (p) return p.length end
function M.tostring (p) return ffi.string(p.data, p.length) end
-- Packets ever taken from the operating system (the pool only grows), those free, those in use
-- (held by apps and links), and the cap (runtime/packet.h).
function M.allocated () return C.snabb_packet_allocated() end
function M.nfree () return tonumber(freelist.nfree) end
function M.in_use () return M.allocated() - M.nfree() end
function M.cap () return C.snabb_packet_cap() end
-- The message of the pool found at its cap, if that happened since the last call.
local exhaustions_seen = 0
function M.exhausted ()
   local n = tonumber(C.snabb_packet_exhaustions())
   if n == exhaustions_seen then return nil end
   exhaustions_seen = n
   return ffi.string(C.snabb_packet_exhaustion())
end
-- Caps the pool (default: see snabb_packet_cap); only before the first packet is allocated.
function M.set_max_packets (n)
   if C.snabb_packet_set_max(n) ~= 0 then c_error("packet.set_max_packets", 2) end
end

function M.selftest ()
   print("selftest: core.packet")
   local nfree0 = M.nfree()
   local p = from_string("world")
   assert(M.tostring(p) == "world" and p.headroom == HEADROOM)
   p = prepend(p, "hello ", 6)
   assert(M.tostring(p) == "hello world" and p.headroom == HEADROOM - 6)
   p = shiftleft(p, 6)
   assert(M.tostring(p) == "world" and p.headroom == HEADROOM)
   append(p, "!", 1)
   assert(M.tostring(p) == "world!")
   local c = clone(p)
   assert(c ~= p and M.tostring(c) == "world!")
   -- A clone has a fresh header whatever the original's headroom, small or large.
   for _, size in ipairs({0, 1, 55, 56, 57, 58, 59, 60, 61, 1500}) do
      local o = prepend(from_string(string.rep("q", size)), "hd", 2)
      local k = clone(o)
      assert(k.length == size + 2 and k.headroom == HEADROOM and M.tostring(k) == M.tostring(o),
             ("clone of %d bytes"):format(size + 2))
      free(k); free(o)
   end
   -- Small clones move data through vector registers: every bit pattern survives, NaNs of all
   -- kinds, interpreted and compiled (the loop runs often enough to be traced).
   local nans = {"\1\0\0\0\0\0\240\127", "\0\0\0\0\0\0\248\255", "\255\255\255\255\255\255\255\255",
                 "\0\0\0\0\0\0\240\255", "\1\0\0\0\0\0\0\0"}
   local patterns = {}
   for i = 1, 200 do
      local bytes = {}
      for j = 1, 60 do bytes[j] = string.char((i * 37 + j * 11) % 256) end
      local s60 = table.concat(bytes)
      local at = i % 53
      patterns[i] = s60:sub(1, at) .. nans[i % #nans + 1] .. s60:sub(at + 9)
   end
   for i = 1, #patterns do
      local o = from_string(patterns[i])
      local k = clone(o)
      assert(M.tostring(k) == patterns[i] and k.length == 60 and k.headroom == HEADROOM,
             ("clone of bit pattern %d"):format(i))
      free(k); free(o)
   end
   -- Prepending more than the headroom moves the payload instead of the header.
   local big = prepend(from_string("x"), string.rep("a", HEADROOM + 10), HEADROOM + 10)
   assert(big.length == HEADROOM + 11 and big.data[HEADROOM + 10] == string.byte("x"))
   -- Many small shifts: the header moves until MAX_SHIFT, then the payload is moved.
   local s = from_string(string.rep("y", 1000) .. "z")
   for _ = 1, 1000 do s = shiftleft(s, 1) end
   assert(M.tostring(s) == "z" and s.headroom <= MAX_SHIFT)
   resize(s, 3)
   assert(s.data[1] == 0 and s.data[2] == 0)
   for _, q in ipairs({p, c, big, s}) do free(q) end
   assert(M.nfree() == nfree0 or nfree0 == 0, "free list lost packets")
   -- Every freed packet is back in its canonical place with a fresh header.
   local q = allocate()
   assert(q.length == 0 and q.headroom == HEADROOM)
   free(q)
   assert(not pcall(append, allocate(), ffi.new("char[?]", PAYLOAD + 1), PAYLOAD + 1))
   -- Timestamps survive header moves and clones, and go away with free.
   local t = from_string("stamped")
   assert(timestamp(t) == nil)
   set_timestamp(t, 1234567890123456789ULL)
   t = prepend(t, "ab", 2)
   t = shiftleft(t, 5)
   assert(timestamp(t) == 1234567890123456789ULL and M.tostring(t) == "mped")
   assert(band(t.headroom, HEADROOM_MASK) == HEADROOM + 3)
   local tc = clone(t)
   assert(timestamp(tc) == 1234567890123456789ULL and M.tostring(tc) == "mped")
   assert(band(tc.headroom, HEADROOM_MASK) == HEADROOM)
   free(tc)
   free(t)
   local fresh = allocate()
   assert(timestamp(fresh) == nil and fresh.headroom == HEADROOM)
   free(fresh)
   -- Debug mode refuses a second free of a packet, and the free list stays as it was.
   M.set_debug(true)
   local twice = allocate()
   M.free(twice)
   local nfree = M.nfree()
   local ok, err = pcall(M.free, twice)
   assert(not ok and err:match("packet.free: packet 0x%x+ freed twice"), err)
   assert(M.nfree() == nfree and M.free ~= free)
   M.free(allocate()) -- a packet allocated again frees normally
   M.set_debug(false)
   assert(M.free == free)
   -- Snabb's constants and calls: a fresh packet's headroom, account_free then free_internal as a
   -- driver frees, a new packet, the pool calls (initialize after the first allocation changes
   -- nothing).
   assert(M.default_headroom == 256 and M.packet_alignment == 512 and M.minimum_alignment == 2)
   local fresh_one = M.new_packet()
   assert(fresh_one.length == 0 and band(fresh_one.headroom, HEADROOM_MASK) == M.default_headroom)
   nfree = M.nfree()
   M.account_free(fresh_one)
   M.free_internal(fresh_one)
   assert(M.nfree() == nfree + 1)
   -- nil is refused, the list left as it was (free reads nothing of a packet that would refuse it).
   local ok_nil, err_nil = pcall(free, nil)
   assert(not ok_nil and err_nil:match("packet.free: not a packet %(nil%)") and M.nfree() == nfree + 1)
   local cap = M.cap()
   M.initialize(100)
   M.enable_group_freelist()
   M.shutdown()
   assert(M.cap() == cap)
   print("selftest: core.packet ok")
end

return M
