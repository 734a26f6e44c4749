-- apps.interlink.receiver: the receiving side of an interlink (Snabb's name): packets an
-- apps.interlink.transmitter put into the ring (ring.lua, interlink.h) leave on its one output.
--   config.app(c, "rx", require("apps.interlink.receiver"), {name = "NAME"})
-- (name defaults to the app's name). A pull moves what the output link has room for, link entries
-- copied as they are, and publishes its cursor once, before any app downstream can free one of
-- them: a receiver killed in a pull leaves its unpublished packets to its replacement, none of
-- them freed (nor given back by the group's reclaim: ring.in_flight). A transmitter that dies is
-- reported once (counter peer_deaths, one log line).
local ffi = require("ffi")
local counter = require("core.counter")
local ring = require("apps.interlink.ring")
local C = ffi.C
local band, tobit, min = bit.band, bit.tobit, math.min

local MASK, LINK_MASK, LINK_SIZE = ring.MASK, C.LINK_RING_MASK, C.LINK_RING_SIZE
local BATCH, WAITS = ring.BATCH, ring.WAITS
local cast, rshift = ffi.cast, bit.rshift
local u64_t = ffi.typeof("uint64_t")
local ADDRESS = bit.lshift(1ULL, C.PACKET_ADDRESS_BITS) - 1
require("core.lib_h") -- prefetch_for_read
-- The ring's entries come from the transmitter's core: each of its lines is read 64 entries (8
-- lines) ahead, one PREFETCHT0 a packet (third_party/luajit/prefetch-intrinsic.patch). Through
-- examples/pipeline.lua's two workers the receiver went 11.0 -> 9.5 cycles a packet, the
-- pipeline 125.4, 127.6, 127.6 -> 126.2, 130.2, 129.6 Mpps (alternating); 32 ahead, no better than
-- none. (The transmitter prefetching its lines for writing made it slower: 2.7 -> 3.5.)
local AHEAD = 64
local SHIFT = C.GROUP_MARK_SHIFT

local Receiver = {
   config = {name = {type = "string", positional = true}},
   inputs = {}, outputs = {"output"},
   shm = {peer_deaths = {counter}},
}

function Receiver:new (conf)
   if conf.name then ring.check_name(conf.name) end
   return setmetatable({name = conf.name, next_check = 0, seen = 0, waits = 0},
                       {__index = Receiver})
end

function Receiver:link ()
   if self.r then return end
   self.name = self.name or self.appname
   self.r = ring.attach(self.name, "receiver")
   self.marks, self.mark_base, self.buckets = ring.marks() -- (nil outside a group)
   self.read = self.r.read
end

function Receiver:pull ()
   local o, r = self.output.output, self.r
   if o == nil or r == nil then return end
   local rd = self.read
   local w = r.write
   local n = tobit(w - rd)
   if n == 0 then return end
   -- Less than a batch while the transmitter is still adding: wait a few breaths for more.
   if n < BATCH and w ~= self.seen and self.waits < WAITS then
      self.seen, self.waits = w, self.waits + 1
      return
   end
   self.waits = 0
   local to = o.write
   n = min(n, LINK_SIZE - tobit(to - o.read))
   local marks = self.marks
   if marks == nil then
      for k = 0, n - 1 do
         C.prefetch_for_read(r.ring + band(rd + k + AHEAD, MASK))
         o.ring[band(to + k, LINK_MASK)] = r.ring[band(rd + k, MASK)]
      end
   else
      -- In this worker's hands before the cursor passes them (runtime/group.h: a mark newer than
      -- the transmitter's clock, in each packet's bucket). snabb_group_mark's loop, compiled into
      -- the copy here: Source -> interlink -> sink 89.8 -> 84.3 Mpps (tools/bench-interlink.lua,
      -- old and new builds alternating, medians); as a C call after the copy, 77 (-11%). The
      -- clock is read in the loop: a uint64_t local live across it was boxed (allocated) per pull,
      -- as a ring's reference was (link.move).
      do
         local now, sent = marks.clock + 1, r.tx_clock
         if sent >= now then now = sent + 1 end
         marks.clock = now
      end
      local base, buckets = self.mark_base, self.buckets
      for k = 0, n - 1 do
         C.prefetch_for_read(r.ring + band(rd + k + AHEAD, MASK))
         local e = r.ring[band(rd + k, MASK)]
         o.ring[band(to + k, LINK_MASK)] = e
         local b = rshift(band(cast(u64_t, e), ADDRESS) - base, SHIFT)
         if b < buckets then marks.mark[b] = marks.clock end
      end
   end
   o.write = tobit(to + n)
   rd = tobit(rd + n)
   self.read = rd
   r.read = rd
   r.rxpackets = r.rxpackets + n
end

function Receiver:tick ()
   ring.watch_peer(self, "receiver", "")
end

function Receiver:stop ()
   if self.r then ring.detach(self.r, self.name, "receiver") end
   self.r = nil
end

return Receiver
