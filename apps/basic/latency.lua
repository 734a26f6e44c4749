-- apps.basic.latency: the time each packet takes through a graph, as MoonGen and TRex measure it.
-- A source stamps each packet it sends with the TSC (stamp; apps.pcap's Replay with latency =
-- true), and LatencySink, where the packets leave, counts the cycles since in a histogram with the
-- engine's breath buckets (8 per power of two: 12.5% wide; runtime/engine.h), then frees them.
--
-- The stamp is the TSC and a check word (TSC xor a key drawn per process) in the packet's slot
-- beyond any data (PACKET_LATENCY_OFFSET, runtime/packet.h), and a flag in its headroom field: the
-- function under test sees the same bytes and length. Allocation clears the flag and clone does
-- not copy it, so a packet an app makes (a copy, or a new packet in the slot of a stamped one it
-- dropped) reaches the sink unstamped and is counted apart; so is a packet that went through a NIC.
--
-- What the figure includes: from the source's transmit (one TSC read per batch, before the batch
-- is made) to the sink's receive (one read per push): the batch being made, link queueing, the
-- breaths between, and every app's processing on the way; not time on a NIC or a wire.
local ffi = require("ffi")
require("core.cdefs")
local link = require("core.link")
local packet = require("core.packet")
local counter = require("core.counter")
local C = ffi.C

local band, bxor, rshift = bit.band, bit.bxor, bit.rshift
local cast = ffi.cast
local receive, receive_length, nreadable = link.receive, link.receive_length, link.nreadable
local free = packet.free
local MIN_FRAME = require("lib.ethernet").MIN_FRAME

local M = {}

local u8_ptr_t, u64_ptr_t = ffi.typeof("uint8_t *"), ffi.typeof("uint64_t *")
local int64_t = ffi.typeof("int64_t")
local STAMPED, MASK, OFFSET = C.PACKET_LATENCY_STAMPED, C.PACKET_HEADROOM_MASK, C.PACKET_LATENCY_OFFSET
local BUCKETS = C.ENGINE_BREATH_BUCKETS

M.rdtsc = C.snabb_rdtsc
M.buckets = BUCKETS

-- Drawn once per process, so a slot's bytes left by another process (a DPDK mbuf's) never pass;
-- the workers of a group that time packets across processes (snabb bench of workers) share one
-- (set_key, before the apps are made).
local key = bxor(C.snabb_rdtsc() * 0x9e3779b97f4a7c15ULL, 0x5bd1e9955bd1e995ULL)
function M.key () return key end
function M.set_key (k) key = k end

-- The check word of a stamp at `tsc` (once per batch: stamp takes it).
function M.check (tsc)
   return bxor(tsc, key)
end

-- Stamps p, a packet as allocate or clone of a template made it (its header at the fresh place, no
-- timestamp), as sent at `tsc` (check = M.check(tsc)). Nothing of p is read: reading its headroom
-- back from the copy clone had just made cost Replay 4 more cycles per packet.
local FRESH_STAMPED = packet.headroom + STAMPED
local FROM_HEADER = OFFSET - packet.headroom
function M.stamp (p, tsc, check)
   local s = cast(u64_ptr_t, cast(u8_ptr_t, p) + FROM_HEADER)
   s[0], s[1] = tsc, check
   p.headroom = FRESH_STAMPED
end

-- The histogram bucket of `cycles` (a number >= 0), as runtime/engine.cc's breath_bucket: the
-- exponent and the 3 bits after the leading one, read from the number's IEEE-754 form.
local bits = ffi.new("union { double d; uint32_t w[2]; }")
local function bucket (cycles)
   if cycles < 8 then return cycles end
   bits.d = cycles
   local high = bits.w[1] -- sign, 11-bit biased exponent, 20 bits of mantissa
   return 8 * (rshift(high, 20) - 1023) - 16 + band(rshift(high, 17), 7)
end
M.bucket = bucket

-- LatencySink: frees every packet it receives, counting the latency of each stamped one.
-- stamped, unstamped: packets counted and not; histogram: counts per bucket (doubles, exact to
-- 2^53); max: the largest latency in cycles; padding: the bytes that frames under the Ethernet
-- minimum would be padded with on a wire (lib.ethernet), for rates in bits of what it received.
-- With latency = false it only counts padding (snabb bench --no-latency).
-- The padding is also the counter `padding` (its shm), set once a push, for readers in other
-- processes (snabb bench of workers: its timeline).
local LatencySink = {outputs = {}, config = {latency = {type = "boolean", default = true}},
                     shm = {padding = {counter}}}
