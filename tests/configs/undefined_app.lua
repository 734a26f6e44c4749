local basic = require("apps.basic.basic_apps")
local c = config.new()
config.app(c, "source", basic.Source)
config.link(c, "source.output -> nosuch.input")
return c
