-- A link to a port the app's class does not list (a class may list its ports; Snabb's basic apps,
-- as ours, take any name).
local basic = require("apps.basic.basic_apps")
local Sender = {inputs = {}, outputs = {"output"}}
function Sender:new () return setmetatable({}, {__index = Sender}) end
local c = config.new()
config.app(c, "source", Sender)
config.app(c, "tee", basic.Tee)
config.link(c, "tee.output -> source.input") -- Sender has no inputs
return c
