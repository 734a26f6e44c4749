local basic = require("apps.basic.basic_apps")
local c = config.new()
config.app(c, "source", basic.Sourse) -- misspelt: basic.Sourse is nil
return c
