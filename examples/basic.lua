-- A first app graph: synthetic 64-byte packets, copied by a Tee to two sinks.
--   snabb run examples/basic.lua --duration 1 --report
local basic = require("apps.basic.basic_apps")

local c = config.new()
config.app(c, "source", basic.Source, {size = 64})
config.app(c, "tee", basic.Tee)
config.app(c, "sink_a", basic.Sink)
config.app(c, "sink_b", basic.Sink)
config.link(c, "source.output -> tee.input")
config.link(c, "tee.a -> sink_a.input")
config.link(c, "tee.b -> sink_b.input")
return c
