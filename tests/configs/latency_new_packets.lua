-- snabb bench tests/configs/latency_new_packets.lua: an app, `mix`, that sends packets it made
-- itself besides those it received. Of every three packets in a row it forwards the first, sends
-- a new packet with the second's bytes (allocated after freeing the second, so in its very slot),
-- and sends the third and a clone of it. bench times only the received ones (tests/latency_test.sh).
local ffi = require("ffi")

local Mix = {inputs = {"input"}, outputs = {"output"}}

function Mix:new ()
   return setmetatable({n = 0, scratch = ffi.new("uint8_t[?]", packet.max_payload)}, {__index = Mix})
end

function Mix:push ()
   local i, o = self.input.input, self.output.output
   for _ = 1, link.nreadable(i) do
      local p = link.receive(i)
      local k = self.n % 3
      self.n = self.n + 1
      if k == 0 then
         link.transmit(o, p)
      elseif k == 1 then
         local length = p.length
         ffi.copy(self.scratch, p.data, length)
         packet.free(p)
         link.transmit(o, packet.append(packet.allocate(), self.scratch, length))
      else
         link.transmit(o, packet.clone(p))
         link.transmit(o, p)
      end
   end
end

local c = config.new()
config.app(c, "mix", Mix)
return c
