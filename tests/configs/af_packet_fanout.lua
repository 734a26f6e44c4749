-- One member of a PACKET_FANOUT group: snabb run af_packet_fanout.lua IFNAME GROUP OUT.pcap [MODE]
-- (MODE: hash by default; af_packet.AfPacket's fanout = {group =, mode =}).
local af_packet = require("drivers.af_packet.af_packet")
local pcap = require("apps.pcap.pcap")
local ifname, group, output, mode = ...
local c = config.new()
config.app(c, "nic", af_packet.AfPacket,
           {ifname = ifname, promisc = true, fanout = {group = tonumber(group), mode = mode or "hash"}})
config.app(c, "writer", pcap.PcapWriter, output)
config.link(c, "nic.output -> writer.input")
return c
