-- Replay (endless, 20 kpps) -> PcapWriter, for the signal tests: snabb run pcap_replay.lua IN OUT
local pcap = require("apps.pcap.pcap")
local input, output = ...
local c = config.new()
config.app(c, "replay", pcap.Replay, {file = input, rate = "20kpps"})
config.app(c, "writer", pcap.PcapWriter, output)
config.link(c, "replay.output -> writer.input")
return c
