-- A network function that drops 20%: it frees every fifth packet it receives and forwards the
-- rest. snabb bench must report those packets as lost inside the graph, freed by app 'dropper'.
-- With the argument "fail", it raises an error on its third push, once (the engine restarts it).
local DropFifth = {inputs = {"input"}, outputs = {"output"}}
local failed = false

function DropFifth:new (arg)
   return setmetatable({seen = 0, pushes = 0, fail = arg.fail}, {__index = DropFifth})
end

function DropFifth:push ()
   local i, o = self.input.input, self.output.output
   local seen = self.seen
   for _ = 1, link.nreadable(i) do
      local p = link.receive(i)
      seen = seen + 1
      if seen % 5 == 0 then packet.free(p) else link.transmit(o, p) end
   end
   self.seen = seen
   self.pushes = self.pushes + 1
   if self.fail and self.pushes == 3 and not failed then
      failed = true
      error("deliberate failure on the third push")
   end
end

local c = config.new()
config.app(c, "dropper", DropFifth, {fail = (...) == "fail"})
return c
