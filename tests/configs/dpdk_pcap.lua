-- A DPDK net_pcap port that sends back what it receives: snabb run dpdk_pcap.lua IN.pcap OUT.pcap
local dpdk = require("drivers.dpdk.dpdk")
local input, output = ...
local Forward = {}
function Forward:new () return setmetatable({}, {__index = Forward}) end
function Forward:push ()
   local i, o = self.input.input, self.output.output
   for _ = 1, link.nreadable(i) do link.transmit(o, link.receive(i)) end
end
local c = config.new()
config.app(c, "nic", dpdk.DpdkPort, {port = ("net_pcap0,rx_pcap=%s,tx_pcap=%s"):format(input, output)})
config.app(c, "fwd", Forward)
config.link(c, "nic.output -> fwd.input")
config.link(c, "fwd.output -> nic.input")
return c
