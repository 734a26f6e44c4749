-- PcapReader -> PcapWriter: snabb run pcap_copy.lua IN OUT [nanosecond]
local pcap = require("apps.pcap.pcap")
local input, output, precision = ...
local c = config.new()
config.app(c, "reader", pcap.PcapReader, input)
config.app(c, "writer", pcap.PcapWriter, {file = output, nanosecond = precision == "nanosecond"})
config.link(c, "reader.output -> writer.input")
return c
