-- An app that frees a packet twice, for the debug mode test (tests/safety_test.sh): under
-- `snabb --debug run` the second free (line 10) is refused, naming the app. Without --debug
-- nothing says so: the free list then holds the packet twice.
local Twice = {}
function Twice.new () return setmetatable({held = packet.allocate()}, {__index = Twice}) end
function Twice:pull ()
   local p = packet.allocate()
   self.p = p
   packet.free(p)
   packet.free(p)
end
local c = config.new()
config.app(c, "twice", Twice)
return c
