-- What arrives on an interface into a pcap file: snabb run af_packet_capture.lua IFNAME OUT.pcap
local af_packet = require("drivers.af_packet.af_packet")
local pcap = require("apps.pcap.pcap")
local ifname, output = ...
local c = config.new()
config.app(c, "nic", af_packet.AfPacket, {ifname = ifname, promisc = true})
config.app(c, "writer", pcap.PcapWriter, output)
config.link(c, "nic.output -> writer.input")
return c
