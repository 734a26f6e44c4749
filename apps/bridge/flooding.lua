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

function M.selftest ()
   print("selftest: apps.bridge.flooding")
   local config, engine, lib = require("core.config"), require("core.engine"), require("core.lib")
   local c = config.new()
   config.app(c, "hand", require("apps.vlan.vlan").Hand)
   config.app(c, "bridge", bridge, {ports = {"a"}, split_horizon_groups = {g = {"b", "c"}}})
   config.app(c, "sink", require("apps.basic.basic_apps").Sink)
   for _, port in ipairs({"a", "b", "c"}) do
      config.link(c, ("hand.%s -> bridge.%s"):format(port, port))
      config.link(c, ("bridge.%s -> sink.%s"):format(port, port))
   end
   engine.configure(c)
   local br, hand, sink = engine.app_table.bridge, engine.app_table.hand.output, engine.app_table.sink.input
   local function got ()
      local t = {}
      for _, port in ipairs({"a", "b", "c"}) do
         t[port] = nreadable(sink[port])
         for _ = 1, t[port] do free(receive(sink[port])) end
      end
      return t
   end
   -- From a (free): to b and c. From b: to a only (c is in its group); the copies are whole.
   local frame = ("\255"):rep(6) .. "\2\0\0\0\0\1\8\0" .. ("x"):rep(46)
   transmit(hand.a, packet.from_string(frame))
   br:push()
   assert(lib.equal(got(), {a = 0, b = 1, c = 1}))
   transmit(hand.b, packet.from_string(frame))
   transmit(hand.b, packet.from_string(frame))
   br:push()
   local l = sink.a
   assert(nreadable(l) == 2 and packet.tostring(link.front(l)) == frame)
   assert(lib.equal(got(), {a = 2, b = 0, c = 0}))
   assert(counter.read(br.shm.flood) == 3 and counter.read(br.shm.discard) == 0)
   -- Without a's output link, b's frames have nowhere to go: discarded, counted.
   engine.configure(config.new())
   c = config.new()
   config.app(c, "hand", require("apps.vlan.vlan").Hand)
   config.app(c, "bridge", bridge, {ports = {"a"}, split_horizon_groups = {g = {"b", "c"}}})
   config.link(c, "hand.b -> bridge.b")
   engine.configure(c)
   br = engine.app_table.bridge
   transmit(engine.app_table.hand.output.b, packet.from_string(frame))
   br:push()
   assert(counter.read(br.shm.discard) == 1)
   engine.configure(config.new())
   print("selftest: apps.bridge.flooding ok")
end

return M
