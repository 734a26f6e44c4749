-- tools/bench-workers.lua: the config of tools/bench-workers: N workers (snabb run
-- tools/bench-workers.lua N [SIZE] [ROUNDS]), each a Source of SIZE-byte packets (default 256) ->
-- Checksum -> Sink, the Source standing for the NIC queue that RSS gives each worker. Checksum is
-- a CPU-bound network function: it sums each packet ROUNDS times (default 4) with lib.checksum's
-- bulk sum (lib.checksum.ipsum) and stores the sum in the packet, so that its cycles, not the
-- links', set the rate.
local checksum = require("lib.checksum")
local basic = require("apps.basic.basic_apps")
local n, size, rounds = ...
n, size, rounds = tonumber(n) or 1, tonumber(size) or 256, tonumber(rounds) or 4

local Checksum = {config = {rounds = {default = 4}}, inputs = {"input"}, outputs = {"output"}}
function Checksum:new (conf) return setmetatable({rounds = conf.rounds}, {__index = Checksum}) end
function Checksum:push ()
   local input, output = self.input.input, self.output.output
   for _ = 1, link.nreadable(input) do
      local p = link.receive(input)
      local sum = 0
      for _ = 1, self.rounds do sum = checksum.ipsum(p.data, p.length, sum) end
      p.data[p.length - 1] = sum
      link.transmit(output, p)
   end
end

local workers = {}
for i = 1, n do
   local c = config.new()
   config.app(c, "source", basic.Source, {size = size})
   config.app(c, "checksum", Checksum, {rounds = rounds})
   config.app(c, "sink", basic.Sink)
   config.link(c, "source.output -> checksum.input")
   config.link(c, "checksum.output -> sink.input")
   workers["w" .. i] = c
end
return {workers = workers}
