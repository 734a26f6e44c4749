-- A capture's frames out of an interface: snabb run af_packet_send.lua IN.pcap IFNAME
local af_packet = require("drivers.af_packet.af_packet")
local pcap = require("apps.pcap.pcap")
local input, ifname = ...
local c = config.new()
config.app(c, "reader", pcap.PcapReader, input)
config.app(c, "nic", af_packet.AfPacket, {ifname = ifname})
config.link(c, "reader.output -> nic.input")
return c
