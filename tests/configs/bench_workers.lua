-- Workers for snabb bench (tests/bench_workers_test.sh): worker w1's app `first` forwards over
-- interlink `bw` to worker w2, whose app `dropper` (tests/configs/drop_fifth.lua's function) frees
-- every fifth packet and forwards the rest; the capture enters at w1/first and leaves at
-- w2/dropper. With "one", the same graph in one worker w1 (first -> dropper over a link).
local Join = require("apps.basic.basic_apps").Join
local DropFifth = {inputs = {"input"}, outputs = {"output"}}
function DropFifth:new () return setmetatable({seen = 0}, {__index = DropFifth}) end
function DropFifth:push ()
   local i, o = self.input.input, self.output.output
   for _ = 1, link.nreadable(i) do
      local p = link.receive(i)
      self.seen = self.seen + 1
      if self.seen % 5 == 0 then packet.free(p) else link.transmit(o, p) end
   end
end

local w1, w2 = config.new(), config.new()
config.app(w1, "first", Join)
if (...) == "one" then
   config.app(w1, "dropper", DropFifth)
   config.link(w1, "first.output -> dropper.input")
   return {workers = {w1 = w1}}
end
config.app(w1, "tx", require("apps.interlink.transmitter"), {name = "bw"})
config.link(w1, "first.output -> tx.input")
config.app(w2, "rx", require("apps.interlink.receiver"), {name = "bw"})
config.app(w2, "dropper", DropFifth)
config.link(w2, "rx.output -> dropper.input")
return {workers = {w1 = w1, w2 = w2}}
