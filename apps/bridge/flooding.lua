-- apps.bridge.flooding: Snabb's simplest bridge: every frame arriving on a port goes out on every
-- other port within its split-horizon scope (apps.bridge.base). Counters: flood (frames flooded,
-- each once), discard (frames with nowhere to go: no other port has an output link).
local link = require("core.link")
local packet = require("core.packet")
local counter = require("core.counter")
local base = require("apps.bridge.base").bridge

local receive, transmit, nreadable = link.receive, link.transmit, link.nreadable
local clone, free = packet.clone, packet.free

local M = {}

local bridge = setmetatable({
   _name = "flooding bridge",
   config = base.config,
   shm = {flood = {counter}, discard = {counter}},
}, {__index = base})
M.bridge = bridge

function bridge:new (conf)
   return base.new_bridge(bridge, conf)
end

function bridge:push ()
   local flooded, discarded = 0, 0
   for _, port in ipairs(self._ports) do
      local l_in, flood = port.l_in, port.flood
      if l_in then
         local last = #flood
         for _ = 1, nreadable(l_in) do
            local p = receive(l_in)
            if last == 0 then
               free(p)
               discarded = discarded + 1
            else
               for k = 1, last - 1 do transmit(flood[k], clone(p)) end
               transmit(flood[last], p)
               flooded = flooded + 1
            end
         end
      end
   end
   if flooded > 0 then counter.add(self.shm.flood, flooded) end
   if discarded > 0 then counter.add(self.shm.discard, discarded) end
end

return M
