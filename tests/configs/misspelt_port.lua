-- A misspelt port: snabb run misspelt_port.lua PORT feeds Forward (a class with no port list, that
-- reads self.input.input) on PORT, so "inptu" leaves it unread; snabb run misspelt_port.lua PORT
-- writer feeds Writer, whose class lists its ports, on PORT.
local basic = require("apps.basic.basic_apps")
local port, to = ...
local Writer = {inputs = {"input"}, outputs = {}}
function Writer:new () return setmetatable({}, {__index = Writer}) end
local Forward = {}
function Forward:new () return setmetatable({}, {__index = Forward}) end
function Forward:push ()
   local i, o = self.input.input, self.output.output
   if not (i and o) then return end
   while not link.empty(i) and not link.full(o) do link.transmit(o, link.receive(i)) end
end
local c = config.new()
config.app(c, "source", basic.Source)
if to == "writer" then
   config.app(c, "writer", Writer)
   config.link(c, "source.output -> writer." .. port)
else
   config.app(c, "fwd", Forward)
   config.app(c, "sink", basic.Sink)
   config.link(c, "source.output -> fwd." .. port)
   config.link(c, "fwd.output -> sink.input")
end
return c
