-- A DPDK net_pcap port that sends back what it receives: snabb run dpdk_pcap.lua IN.pcap OUT.pcap
local dpdk = require("drivers.dpdk.dpdk")
local basic = require("apps.basic.basic_apps")
local input, output = ...
local c = config.new()
config.app(c, "nic", dpdk.DpdkPort, {port = ("net_pcap0,rx_pcap=%s,tx_pcap=%s"):format(input, output)})
config.app(c, "fwd", basic.Join)
config.link(c, "nic.output -> fwd.input")
config.link(c, "fwd.output -> nic.input")
return c
