-- The smallest network function: one app that forwards every packet from its input to its output.
-- Benchmark it against a capture (bench feeds fwd.input and collects fwd.output):
--   snabb bench examples/forward.lua --pcap examples/imix-16flows.pcap
local Forward = {inputs = {"input"}, outputs = {"output"}} -- the only ports it has

function Forward:new ()
   return setmetatable({}, {__index = Forward})
end

function Forward:push ()
   local i, o = self.input.input, self.output.output
   for _ = 1, link.nreadable(i) do
      link.transmit(o, link.receive(i))
   end
end

local c = config.new()
config.app(c, "fwd", Forward)
return c
