local basic = require("apps.basic.basic_apps")
local c = config.new()
config.app(c, "source", basic.Source)
config.app(c, "tee", basic.Tee)
config.link(c, "tee.output -> source.input") -- Source has no inputs
return c
