-- A config that ends the process with os.exit: at once (os.exit(3)), or with the argument "app"
-- from an app's push once the engine runs (os.exit(4)). No run directory may be left behind.
if ... ~= "app" then os.exit(3) end
local basic = require("apps.basic.basic_apps")
local Exit = {inputs = {"input"}}
function Exit.new () return setmetatable({breaths = 0}, {__index = Exit}) end
function Exit:push ()
   self.breaths = self.breaths + 1
   if self.breaths == 1000 then os.exit(4) end
   for _ = 1, link.nreadable(self.input.input) do packet.free(link.receive(self.input.input)) end
end
local c = config.new()
config.app(c, "source", basic.Source, {size = 64})
config.app(c, "exit", Exit)
config.link(c, "source.output -> exit.input")
return c
