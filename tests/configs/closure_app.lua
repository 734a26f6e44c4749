-- An app that keeps itself out of the JIT: it creates a closure for every packet (bytecode FNEW,
-- which LuaJIT cannot compile) on the line marked below. snabb profile must name that line.
local Closures = {inputs = {"input"}, outputs = {"output"}}

function Closures:new () return setmetatable({}, {__index = Closures}) end

function Closures:push ()
   local i, o = self.input.input, self.output.output
   for _ = 1, link.nreadable(i) do
      local p = link.receive(i)
      local keep = function () return p end -- line 11: the closure
      link.transmit(o, keep())
   end
end

local c = config.new()
config.app(c, "closures", Closures)
return c
