-- PcapReader -> Sink: snabb run pcap_sink.lua IN. Ends by itself once the file is read.
local pcap = require("apps.pcap.pcap")
local basic = require("apps.basic.basic_apps")
local input = ...
local c = config.new()
config.app(c, "reader", pcap.PcapReader, input)
config.app(c, "sink", basic.Sink)
config.link(c, "reader.output -> sink.input")
return c
