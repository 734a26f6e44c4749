-- core.link: a ring of packets between two apps (struct link, runtime/link.h).
-- receive/transmit only move cursors; the engine folds that into link stats after each app call, so
-- the per-packet path stays a few instructions long. A ring entry is the packet's address with its
-- length in the top 16 bits: one store per transmit, and the length as sent for the byte counts.
-- The encoding's one other writer is C++'s (runtime/link.h: link_transmit, LinkBurst for drivers);
-- jit/ffi_layout_test checks each reads what the other writes.
-- The cursors count packets modulo 2^32: bit.tobit wraps them, and compiles to nothing (the JIT
-- does 32-bit integer math).
local ffi = require("ffi")
require("core.cdefs")
local packet = require("core.packet")
local stats = require("core.stats")
local c_error = require("core.lib").c_error
local C = ffi.C
local band, bor, lshift, rshift, tobit = bit.band, bit.bor, bit.lshift, bit.rshift, bit.tobit
local cast = ffi.cast

local M = {}

local SIZE, RING_MASK, LENGTH_SHIFT = C.LINK_RING_SIZE, C.LINK_RING_MASK, C.LINK_LENGTH_SHIFT
local ADDRESS_MASK = lshift(1ULL, C.PACKET_ADDRESS_BITS) - 1 -- packets lie below 2^48 (packet.h)
local packet_ptr_t = ffi.typeof("struct packet *")
local u64_t = ffi.typeof("uint64_t")
local free = packet.free

M.max = SIZE

-- When each link was made (Snabb's dtime: Unix seconds), by address.
local dtimes = {}
local function key (r) return tonumber(cast("uintptr_t", r)) end

-- new(name), free(r, name): Snabb's name ("a.out -> b.in") places the link, with its counters, in
-- the run directory's engine/links/NAME when core.stats publishes (runtime/stats.h); else (and
-- without a name) it lives in process memory.
function M.new (name)
   local r = stats.link(name) or C.snabb_link_new()
   if r == nil then c_error("link.new", 2) end
   dtimes[key(r)] = os.time()
   return r
end

-- nil would reach C as a NULL link and crash the process (found by config_fuzz); anything else
-- that is not a link, the FFI refuses with an error.
local function check_link (r, what)
   if r == nil then error(what .. ": no link (nil)", 3) end
end

-- Frees the link and the packets still in it.
function M.free (r, name) -- luacheck: ignore name
   check_link(r, "link.free")
   dtimes[key(r)] = nil
   local mapped, rc = stats.link_free(r)
   if not mapped then rc = C.snabb_link_delete(r) end
   if rc ~= 0 then c_error("link.free", 2) end
end

local function entry_packet (entry)
   return cast(packet_ptr_t, band(cast(u64_t, entry), ADDRESS_MASK))
end

function M.receive (r)
   local i = r.read
   local entry = r.ring[band(i, RING_MASK)]
   r.read = tobit(i + 1)
   return entry_packet(entry)
end

-- receive, and the packet's length as its entry carries it (as it was transmitted), without a read
-- of the packet: its header's line may be in another core's cache (a packet from an interlink).
function M.receive_length (r)
   local i = r.read
   local entry = cast(u64_t, r.ring[band(i, RING_MASK)])
   r.read = tobit(i + 1)
   return cast(packet_ptr_t, band(entry, ADDRESS_MASK)), tobit(rshift(entry, LENGTH_SHIFT))
end

-- Moves n packets from link `from` to link `to` as they are, their entries copied: a forwarder's
-- receive and transmit without a read of each packet (transmit reads its length). The caller
-- keeps n within nreadable(from) and nwritable(to). (The rings are indexed through their links in
-- the loop: `local ring = l.ring` is a reference that LuaJIT boxes, a cdata allocated per call,
-- when the loop's trace keeps it in a snapshot; with the interlink apps' loops changed the same way,
-- garbage collection left both workers of examples/pipeline.lua: 125.2 -> 132.9 Mpps, medians of 5
-- alternating runs, and one worker 170 -> 179.)
function M.move (from, to, n)
   local r, w = from.read, to.write
   for k = 0, n - 1 do
      to.ring[band(w + k, RING_MASK)] = from.ring[band(r + k, RING_MASK)]
   end
   from.read = tobit(r + n)
   to.write = tobit(w + n)
end

function M.front (r)
   if r.read == r.write then return nil end
   return entry_packet(r.ring[band(r.read, RING_MASK)])
end

function M.transmit (r, p)
   local w = r.write
   if tobit(w - r.read) == SIZE then
      r.stats.txdrop = r.stats.txdrop + 1
      r.stats.txbytes = r.stats.txbytes + p.length
      free(p)
   else
      local entry = bor(cast(u64_t, p), lshift(cast(u64_t, p.length), LENGTH_SHIFT))
      r.ring[band(w, RING_MASK)] = cast(packet_ptr_t, entry)
      r.write = tobit(w + 1)
   end
end

