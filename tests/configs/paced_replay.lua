-- Replay -> Sink at a steady rate, for snabb top and snabb ps (tests/top_test.sh, ps_test.sh):
-- snabb run paced_replay.lua IN.pcap RATE PACKETS: PACKETS records of IN.pcap, looped, at RATE
-- (e.g. 50kpps), then the source is done.
local pcap = require("apps.pcap.pcap")
local basic = require("apps.basic.basic_apps")
local input, rate, packets = ...
local c = config.new()
config.app(c, "replay", pcap.Replay, {file = input, rate = rate, packets = tonumber(packets)})
config.app(c, "sink", basic.Sink)
config.link(c, "replay.output -> sink.input")
return c
