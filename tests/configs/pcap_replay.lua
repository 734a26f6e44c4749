-- Replay -> PcapWriter: snabb run pcap_replay.lua IN OUT [LOOPS]. Without LOOPS, endless at 20
-- kpps (for the signal tests); with it, LOOPS times through the capture as fast as it goes.
local pcap = require("apps.pcap.pcap")
local input, output, loops = ...
local c = config.new()
config.app(c, "replay", pcap.Replay, loops and {file = input, loops = tonumber(loops)}
                                     or {file = input, rate = "20kpps"})
config.app(c, "writer", pcap.PcapWriter, output)
config.link(c, "replay.output -> writer.input")
return c
