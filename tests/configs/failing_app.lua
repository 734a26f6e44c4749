-- An app that fails on its 5th push, next to an independent source -> sink chain.
local basic = require("apps.basic.basic_apps")
local Flaky = {}
function Flaky:new () return setmetatable({calls = 0}, {__index = Flaky}) end
function Flaky:push ()
   local i = self.input.input
   while not link.empty(i) do packet.free(link.receive(i)) end
   self.calls = self.calls + 1
   if self.calls == 5 then error("deliberate failure in Flaky") end
end
local c = config.new()
config.app(c, "feed", basic.Source)
config.app(c, "flaky", Flaky)
config.app(c, "source", basic.Source)
config.app(c, "sink", basic.Sink)
config.link(c, "feed.output -> flaky.input")
config.link(c, "source.output -> sink.input")
return c