function M.nreadable (r) return tobit(r.write - r.read) end
function M.nwritable (r) return SIZE - tobit(r.write - r.read) end
M.nwriteable = M.nwritable -- (as Snabb's README spells it)
function M.empty (r) return r.read == r.write end
function M.full (r) return tobit(r.write - r.read) == SIZE end

-- The link's counters, brought up to date, as Snabb returns them: a table of numbers (dtime,
-- txpackets, txbytes, rxpackets, rxbytes, txdrop). Here txpackets and txbytes count what was
-- offered, dropped packets included (txpackets = rxpackets + queued + txdrop); Snabb's count what
-- was queued.
function M.stats (r)
   check_link(r, "link.stats")
   C.snabb_link_sync(r)
   local s = r.stats
   return {dtime = dtimes[key(r)] or 0, txpackets = tonumber(s.txpackets),
           txbytes = tonumber(s.txbytes), rxpackets = tonumber(s.rxpackets),
           rxbytes = tonumber(s.rxbytes), txdrop = tonumber(s.txdrop)}
end

function M.selftest ()
   print("selftest: core.link")
   local r = M.new()
   assert(M.empty(r) and M.nwritable(r) == SIZE)
   for i = 1, SIZE + 10 do M.transmit(r, packet.from_string(("%d"):format(i))) end
   assert(M.full(r) and M.nreadable(r) == SIZE)
   assert(packet.tostring(M.front(r)) == "1")
   local s = M.stats(r)
   assert(s.txpackets == SIZE + 10 and s.txdrop == 10)
   for _ = 1, 100 do free(M.receive(r)) end
   s = M.stats(r)
   assert(s.rxpackets == 100 and s.txpackets == s.rxpackets + M.nreadable(r) + s.txdrop)
   -- Bytes are counted as queued: "1".."9" are 1 byte, "10".."99" 2, "100" 3.
   assert(s.rxbytes == 9 + 180 + 3, tostring(s.rxbytes))
   -- Cursors wrap from 2^31 - 1 to -2^31 and from -1 to 0: start near each and keep going.
   while not M.empty(r) do free(M.receive(r)) end
   local rxbytes = M.stats(r).rxbytes
   for round, start in ipairs({2^31 - 6, -6}) do
      r.read, r.write, r.synced_read, r.synced_write = start, start, start, start
      for _ = 1, 20 do M.transmit(r, packet.from_string("abcd")) end
      assert(M.nreadable(r) == 20 and M.nwritable(r) == SIZE - 20 and r.write == tobit(start + 20))
      for _ = 1, 20 do free(M.receive(r)) end
      s = M.stats(r)
      assert(M.empty(r) and s.rxpackets == SIZE + 20 * round and s.txpackets == SIZE + 10 + 20 * round)
      assert(s.rxbytes == rxbytes + 80 * round)
   end
   -- stats as Snabb's: numbers, with when the link was made (dtime, Unix seconds).
   s = M.stats(r)
   assert(type(s.txpackets) == "number" and type(s.dtime) == "number" and s.dtime > 0)
   assert(M.nwriteable(r) == M.nwritable(r))
   M.free(r, "name")
   -- move carries packets as they are, across the ring's end, and the byte counts with them;
   -- receive_length gives each packet and its length without reading the packet (its length field
   -- says otherwise as it is received).
   local a, b = M.new(), M.new()
   a.read, a.write, a.synced_read, a.synced_write = SIZE - 3, SIZE - 3, SIZE - 3, SIZE - 3
   local sent = {}
   for k = 1, 7 do
      sent[k] = packet.from_string(("%0" .. k .. "d"):format(k))
      M.transmit(a, sent[k])
   end
   M.move(a, b, 5)
   assert(M.nreadable(a) == 2 and M.nreadable(b) == 5 and M.front(b) == sent[1])
   M.move(a, b, 2)
   for k = 1, 7 do
      local length = sent[k].length
      sent[k].length = 0xdead -- (what a read of the packet would see)
      local p, l = M.receive_length(b)
      assert(p == sent[k] and l == length, ("packet %d: length %d"):format(k, l))
      sent[k].length = length
      free(p)
   end
   local sa, sb = M.stats(a), M.stats(b)
   assert(sa.rxpackets == 7 and sb.txpackets == 7 and sb.rxpackets == 7 and sb.txbytes == 28 and
          sb.rxbytes == 28 and sa.rxbytes == 28, ("%d %d"):format(sb.txbytes, sb.rxbytes))
   M.free(a)
   M.free(b)
   -- A receive from an empty link returns NULL (the caller's bug); freeing the link then frees
   -- nothing more (it freed NULL packets, a crash).
   r = M.new()
   assert(M.receive(r) == nil)
   M.free(r)
   -- nil is an error in the caller's terms, not a NULL link in C (a crash).
   for _, f in ipairs({"stats", "free"}) do
      local ok, err = pcall(M[f], nil)
      assert(not ok and err:match("link%." .. f .. ": no link %(nil%)"), tostring(err))
   end
   print("selftest: core.link ok")
end

return M
