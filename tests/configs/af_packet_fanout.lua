-- One member of a PACKET_FANOUT group: snabb run af_packet_fanout.lua IFNAME GROUP OUT.pcap
local af_packet = require("drivers.af_packet.af_packet")
local pcap = require("apps.pcap.pcap")
local ifname, group, output = ...
local c = config.new()
config.app(c, "nic", af_packet.AfPacket, {ifname = ifname, promisc = true, fanout = tonumber(group)})
config.app(c, "writer", pcap.PcapWriter, output)
config.link(c, "nic.output -> writer.input")
return c
