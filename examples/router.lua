-- A router between two ports, p0 and p1 (apps.router.router, apps/router/README.md), its routes
-- and neighbours from files. Arguments NAME=VALUE, after the config on the command line:
--   routes=FILE        "PREFIX NEXTHOP PORT" lines (default examples/router-routes.txt)
--   neighbours=FILE    "IP MAC" lines (default examples/router-neighbours.txt)
--   verify_checksum=false   leave the IPv4 header checksum to the NIC (apps/router/README.md)
--   p0=PORT p1=PORT    what each port is: pcap:IN.pcap[,OUT.pcap] (reads IN once, writes
--                      what leaves the port to OUT; pcap:,OUT.pcap only writes), dpdk:DEVICE
--                      (drivers/dpdk: net_null0, net_ring0, a PCI address) or af_packet:IFNAME;
--                      a port left out has no app (snabb bench links the router's ports itself)
--   snabb run examples/router.lua p0=pcap:in.pcap,out0.pcap p1=pcap:,out1.pcap --report
--   snabb run examples/router.lua p0=dpdk:net_null0 p1=dpdk:net_null1 --duration 5 --report
--   snabb bench examples/router.lua --pcap 64.pcap --in router.p0 --out router.p1 routes=FILE
-- Port addresses: p0 02:00:00:00:00:01, 192.0.2.1, 2001:db8:0:1::1; p1 02:00:00:00:00:02,
-- 198.51.100.1, 2001:db8:0:2::1 (the ICMP time-exceeded sources).
local router = require("apps.router.router")
local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".")

local args = {routes = here .. "/router-routes.txt", neighbours = here .. "/router-neighbours.txt"}
for _, a in ipairs({...}) do
   local k, v = tostring(a):match("^([%w_]+)=(.*)$")
   if not (k and (k == "routes" or k == "neighbours" or k == "p0" or k == "p1"
                  or k == "verify_checksum" and (v == "true" or v == "false"))) then
      error(("examples/router.lua: argument '%s' is not routes=FILE, neighbours=FILE, p0=PORT, p1=PORT"
             .. " or verify_checksum=true|false"):format(tostring(a)), 0)
   end
   args[k] = v
end

local c = config.new()
config.app(c, "router", router.Router, {
   ports = {p0 = {mac = "02:00:00:00:00:01", ip = "192.0.2.1", ip6 = "2001:db8:0:1::1"},
            p1 = {mac = "02:00:00:00:00:02", ip = "198.51.100.1", ip6 = "2001:db8:0:2::1"}},
   routes = args.routes,
   neighbours = args.neighbours,
   verify_checksum = args.verify_checksum and args.verify_checksum == "true", -- (nil: the default)
})

for _, port in ipairs({"p0", "p1"}) do
   local spec = args[port]
   if spec then
      local kind, what = spec:match("^([%w_]+):(.+)$")
      if kind == "pcap" then
         local pcap = require("apps.pcap.pcap")
         local input, output = what:match("^([^,]*),?(.*)$")
         if input ~= "" then
            config.app(c, port .. "_in", pcap.PcapReader, input)
            config.link(c, port .. "_in.output -> router." .. port)
         end
         if output ~= "" then
            config.app(c, port .. "_out", pcap.PcapWriter, output)
            config.link(c, "router." .. port .. " -> " .. port .. "_out.input")
         end
      elseif kind == "dpdk" or kind == "af_packet" then
         local app = kind == "dpdk" and require("drivers.dpdk.dpdk").DpdkPort
                     or require("drivers.af_packet.af_packet").AfPacket
         config.app(c, port .. "_nic", app, kind == "dpdk" and {port = what} or {ifname = what})
         config.link(c, port .. "_nic.output -> router." .. port)
         config.link(c, "router." .. port .. " -> " .. port .. "_nic.input")
      else
         error(("examples/router.lua: %s=%s: a port is pcap:IN[,OUT], dpdk:DEVICE or af_packet:IFNAME")
                  :format(port, spec), 0)
      end
   end
end
return c
