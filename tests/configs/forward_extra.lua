-- examples/forward.lua's graph (its Forward app, the same source file) with a second app after
-- it that also sums each packet's bytes: a run that differs from examples/forward.lua's by an
-- extra, slower app, for tests/inspect_compare_test.sh (snabb inspect A B). bench feeds fwd.input
-- and collects extra.output.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(here .. "../../examples/forward.lua")

local Extra = {inputs = {"input"}, outputs = {"output"}}

function Extra:new ()
   return setmetatable({sum = 0}, {__index = Extra})
end

function Extra:push ()
   local i, o = self.input.input, self.output.output
   for _ = 1, link.nreadable(i) do
      local p = link.receive(i)
      local sum = self.sum
      for k = 0, p.length - 1 do sum = (sum + p.data[k]) % 65536 end
      self.sum = sum
      link.transmit(o, p)
   end
end

config.app(c, "extra", Extra)
config.link(c, "fwd.output -> extra.input")
return c
