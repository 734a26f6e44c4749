-- Two interfaces bridged through the graph, both ways: snabb run af_packet_bridge.lua IF1 IF2
local af_packet = require("drivers.af_packet.af_packet")
local one, two = ...
local c = config.new()
config.app(c, "one", af_packet.AfPacket, {ifname = one, promisc = true})
config.app(c, "two", af_packet.AfPacket, {ifname = two, promisc = true})
config.link(c, "one.output -> two.input")
config.link(c, "two.output -> one.input")
return c
