-- An app name defined twice (tests/run_test.sh): as in Snabb, whose programs build a config and
-- then redefine apps of it, the later definition wins. The first `sink` would keep every packet
-- (a Join, whose output goes nowhere); the later is a Sink that frees them.
local basic = require("apps.basic.basic_apps")
local c = config.new()
config.app(c, "source", basic.Source, {size = 60})
config.app(c, "sink", basic.Join)
config.app(c, "sink", basic.Sink)
config.link(c, "source.output -> sink.input")
return c