M.LatencySink = LatencySink

local push_untimed
function LatencySink:new (conf)
   local sink = setmetatable({histogram = ffi.new("double[?]", BUCKETS), stamped = 0, unstamped = 0,
                              max = 0, padding = 0}, {__index = LatencySink})
   if conf and conf.latency == false then sink.push = push_untimed end
   return sink
end

-- Adds n packets that took `cycles` (below 0 only if the TSCs of two cores disagree: counted as 0).
local function count (self, cycles, n)
   cycles = math.max(cycles, 0)
   local h, b = self.histogram, bucket(cycles)
   h[b] = h[b] + n
   if cycles > self.max then self.max = cycles end
   self.stamped = self.stamped + n
end

-- A source stamps a batch with one TSC reading, so packets in a row mostly took the same time:
-- each run of them is counted at once. (Counting each packet in the histogram cost 30 cycles per
-- packet instead of 6 for Sink: every increment waited for the one before.)
function LatencySink:push ()
   local now = C.snabb_rdtsc()
   local unstamped, pad, run_cycles, run = self.unstamped, self.padding, -1, 0
   for _, i in ipairs(self.input) do
      for _ = 1, nreadable(i) do
         local p = receive(i)
         local length = p.length -- (a branch: frames of 60 bytes and more leave pad alone)
         if length < MIN_FRAME then pad = pad + (MIN_FRAME - length) end
         local headroom, valid, cycles = p.headroom, false, 0
         if band(headroom, STAMPED) ~= 0 then
            local s = cast(u64_ptr_t, cast(u8_ptr_t, p) - band(headroom, MASK) + OFFSET)
            local tsc = s[0]
            if s[1] == bxor(tsc, key) then valid, cycles = true, tonumber(cast(int64_t, now - tsc)) end
         end
         if not valid then
            unstamped = unstamped + 1
         elseif cycles == run_cycles then
            run = run + 1
         else
            if run > 0 then count(self, run_cycles, run) end
            run_cycles, run = cycles, 1
         end
         free(p)
      end
   end
   if run > 0 then count(self, run_cycles, run) end
   self.unstamped, self.padding = unstamped, pad
   if self.shm then counter.set(self.shm.padding, pad) end
end

