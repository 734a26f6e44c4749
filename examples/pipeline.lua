-- A graph of two forwarding stages, in one worker or split over two (snabb run/bench
-- examples/pipeline.lua N [read]): with N = 1 the stages are linked in one process; with N = 2 the
-- first runs in worker w1 and the second in w2, and an interlink (apps/interlink) joins them. With
-- `read`, the second stage reads each packet's length and a byte of its Ethernet type, as a network
-- function does (the packets' lines then travel to w2's core and back). Benchmark the interlink
-- against the in-process link (the capture enters at w1/first and leaves at w2/second, or
-- w1/second), one worker per core:
--   snabb bench examples/pipeline.lua 1 --pcap examples/imix-16flows.pcap --cpu 0
--   snabb bench examples/pipeline.lua 2 --pcap examples/imix-16flows.pcap --cpu 0,1
local n, read = ...
n = tonumber(n) or 2
assert(n == 1 or n == 2, "examples/pipeline.lua takes 1 or 2 (workers)")
assert(read == nil or read == "read", "examples/pipeline.lua's second argument is `read` or none")
local Join = require("apps.basic.basic_apps").Join -- (with one input: a forwarder)

-- The reading stage: a forwarder that reads what a network function reads first.
local link = require("core.link")
local receive, transmit, nreadable = link.receive, link.transmit, link.nreadable
local Reader = {}
function Reader:new () return setmetatable({sum = 0}, {__index = Reader}) end
function Reader:push ()
   local i, o, sum = self.input.input, self.output.output, self.sum
   for _ = 1, nreadable(i) do
      local p = receive(i)
      sum = bit.tobit(sum + p.length + p.data[12])
      transmit(o, p)
   end
   self.sum = sum
end
local Second = read and Reader or Join

local w1 = config.new()
config.app(w1, "first", Join)
if n == 1 then
   config.app(w1, "second", Second)
   config.link(w1, "first.output -> second.input")
   return {workers = {w1 = w1}}
end
local w2 = config.new()
config.app(w1, "to_w2", require("apps.interlink.transmitter"), {name = "pipeline"})
config.link(w1, "first.output -> to_w2.input")
config.app(w2, "from_w1", require("apps.interlink.receiver"), {name = "pipeline"})
config.app(w2, "second", Second)
config.link(w2, "from_w1.output -> second.input")
return {workers = {w1 = w1, w2 = w2}}
