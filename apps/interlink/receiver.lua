-- apps.interlink.receiver: the receiving side of an interlink (Snabb's name): packets an
-- apps.interlink.transmitter put into the ring (ring.lua, interlink.h) leave on its one output.
--   config.app(c, "rx", require("apps.interlink.receiver"), {name = "NAME"})
-- (name defaults to the app's name). A pull moves what the output link has room for, link entries
-- copied as they are, and publishes its cursor once, before any app downstream can free one of
-- them: a receiver killed in a pull leaves its unpublished packets to its replacement, none of
-- them freed. A transmitter that dies is reported once (counter peer_deaths, one log line).
local ffi = require("ffi")
local counter = require("core.counter")
local ring = require("apps.interlink.ring")
local C = ffi.C
local band, tobit, min = bit.band, bit.tobit, math.min

local MASK, LINK_MASK, LINK_SIZE = ring.MASK, C.LINK_RING_MASK, C.LINK_RING_SIZE
local BATCH, WAITS = ring.BATCH, ring.WAITS

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
   local lring, ilring = o.ring, r.ring
   for k = 0, n - 1 do
      lring[band(to + k, LINK_MASK)] = ilring[band(rd + k, MASK)]
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
