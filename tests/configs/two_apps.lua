-- Two unconnected apps: snabb bench cannot guess where a capture enters.
local basic = require("apps.basic.basic_apps")
local c = config.new()
config.app(c, "a", basic.Join)
config.app(c, "b", basic.Join)
return c
