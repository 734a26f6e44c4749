-- Source -> Leak, an app that drops what it receives without freeing it: the packet pool fills to
-- its cap and the run stops with a message saying so (tests/pool_cap_test.sh).
local basic = require("apps.basic.basic_apps")
local Leak = {outputs = {}}
function Leak:new () return setmetatable({}, {__index = Leak}) end
function Leak:push ()
   local i = self.input.input
   for _ = 1, link.nreadable(i) do link.receive(i) end
end
local c = config.new()
config.app(c, "source", basic.Source, 60)
config.app(c, "leak", Leak)
config.link(c, "source.output -> leak.input")
return c
