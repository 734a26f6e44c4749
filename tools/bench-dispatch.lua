-- tools/bench-dispatch.lua: the graph tools/bench-dispatch measures (a config for snabb run).
--   snabb run tools/bench-dispatch.lua CAPTURE dispatch|direct
-- dispatch: Replay(CAPTURE) -> Dispatch -> sink_a, sink_b; direct: Replay(CAPTURE) -> sink (the
-- same graph without Dispatch, for what Dispatch costs).
local pcap = require("apps.pcap.pcap")
local basic = require("apps.basic.basic_apps")
local dispatch = require("apps.dispatch.dispatch")
local capture, mode = ...
local c = config.new()
config.app(c, "source", pcap.Replay, {file = capture})
if mode == "direct" then
   config.app(c, "sink", basic.Sink)
   config.link(c, "source.output -> sink.input")
else
   config.app(c, "dispatch", dispatch.Dispatch)
   config.app(c, "sink_a", basic.Sink)
   config.app(c, "sink_b", basic.Sink)
   config.link(c, "source.output -> dispatch.input")
   config.link(c, "dispatch.a -> sink_a.input")
   config.link(c, "dispatch.b -> sink_b.input")
end
return c
