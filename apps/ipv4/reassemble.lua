-- apps.ipv4.reassemble: Reassembler (Snabb's name and config), which puts IPv4 fragments back
-- together (RFC 791) with bounded memory: at most max_concurrent_reassemblies datagrams in
-- progress (when full, a random one is evicted for a new one, as in Snabb), at most
-- max_fragments_per_reassembly fragments each, and `timeout` seconds for each to complete. A
-- fragment that overlaps another of its datagram abandons the whole datagram (RFC 5722, applied to
-- IPv4 as Snabb does), so overlapping writes can never rewrite data already received (Teardrop, TCP
-- header overwrites); an exact duplicate is dropped alone (RFC 8200 4.5). Datagrams are keyed by
-- (source, destination, protocol, identification, 802.1Q VLAN). Unfragmented packets and frames
-- that are not IPv4 pass untouched on a fast path (a few byte reads). The output datagram is the
-- first fragment's headers with the total length, MF and offset rewritten and a new checksum: the
-- original packet's bytes when it was cut by a router (apps.ipv4.fragment).
--
-- State lives in FFI arrays sized at new(): slots, the fragments' ranges, and an open-addressing
-- index (linear probing, at most a quarter full, a seeded hash so chosen keys cannot make long
-- probe runs); each datagram in progress holds one packet from the pool as its buffer, the
-- fragments' data copied into it at their offsets. Nothing is allocated per fragment but that
-- buffer per datagram.
local ffi = require("ffi")
local bit = require("bit")
local packet = require("core.packet")
local link = require("core.link")
local counter = require("core.counter")
local engine = require("core.engine")
local header = require("apps.ipv4.header")

local band, bor, bxor = bit.band, bit.bor, bit.bxor
local lshift, rshift, rol, tobit = bit.lshift, bit.rshift, bit.rol, bit.tobit
local receive, transmit = link.receive, link.transmit
local allocate, free, copy = packet.allocate, packet.free, ffi.copy
local l2_length, header_length = header.l2_length, header.header_length
local get16, set16 = header.get16, header.set16
local checksum = require("lib.checksum")
local checksum_ok, set_checksum = checksum.verify_ipv4_header, checksum.ipv4_header
local MF, OFFSET_MASK = header.MF, header.OFFSET_MASK

local M = {}

-- Where a datagram's data starts in its buffer: room before it for the largest link and IPv4
-- headers (18 + 60), which the first fragment's go right in front of.
local BASE = header.MAX_L2 + 60
local CAPACITY = packet.max_payload - BASE -- the most data a reassembled datagram may hold here
local UNTAGGED = 0x1000 -- the VLAN part of the key of untagged frames (VIDs are 12 bits)

local slot_t = ffi.typeof[[
struct {
   uint32_t src, dst;          /* addresses as read from the header (only compared) */
   int32_t hash;
   uint32_t x;                 /* identification * 256 + protocol */
   uint16_t vid;
   uint8_t l2, ihl;            /* the first fragment's header lengths (ihl 0: not yet) */
   uint16_t nfrags;
   int32_t final_end;          /* end of the last fragment's data; -1 until it arrives */
   int32_t min_start, max_end; /* the data received lies within [min_start, max_end) */
   int32_t received;           /* bytes received so far */
   int32_t prev, next;         /* in order of arrival, oldest first (-1: none) */
   double deadline;
   struct packet *buf;
}]]
local u32_ptr_t = ffi.typeof("uint32_t *")

-- A seeded hash of the key: xor, rotate and multiply by odd 18-bit constants (a bijection mod
-- 2^32, and not linear, so colliding keys depend on the seed), exact in doubles (|h| < 2^31 times
-- < 2^18). Straight-line bit operations: murmur3's full 32-bit multiplies, written as calls,
-- made LuaJIT abort the push loop's trace ("loop unroll limit reached") and reassembly ran at
-- 20 us a datagram (tools/bench-frag.lua).
local function hash (seed, src, dst, x, vid)
   local h = tobit(bxor(seed, src) * 0x2c1b3)
   h = tobit(bxor(rol(h, 13), dst) * 0x297a5)
   h = tobit(bxor(rol(h, 13), x) * 0x3b9c1)
   h = tobit(bxor(rol(h, 13), vid) * 0x2f6d7)
   h = tobit(bxor(h, rshift(h, 15)) * 0x2c1b3)
   return bxor(h, rshift(h, 16))
end

local Reassembler = {
   config = {
      max_concurrent_reassemblies = {default = 20000, integer = true, min = 1, max = 1000000},
      max_fragments_per_reassembly = {default = 40, integer = true, min = 1, max = 8192},
      timeout = {default = 30, type = "number", min = 0.001, max = 3600, unit = "seconds"},
   },
   shm = {},
}
M.Reassembler = Reassembler

-- Counters (apps/ipv4/README.md says what each counts and how they add up).
local COUNTERS = {
   "in-ipv4-frag-reassembly-unneeded", "in-ipv4-frag-needs-reassembly",
   "in-ipv4-frag-reassembled", "frag-reassembled", "drop-ipv4-malformed",
   "drop-frag-bad-length", "drop-frag-too-big", "drop-frag-duplicate", "drop-frag-overlap",
   "drop-frag-bad-end", "drop-frag-too-many", "drop-frag-timeout", "drop-frag-evicted",
   "drop-ipv4-frag-invalid-reassembly", "drop-ipv4-frag-random-evicted",
   "drop-ipv4-frag-timeout", "held-reassemblies", "held-fragments",
   "memuse-ipv4-frag-reassembly-buffer",
}
for _, name in ipairs(COUNTERS) do Reassembler.shm[name] = {counter} end
M.counters = COUNTERS

function Reassembler:new (conf)
   local n, f = conf.max_concurrent_reassemblies, conf.max_fragments_per_reassembly
   local size = 2
   while size < 4 * n do size = size * 2 end
   local o = setmetatable({
      n = n, f = f, timeout = conf.timeout,
      slots = ffi.new(ffi.typeof("$[?]", slot_t), n),
      starts = ffi.new("uint16_t[?]", n * f),
      ends = ffi.new("uint16_t[?]", n * f),
      index = ffi.new("int32_t[?]", size), mask = size - 1,
      free_slots = ffi.new("int32_t[?]", n), nfree = n,
      head = -1, tail = -1, active = 0, held = 0,
      seed = math.random(0, 0x7fffffff),
      now = engine.now, -- the clock (a test may set its own)
      t = 0,            -- its reading at the start of this push
      queue = ffi.new("struct packet *[?]", link.max), -- this push's packets from its first fragment
      is_fragment = ffi.new("uint8_t[?]", link.max),
   }, {__index = Reassembler})
   ffi.fill(o.index, size * 4, 0xff) -- -1: empty
   for i = 0, n - 1 do o.free_slots[i] = n - 1 - i end
   o.table_bytes = n * (ffi.sizeof(slot_t) + 4 * f + 4) + size * 4
   return o
end

-- The slot of the key (x: identification * 256 + protocol), or -1. The home cell is looked at
-- without a loop, and so are the cells of create and release where the next one is empty: a
-- short loop on the per-fragment path is entered often enough to be traced alone, cannot make a
-- trace ("leaving loop in root trace"), is blacklisted, and from then on every trace through it
-- aborts: reassembly ran interpreted, at 6 us a datagram (tools/bench-frag.lua).
local function probe (index, slots, mask, i, h, src, dst, x, vid)
   while true do
      i = band(i + 1, mask)
      local s = index[i]
      if s < 0 then return -1 end
      local sl = slots[s]
      if sl.hash == h and sl.src == src and sl.dst == dst and sl.x == x and sl.vid == vid then
         return s
      end
   end
end

function Reassembler:find (h, src, dst, x, vid)
   local index, slots, mask = self.index, self.slots, self.mask
   local i = band(h, mask)
   local s = index[i]
   if s < 0 then return -1 end
   local sl = slots[s]
   if sl.hash == h and sl.src == src and sl.dst == dst and sl.x == x and sl.vid == vid then
      return s
   end
   return probe(index, slots, mask, i, h, src, dst, x, vid)
end

-- The first empty cell after i; the cell after i holding s; and the cell to empty once the
-- entries after cell i that may move back (those whose home is not cyclically within (i, j])
-- have moved.
local function free_cell (index, mask, i)
   repeat i = band(i + 1, mask) until index[i] < 0
   return i
end

local function cell_of (index, mask, i, s)
   repeat i = band(i + 1, mask) until index[i] == s
   return i
end

local function close_gap (index, slots, mask, i)
   local j = i
   while true do
      j = band(j + 1, mask)
      local t = index[j]
      if t < 0 then return i end
      local k = band(slots[t].hash, mask)
      local stays
      if i <= j then stays = i < k and k <= j else stays = i < k or k <= j end
      if not stays then index[i] = t; i = j end
   end
end

-- A fresh slot for the key (evicting a random datagram when all are taken).
function Reassembler:create (h, src, dst, x, vid)
   if self.nfree == 0 then
      local victim = math.random(0, self.n - 1)
      counter.add(self.shm["drop-frag-evicted"], self.slots[victim].nfrags)
      counter.add(self.shm["drop-ipv4-frag-random-evicted"])
      self:release(victim)
   end
   self.nfree = self.nfree - 1
   local s = self.free_slots[self.nfree]
   local sl = self.slots[s]
   sl.src, sl.dst, sl.hash, sl.x, sl.vid = src, dst, h, x, vid
   sl.l2, sl.ihl, sl.nfrags = 0, 0, 0
   sl.final_end, sl.max_end, sl.received, sl.min_start = -1, 0, 0, 65536
   sl.deadline = self.t + self.timeout
   sl.buf = allocate()
   -- Into the index (linear probing: the first empty cell from the hash's).
   local index, mask = self.index, self.mask
   local i = band(h, mask)
   if index[i] >= 0 then i = free_cell(index, mask, i) end
   index[i] = s
   -- Newest at the tail of the arrival list.
   sl.prev, sl.next = self.tail, -1
   if self.tail >= 0 then self.slots[self.tail].next = s else self.head = s end
   self.tail = s
   self.active = self.active + 1
   return s
end

-- Frees slot s (and its buffer if it still has one).
function Reassembler:release (s)
   local slots, index, mask = self.slots, self.index, self.mask
   local sl = slots[s]
   if sl.buf ~= nil then free(sl.buf); sl.buf = nil end
   -- Out of the index, closing the gap by moving back the entries after it that may move
   -- (those whose home cell is not cyclically within (i, j]).
   local i = band(sl.hash, mask)
   if index[i] ~= s then i = cell_of(index, mask, i, s) end
   if index[band(i + 1, mask)] >= 0 then i = close_gap(index, slots, mask, i) end
   index[i] = -1
   -- Out of the arrival list.
   if sl.prev >= 0 then slots[sl.prev].next = sl.next else self.head = sl.next end
   if sl.next >= 0 then slots[sl.next].prev = sl.prev else self.tail = sl.prev end
   self.held = self.held - sl.nfrags
   self.active = self.active - 1
   self.free_slots[self.nfree] = s
   self.nfree = self.nfree + 1
end

-- Abandons the datagram of slot s: its fragments and `extra` more (the one that condemned it) are
-- counted as dropped for the reason `name`.
function Reassembler:abandon (s, name, extra)
   counter.add(self.shm[name], self.slots[s].nfrags + extra)
   counter.add(self.shm["drop-ipv4-frag-invalid-reassembly"])
   self:release(s)
end

-- Drops the datagrams whose time is up (the oldest are first in the arrival list).
function Reassembler:expire ()
   local slots, t = self.slots, self.t
   while self.head >= 0 and slots[self.head].deadline <= t do
      local s = self.head
      counter.add(self.shm["drop-frag-timeout"], slots[s].nfrags)
      counter.add(self.shm["drop-ipv4-frag-timeout"])
      self:release(s)
   end
end

-- Sends the completed datagram of slot s.
function Reassembler:complete (o, s)
   local sl = self.slots[s]
   local p = sl.buf
   sl.buf = nil
   local l2, ihl, data = sl.l2, sl.ihl, sl.final_end
   local hoff = BASE - l2 - ihl
   local ip = p.data + hoff + l2
   set16(ip, 2, ihl + data)
   set16(ip, 6, band(get16(ip, 6), 0xc000)) -- reserved and DF as the first fragment had them
   set_checksum(ip)
   p.length = BASE + data
   counter.add(self.shm["in-ipv4-frag-reassembled"])
   counter.add(self.shm["frag-reassembled"], sl.nfrags)
   self:release(s)
   transmit(o, packet.shiftleft(p, hoff))
end

-- Takes in the fragment p (IPv4 header at ip, ihl bytes, after l2 bytes of link header).
-- (Values are read from the header again where needed rather than kept: with all of them live
-- across find's branches, LuaJIT's side trace from there failed, "NYI: register coalescing too
-- complex", at every fragment.)
function Reassembler:fragment (o, p)
   local shm, d = self.shm, p.data
   local l2 = l2_length(d, p.length)
   local ip = d + l2
   local ihl = band(ip[0], 15) * 4
   local size = get16(ip, 2) - ihl
   if band(get16(ip, 6), MF) ~= 0 and (size == 0 or band(size, 7) ~= 0) then
      counter.add(shm["drop-frag-bad-length"])
      return free(p)
   end
   local src, dst = ffi.cast(u32_ptr_t, ip + 12)[0], ffi.cast(u32_ptr_t, ip + 16)[0]
   local x = bor(lshift(get16(ip, 4), 8), ip[9])
   local vid = l2 == 18 and band(get16(d, 14), 0xfff) or UNTAGGED
   local h = hash(self.seed, src, dst, x, vid)
   local s = self:find(h, src, dst, x, vid)
   local word = get16(ip, 6)
   local start = band(word, OFFSET_MASK) * 8
   local stop = start + size
   local mf = band(word, MF) ~= 0
   if ihl + stop > 65535 or stop > CAPACITY then
      -- Past the largest datagram (Ping of Death), or than a packet here holds.
      counter.add(shm["drop-frag-too-big"])
      if s >= 0 then self:abandon(s, "drop-frag-too-big", 0) end
      return free(p)
   end
   if s < 0 then s = self:create(h, src, dst, x, vid) end
   local sl = self.slots[s]
   local n, starts, ends = sl.nfrags, self.starts, self.ends
   local b = s * self.f
   -- Data after all received (or before all) overlaps none: no loop for fragments in order.
   if start < sl.max_end and stop > sl.min_start then
      for k = b, b + n - 1 do
         local s0, e0 = starts[k], ends[k]
         if start < e0 and s0 < stop then
            if start == s0 and stop == e0 then
               counter.add(shm["drop-frag-duplicate"])
               return free(p)
            end
            self:abandon(s, "drop-frag-overlap", 1)
            return free(p)
         end
      end
   end
   local final = sl.final_end
   if not mf then
      if final >= 0 and final ~= stop or sl.max_end > stop then
         self:abandon(s, "drop-frag-bad-end", 1)
         return free(p)
      elseif final == stop then -- an empty last fragment again
         counter.add(shm["drop-frag-duplicate"])
         return free(p)
      end
      sl.final_end = stop
   elseif final >= 0 and stop > final then
      self:abandon(s, "drop-frag-bad-end", 1)
      return free(p)
   end
   if n == self.f then
      self:abandon(s, "drop-frag-too-many", 1)
      return free(p)
   end
   starts[b + n], ends[b + n] = start, stop
   sl.nfrags = n + 1
   self.held = self.held + 1
   local buf = sl.buf.data
   if start == 0 then
      sl.l2, sl.ihl = l2, ihl
      copy(buf + BASE - l2 - ihl, d, l2 + ihl)
   end
   copy(buf + BASE + start, ip + ihl, size)
   if stop > sl.max_end then sl.max_end = stop end
   if start < sl.min_start then sl.min_start = start end
   sl.received = sl.received + size
   free(p)
   -- Disjoint ranges within [0, final_end) whose sizes add up to it cover it: all is there.
   if sl.received == sl.final_end then self:complete(o, s) end
end

-- Packets up to the first fragment of a breath go on the fast path; from there on they are
-- queued, in order, and handled in a loop of their own. (Calling fragment() from the fast loop
-- made LuaJIT's side trace into it fail, "NYI: register coalescing too complex", at every
-- fragment: 10 us a datagram against 1 us.)
function Reassembler:push ()
   local i, o = self.input.input, self.output.output
   local shm, queue, fragment, n = self.shm, self.queue, self.is_fragment, 0
   self.t = self.now()
   if self.head >= 0 then self:expire() end
   for _ = 1, link.nreadable(i) do
      local p = receive(i)
      local d, len = p.data, p.length
      local l2 = l2_length(d, len)
      local ip = d + l2
      local ihl = l2 > 0 and header_length(ip, len - l2) or 0
      if l2 == 0 or ihl > 0 and band(get16(ip, 6), MF + OFFSET_MASK) == 0 then
         counter.add(shm["in-ipv4-frag-reassembly-unneeded"])
         if n == 0 then
            transmit(o, p)
         else
            queue[n], fragment[n], n = p, 0, n + 1
         end
      elseif ihl == 0 or not checksum_ok(ip, ihl) then
         counter.add(shm["drop-ipv4-malformed"])
         free(p)
      else
         counter.add(shm["in-ipv4-frag-needs-reassembly"])
         queue[n], fragment[n], n = p, 1, n + 1
      end
   end
   for k = 0, n - 1 do
      if fragment[k] == 1 then self:fragment(o, queue[k]) else transmit(o, queue[k]) end
   end
   counter.set(shm["held-reassemblies"], self.active)
   counter.set(shm["held-fragments"], self.held)
   counter.set(shm["memuse-ipv4-frag-reassembly-buffer"],
               self.table_bytes + self.active * packet.max_payload)
end

-- Frees the buffers of the datagrams still in progress (their fragments stay counted as held).
function Reassembler:stop ()
   for s = 0, self.n - 1 do
      local sl = self.slots[s]
      if sl.buf ~= nil then free(sl.buf); sl.buf = nil end
   end
end

function M.selftest ()
   print("selftest: apps.ipv4.reassemble")
   local Fragmenter = require("apps.ipv4.fragment").Fragmenter
   local function app_of (conf, name)
      local app = header.instance(Reassembler, conf, name)
      local clock = 0
      app.now = function () return clock end
      return app, function (t) clock = t end
   end
   -- (4,000 bytes at MTU 68 are 84 fragments, more than the default 40.)
   local r, set_clock = app_of({max_fragments_per_reassembly = 100}, "reassemble")
   local frag = header.instance(Fragmenter, {mtu = 1500}, "fragment")
   local function count (app, name) return header.count(app, name) end
   local sent = 0 -- packets into r
   local function push (packets)
      sent = sent + #packets
      return header.push(r, packets)
   end

   -- Every packet into r is out whole, a piece of a datagram out, dropped for a reason, or held.
   local function check_sums (app, n)
      local needs, drops = count(app, "in-ipv4-frag-needs-reassembly"), 0
      for _, name in ipairs(COUNTERS) do
         if name:match("^drop%-frag%-") then drops = drops + count(app, name) end
      end
      assert(count(app, "in-ipv4-frag-reassembly-unneeded") + count(app, "drop-ipv4-malformed")
             + needs == n, "every packet counted once")
      assert(count(app, "frag-reassembled") + count(app, "held-fragments") + drops == needs,
             "every fragment reassembled, dropped or held")
      assert(count(app, "held-reassemblies") == app.active)
   end

   -- Round trips: datagrams cut at several MTUs, their fragments given in order, reversed and
   -- interleaved with another's, come out as the bytes that went in.
   local function pieces (p, mtu)
      frag.mtu = mtu
      return header.push(frag, {p})
   end
   for size = 8, 4000, 97 do
      for _, mtu in ipairs({68, 300, 576, 1500}) do
         for _, order in ipairs({"in order", "reversed", "interleaved"}) do
            local a = header.build{payload = size, id = size, vid = mtu == 300 and 5 or nil}
            local b = header.build{payload = size + 8, id = 0x8000 + size}
            local wa, wb = packet.clone(a), packet.clone(b)
            local fa, fb = pieces(a, mtu), pieces(b, mtu)
            local input = {}
            if order == "in order" then
               input = fa
            elseif order == "reversed" then
               for k = #fa, 1, -1 do input[#input + 1] = fa[k] end
            else
               for k = 1, math.max(#fa, #fb) do
                  input[#input + 1] = fb[k]
                  input[#input + 1] = fa[#fa + 1 - k]
               end
            end
            local out = push(input)
            local want = {[packet.tostring(wa)] = true}
            if order == "interleaved" then
               want[packet.tostring(wb)] = true
            else
               for _, p in ipairs(fb) do free(p) end
            end
            assert(#out == (order == "interleaved" and 2 or 1), "one datagram out per datagram")
            for _, p in ipairs(out) do
               assert(want[packet.tostring(p)], "the original bytes back")
               want[packet.tostring(p)] = nil
               free(p)
            end
            free(wa); free(wb)
         end
      end
   end
   assert(r.active == 0 and count(r, "held-fragments") == 0)
   check_sums(r, sent)

   -- Fragments made by hand from one datagram's data.
   local data = ("0123456789abcdef"):rep(8) -- 128 bytes
   local function piece (start, size, mf, id, extra)
      local t = {payload = data:sub(start + 1, start + size), id = id or 1, proto = 6,
                 flags = (mf and MF or 0) + start / 8}
      for k, v in pairs(extra or {}) do t[k] = v end
      return header.build(t)
   end
   local function before (name) return count(r, name) end
   local n0, dup0 = before("drop-frag-overlap"), before("drop-frag-duplicate")

   -- Teardrop: the second fragment starts inside the first and ends before it.
   assert(#push({piece(0, 48, true, 10), piece(24, 8, false, 10)}) == 0)
   -- A later fragment overwriting the TCP header (offset 8 into a first fragment of 24 bytes).
   assert(#push({piece(0, 24, true, 11), piece(8, 120, false, 11)}) == 0)
   -- Same the other way round: the overwriting fragment first.
   assert(#push({piece(8, 120, false, 12), piece(0, 24, true, 12)}) == 0)
   assert(count(r, "drop-frag-overlap") == n0 + 6 and r.active == 0, "overlaps abandon all")
   -- An exact duplicate is dropped alone: the datagram still completes, with the first copy.
   local out = push({piece(0, 64, true, 13), piece(0, 64, true, 13, {ttl = 1}),
                     piece(64, 64, false, 13)})
   assert(#out == 1 and count(r, "drop-frag-duplicate") == dup0 + 1)
   assert(ffi.string(out[1].data + 34, 128) == data and out[1].data[14 + 8] == 64)
   -- The result: total length, flags and checksum of a whole datagram (id and TTL kept).
   local ip = out[1].data + 14
   assert(get16(ip, 2) == 148 and get16(ip, 6) == 0 and get16(ip, 4) == 13 and ip[9] == 6)
   assert(checksum_ok(ip, 20))
   free(out[1])

   -- Ends that disagree: two last fragments with different ends; data past the last's end; a last
   -- fragment ending before data already received.
   local e0 = before("drop-frag-bad-end")
   -- (None of these overlap: that would be counted first, as an overlap.)
   assert(#push({piece(64, 64, false, 20), piece(8, 32, false, 20)}) == 0)
   assert(#push({piece(64, 32, false, 21), piece(96, 16, true, 21)}) == 0)
   assert(#push({piece(64, 48, true, 22), piece(32, 32, false, 22)}) == 0)
   assert(count(r, "drop-frag-bad-end") == e0 + 6 and r.active == 0)

   -- Stateless rejections: a non-last fragment whose size is not a multiple of 8, and one past
   -- 65,535 bytes (Ping of Death: offset 8189 * 8 + 400 bytes), which also ends its datagram.
   local l0, b0 = before("drop-frag-bad-length"), before("drop-frag-too-big")
   assert(#push({piece(0, 60, true, 30)}) == 0)
   assert(#push({piece(0, 64, true, 31), header.build{payload = 400, id = 31, proto = 6,
                                                      flags = 8189}}) == 0)
   assert(count(r, "drop-frag-bad-length") == l0 + 1 and count(r, "drop-frag-too-big") == b0 + 2)
   assert(r.active == 0)

   -- Truncated or broken fragments: dropped as malformed before any state is touched.
   local m0 = before("drop-ipv4-malformed")
   local bad = {piece(0, 64, true, 40), piece(0, 64, true, 41), piece(0, 64, true, 42),
                piece(0, 64, true, 43)}
   bad[1].length = 14 + 19              -- header cut short
   bad[2].length = bad[2].length - 1    -- total length past the packet's end
   bad[3].data[14 + 8] = 1              -- checksum no longer right
   bad[4].length = 13                   -- not even an Ethernet header: passes as not IPv4
   local passed = push(bad)
   assert(#passed == 1 and passed[1] == bad[4]); free(bad[4])
   assert(count(r, "drop-ipv4-malformed") == m0 + 3 and r.active == 0)

   -- Not fragments: passed untouched, in order with the datagrams completed around them.
   local whole, after = header.build{payload = 100}, header.build{payload = 10}
   out = push({whole, piece(0, 64, true, 60), piece(64, 64, false, 60), after})
   assert(#out == 3 and out[1] == whole and out[3] == after and out[2].length == 14 + 20 + 128)
   for _, p in ipairs(out) do free(p) end
   check_sums(r, sent)

   -- Timeouts on the controlled clock: held until `timeout` seconds have passed, then dropped.
   set_clock(100)
   assert(#push({piece(0, 64, true, 50)}) == 0 and r.active == 1)
   set_clock(100 + r.timeout - 0.001)
   assert(#push({}) == 0 and r.active == 1 and count(r, "held-fragments") == 1)
   set_clock(100 + r.timeout)
   assert(#push({}) == 0 and r.active == 0)
   assert(count(r, "drop-frag-timeout") == 1 and count(r, "drop-ipv4-frag-timeout") == 1)
   -- The rest of it, too late, starts a datagram that never completes.
   assert(#push({piece(64, 64, false, 50)}) == 0 and r.active == 1)
   check_sums(r, sent)
   set_clock(1000)
   push({})

   -- A flood of first fragments, each of another datagram, beyond the limit: at most 16 held,
   -- the others evicted; memory stays what 16 datagrams take.
   local small, set_small_clock = app_of({max_concurrent_reassemblies = 16,
                                          max_fragments_per_reassembly = 4}, "small")
   local in_use = packet.in_use()
   for k = 1, 1000 do
      assert(#header.push(small, {piece(0, 64, true, k)}) == 0)
      assert(small.active == math.min(k, 16))
   end
   assert(packet.in_use() == in_use + 16, "16 buffers held")
   assert(count(small, "drop-frag-evicted") == 1000 - 16)
   assert(count(small, "drop-ipv4-frag-random-evicted") == 1000 - 16)
   check_sums(small, 1000)
   -- The ones still held complete with their last fragments.
   local held = {}
   for k = 0, 15 do held[#held + 1] = rshift(small.slots[k].x, 8) end
   for _, id in ipairs(held) do
      local got = header.push(small, {piece(64, 64, false, id)})
      assert(#got == 1 and ffi.string(got[1].data + 34, 128) == data)
      free(got[1])
   end
   assert(small.active == 0 and packet.in_use() == in_use)
   check_sums(small, 1016)
   -- More fragments than max_fragments_per_reassembly: the datagram is abandoned.
   set_small_clock(1000)
   push = function (packets) return header.push(small, packets) end
   local t0 = count(small, "drop-frag-too-many")
   assert(#push({piece(0, 8, true, 2000), piece(8, 8, true, 2000), piece(16, 8, true, 2000),
                 piece(24, 8, true, 2000), piece(32, 8, false, 2000)}) == 0)
   assert(count(small, "drop-frag-too-many") == t0 + 5)
   check_sums(small, 1021)
   small:stop()
   assert(packet.in_use() == in_use, "stop frees the buffers")

   -- Garbage: 10,000 random frames of 0 to 200 bytes, most of them IPv4 claiming lengths up to
   -- theirs, fragments of 4 datagrams with random offsets and flags, half their checksums right,
   -- through both apps: every packet is counted once, nothing is freed twice (snabb --debug).
   local fr = app_of({max_concurrent_reassemblies = 8, max_fragments_per_reassembly = 4}, "fuzz")
   local ff = header.instance(Fragmenter, {mtu = 68}, "fuzz_fragment")
   local total = 0
   for _ = 1, 200 do
      local batch, copies = {}, {}
      for k = 1, 50 do
         local len = math.random(0, 200)
         local p = packet.resize(packet.allocate(), len)
         local d = p.data
         for b = 0, len - 1 do d[b] = math.random(0, 255) end
         if len >= 34 and math.random() < 0.9 then
            local h = d + 14
            d[12], d[13] = 8, 0
            h[0] = math.random() < 0.9 and 0x45 or math.random(0, 255)
            set16(h, 2, math.random(0, len - 14 + 4))
            set16(h, 4, math.random(1, 4))
            set16(h, 6, bor(math.random(0, 7) * 0x2000, math.random(0, 40)))
            ffi.copy(h + 12, "\10\0\0\1\10\0\0\2", 8)
            if math.random() < 0.5 then set_checksum(h) end
         end
         batch[k], copies[k] = p, packet.clone(p)
      end
      total = total + #batch
      for _, p in ipairs(header.push(fr, batch)) do free(p) end
      for _, p in ipairs(header.push(ff, copies)) do free(p) end
   end
   check_sums(fr, total)
   local function fc (name) return count(ff, name) end
   assert(fc("out-ipv4-frag-not") + fc("ipv4-fragmented") + fc("drop-ipv4-frag-df")
          + fc("drop-ipv4-malformed") == total)
   print(("garbage: %d frames: %d passed, %d malformed, %d fragments, %d datagrams out"):format(
      total, count(fr, "in-ipv4-frag-reassembly-unneeded"), count(fr, "drop-ipv4-malformed"),
      count(fr, "in-ipv4-frag-needs-reassembly"), count(fr, "in-ipv4-frag-reassembled")))
   fr:stop()
   r:stop()
   header.free_links()
   print("selftest: apps.ipv4.reassemble ok")
end

return M