-- (The length from the link entry: a packet from another worker stays out of this core's cache.)
function push_untimed (self)
   local pad = self.padding
   for _, i in ipairs(self.input) do
      for _ = 1, nreadable(i) do
         local p, length = receive_length(i)
         if length < MIN_FRAME then pad = pad + (MIN_FRAME - length) end
         free(p)
      end
   end
   self.padding = pad
   if self.shm then counter.set(self.shm.padding, pad) end
end

-- The first cycle count above bucket i.
local function limit (i)
   return tonumber(C.snabb_engine_breath_bucket_limit(i))
end

-- Percentiles in cycles of the latencies counted in `counts` (BUCKETS doubles), the largest being
-- `max`: for each, the upper end of the bucket that holds the sample of rank ceil(q * total) in
-- sorted order (so at most 12.5% above it), and never above max. Empty for no samples.
M.quantiles = {{"p50", 500}, {"p90", 900}, {"p99", 990}, {"p999", 999}} -- per mille
function M.percentiles (counts, max)
   local total = 0
   for i = 0, BUCKETS - 1 do total = total + counts[i] end
   if total == 0 then return {} end
   local result, seen, i = {max = max}, counts[0], 0
   for _, q in ipairs(M.quantiles) do
      local rank = math.floor((q[2] * total + 999) / 1000) -- exact for total < 2^43
      while seen < rank do
         i = i + 1
         seen = seen + counts[i]
      end
      result[q[1]] = math.min(limit(i) - 1, max)
   end
   return result
end

-- What bench reports of a LatencySink: percentiles and max in µs, packets counted (stamped) and
-- not (unstamped), and the histogram from its first to its last non-empty bucket as {from, to,
-- count} (µs, from inclusive).
function M.summary (sink)
   local us = 1e6 / C.snabb_tsc_hz()
   local h = sink.histogram
   local r = {stamped = sink.stamped, unstamped = sink.unstamped, histogram = {}}
   for k, cycles in pairs(M.percentiles(h, sink.max)) do r[k] = cycles * us end
   local first, last = BUCKETS, -1
   for i = 0, BUCKETS - 1 do
      if h[i] > 0 then first, last = math.min(first, i), i end
   end
   for i = first, last do
      local from = i == 0 and 0 or limit(i - 1)
      r.histogram[#r.histogram+1] = {from = from * us, to = limit(i) * us, count = h[i]}
   end
   return r
end

function M.selftest ()
   print("selftest: apps.basic.latency")
   -- bucket() is runtime/engine.cc's breath_bucket: each bucket's range maps to it, ends included.
   local lower = 0
   for i = 0, 8 * 50 do
      local upper = limit(i)
      assert(bucket(lower) == i and bucket(upper - 1) == i,
             ("bucket %d: [%d, %d) maps to %d and %d"):format(i, lower, upper, bucket(lower), bucket(upper - 1)))
      lower = upper
   end

   -- Percentiles against a plain sort, on random data of several sizes and spreads: each lies
   -- in the same bucket as the sorted sample of its rank, at or above it, and max is exact.
   math.randomseed(15)
   for _, n in ipairs({1, 2, 7, 10, 999, 1000, 1001, 54321}) do
      local samples, counts, max = {}, ffi.new("double[?]", BUCKETS), 0
      for k = 1, n do
         local v = math.floor(2 ^ (math.random() * (k % 3 == 0 and 30 or 12)))
         samples[k], max = v, math.max(max, v)
         counts[bucket(v)] = counts[bucket(v)] + 1
      end
      table.sort(samples)
      local p = M.percentiles(counts, max)
      assert(p.max == samples[n])
      for _, q in ipairs(M.quantiles) do
         local exact = samples[math.ceil(q[2] * n / 1000)]
         assert(p[q[1]] >= exact and bucket(p[q[1]]) == bucket(exact),
                ("%d samples: %s %d, sorted %d"):format(n, q[1], p[q[1]], exact))
      end
   end
   assert(next(M.percentiles(ffi.new("double[?]", BUCKETS), 0)) == nil)

   -- Through a sink: a stamped packet is counted with the time since its stamp, also with its
   -- header moved; a clone, a packet made in the slot of a stamped one freed, and a packet with a
   -- flag but not a valid check word are not. The stamp changes neither bytes nor length.
   local function sink_of (conf, ...)
      local l, sink = link.new(), LatencySink:new(conf)
      sink.input = {l}
      for _, p in ipairs({...}) do link.transmit(l, p) end
      sink:push()
      link.free(l)
      return sink
   end
   local p = packet.from_string("latency stamp: not in the data")
   local before = packet.tostring(p)
   local tsc = C.snabb_rdtsc() - 1000000
   M.stamp(p, tsc, M.check(tsc))
   assert(packet.tostring(p) == before and p.length == #before)
   local c = packet.clone(p)
   local moved = packet.clone(p)
   M.stamp(moved, tsc, M.check(tsc))
   moved = packet.shiftleft(moved, 14) -- as an app that strips the Ethernet header
   local sink = sink_of({}, p, c, moved)
   assert(sink.stamped == 2 and sink.unstamped == 1, ("%d %d"):format(sink.stamped, sink.unstamped))
   -- Three short frames, stamped or not, each padded to 60 bytes on a wire.
   assert(sink.padding == 2 * (60 - #before) + (60 - (#before - 14)), sink.padding)
   local untimed = sink_of({latency = false}, packet.from_string("short"), packet.allocate())
   assert(untimed.padding == 55 + 60 and untimed.stamped == 0 and untimed.unstamped == 0)
   assert(sink.max >= 1000000 and sink.max < 1e12, sink.max)
   local s = M.summary(sink)
   assert(s.p50 >= 1e6 * 1e6 / C.snabb_tsc_hz() and s.max == s.p999 and #s.histogram == 1)

   local dropped = packet.from_string("dropped inside the graph")
   M.stamp(dropped, tsc, M.check(tsc))
   packet.free(dropped)
   local fresh = packet.allocate() -- the same slot (the free list is a stack)
   assert(fresh == dropped)
   local forged = packet.from_string("flag without a check word")
   M.stamp(forged, tsc, M.check(tsc) + 1)
   sink = sink_of({}, fresh, forged)
   assert(sink.stamped == 0 and sink.unstamped == 2 and next(M.summary(sink).histogram) == nil)
   print("selftest: apps.basic.latency ok")
end

return M
