-- apps.interlink.transmitter: the sending side of an interlink (Snabb's name), an app whose one
-- input's packets go into the ring another app (apps.interlink.receiver), usually in another worker
-- of the group, takes them from (ring.lua, interlink.h). The module is the app class:
--   config.app(c, "tx", require("apps.interlink.transmitter"), {name = "NAME"})
-- (name defaults to the app's name). A push moves what the ring has room for, link entries copied
-- as they are (the packets are not touched), and publishes its cursor once; what does not fit
-- waits in the input link, so a slow or absent receiver pushes back on the graph rather than
-- dropping. A receiver that dies is reported once (counter peer_deaths, one log line; checked at
-- most once a second) and the ring waits for its replacement.
local ffi = require("ffi")
local counter = require("core.counter")
local ring = require("apps.interlink.ring")
local C = ffi.C
local band, tobit, min = bit.band, bit.tobit, math.min

local SIZE, MASK, LINK_MASK, BATCH = ring.SIZE, ring.MASK, C.LINK_RING_MASK, ring.BATCH

local Transmitter = {
   config = {name = {type = "string", positional = true}},
   inputs = {"input"}, outputs = {},
   shm = {peer_deaths = {counter}},
}

function Transmitter:new (conf)
   if conf.name then ring.check_name(conf.name) end
   return setmetatable({name = conf.name, next_check = 0}, {__index = Transmitter})
end

-- The ring is taken when the app gets its link (its name is known by then).
function Transmitter:link ()
   if self.r then return end
   self.name = self.name or self.appname
   self.r = ring.attach(self.name, "transmitter")
   self.marks = ring.marks() -- (nil outside a group)
   self.write = self.r.write -- a replacement goes on where the last one published
   self.read = self.r.read   -- the receiver's cursor as last seen
end

function Transmitter:push ()
   local i, r = self.input.input, self.r
   if i == nil or r == nil then return end
   local n = tobit(i.write - i.read)
   if n == 0 then return end
   local w = self.write
   local room = SIZE - tobit(w - self.read)
   if room < n then
      self.read = r.read
      room = SIZE - tobit(w - self.read)
      -- Room for less than a batch: wait until the receiver has taken one (so that neither side
      -- moves a few packets per breath, each batch costing its cursors' cache lines and a breath).
      if room < n and room < BATCH then return end
   end
   n = min(n, room)
   local from = i.read
   for k = 0, n - 1 do
      r.ring[band(w + k, MASK)] = i.ring[band(from + k, LINK_MASK)]
   end
   i.read = tobit(from + n)
   w = tobit(w + n)
   self.write = w
   if self.marks ~= nil then r.tx_clock = self.marks.clock end -- (runtime/group.h)
   r.write = w -- published after the entries
   r.txpackets = r.txpackets + n
end

function Transmitter:tick ()
   ring.watch_peer(self, "transmitter", "; the ring waits for its replacement")
end

function Transmitter:stop ()
   if self.r then ring.detach(self.r, self.name, "transmitter") end
   self.r = nil
end

return Transmitter
