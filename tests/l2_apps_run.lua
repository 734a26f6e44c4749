-- snabb tests/l2_apps_run.lua GRAPH ARGS...: runs one of the L2 apps (apps.vlan, apps.bridge,
-- apps.ipv4.arp, apps.ipv6.nd_light) between captures, until every reader has sent its capture
-- and the graph has moved it through (breaths counted, not time), stops the graph (the writers
-- close their files), and prints each app's counters as "APP COUNTER VALUE" lines, for
-- tests/l2_apps_test.sh to compare with what tshark reads in the captures written.
local pcap = require("apps.pcap.pcap")
local basic = require("apps.basic.basic_apps")
local vlan = require("apps.vlan.vlan")
local arp = require("apps.ipv4.arp")
local nd = require("apps.ipv6.nd_light")

local graph = ...
local args = {select(2, ...)}
local c = config.new()
local readers, watched = {}, {}

local function reader (name, file, to)
   config.app(c, name, pcap.PcapReader, file)
   config.link(c, name .. ".output -> " .. to)
   readers[#readers + 1] = name
end
local function writer (name, file, from)
   config.app(c, name, pcap.PcapWriter, file)
   config.link(c, from .. " -> " .. name .. ".input")
end
local function app (name, class, arg)
   config.app(c, name, class, arg)
   watched[#watched + 1] = name
end

local MAC, NEXT_MAC = "02:00:00:00:00:01", "02:00:00:00:00:fe"
if graph == "arp" then -- IN OUT SELF_IP [NEXT_IP NORTH_IN]: replies, requests, north rewritten
   local input, output, self_ip, next_ip, north = unpack(args)
   app("arp", arp.ARP, {self_ip = self_ip, self_mac = MAC, next_ip = next_ip,
                        next_mac = not next_ip and NEXT_MAC or nil, quiet = true})
   reader("south_in", input, "arp.south")
   writer("south_out", output, "arp.south")
   config.app(c, "sink", basic.Sink)
   config.link(c, "arp.north -> sink.input")
   if north then reader("north_in", north, "arp.north") end
elseif graph == "nd" then -- IN OUT LOCAL_IP NEXT_HOP: NS answered, next hop solicited
   local input, output, local_ip, next_hop = unpack(args)
   app("nd", nd.nd_light, {local_mac = MAC, local_ip = local_ip, next_hop = next_hop, quiet = true})
   reader("south_in", input, "nd.south")
   writer("south_out", output, "nd.south")
   config.app(c, "sink", basic.Sink)
   config.link(c, "nd.north -> sink.input")
elseif graph == "nd_pair" then -- NORTH_IN WIRE12 WIRE21 OUT: two nd_light resolve each other
   -- nd1 -> tee12 -> nd2 and back through tee21; the tees' copies are the wire, both ways. Once
   -- both have resolved (breaths, below), NORTH_IN goes into nd1 and out of nd2's north to OUT.
   local north, wire12, wire21, output = unpack(args)
   app("nd1", nd.nd_light, {local_mac = MAC, local_ip = "2001:db8::1", next_hop = "2001:db8::2", quiet = true})
   app("nd2", nd.nd_light, {local_mac = NEXT_MAC, local_ip = "2001:db8::2", next_hop = "2001:db8::1", quiet = true})
   config.app(c, "tee12", basic.Tee)
   config.app(c, "tee21", basic.Tee)
   config.link(c, "nd1.south -> tee12.input")
   config.link(c, "tee12.wire -> nd2.south")
   config.link(c, "nd2.south -> tee21.input")
   config.link(c, "tee21.wire -> nd1.south")
   writer("wire12", wire12, "tee12.copy")
   writer("wire21", wire21, "tee21.copy")
   writer("north_out", output, "nd2.north")
   config.app(c, "sink", basic.Sink)
   config.link(c, "nd1.north -> sink.input")
   engine.configure(c)
   -- Each answers the other's first solicitation in a breath or two; 5,000 slices of breaths
   -- (each up to a millisecond) without both resolved is a failure, not a wait.
   local slices = 0
   engine.main({done = function ()
      slices = slices + 1
      return slices > 5000 or engine.app_table.nd1.resolved and engine.app_table.nd2.resolved
   end, no_report = true})
   if not (engine.app_table.nd1.resolved and engine.app_table.nd2.resolved) then
      io.stderr:write("nd_pair: the two nd_light did not resolve each other\n")
      os.exit(1)
   end
   reader("north_in", north, "nd1.north")
elseif graph == "untag" or graph == "tag" then -- IN OUT VID [ENCAPSULATION]
   local input, output, vid, encap = unpack(args)
   app("vlan", graph == "tag" and vlan.Tagger or vlan.Untagger, {tag = vid, encapsulation = encap})
   reader("in", input, "vlan.input")
   writer("out", output, "vlan.output")
elseif graph == "mux" then -- TRUNK_IN VID VLAN_OUT NATIVE_OUT TRUNK_OUT: demux, then mux back
   local input, vid, vlan_out, native_out, trunk_out = unpack(args)
   app("demux", vlan.VlanMux, {})
   app("mux", vlan.VlanMux, {})
   reader("in", input, "demux.trunk")
   config.app(c, "tee_vlan", basic.Tee)
   config.app(c, "tee_native", basic.Tee)
   config.link(c, "demux.vlan" .. vid .. " -> tee_vlan.input")
   config.link(c, "demux.native -> tee_native.input")
   writer("vlan_out", vlan_out, "tee_vlan.copy")
   writer("native_out", native_out, "tee_native.copy")
   config.link(c, "tee_vlan.back -> mux.vlan" .. vid)
   config.link(c, "tee_native.back -> mux.native")
   writer("trunk_out", trunk_out, "mux.trunk")
elseif graph == "learning" or graph == "flooding" then -- A_IN B_IN OUTDIR: ports a, b, c
   local a, b, outdir = unpack(args)
   app("bridge", require("apps.bridge." .. graph).bridge, {ports = {"a", "b", "c"}})
   reader("a_in", a, "bridge.a")
   reader("b_in", b, "bridge.b")
   for _, port in ipairs({"a", "b", "c"}) do
      writer(port .. "_out", outdir .. "/" .. port .. ".pcap", "bridge." .. port)
   end
   config.app(c, "sink", basic.Sink)
   config.link(c, "sink.c -> bridge.c") -- nothing comes in on c
else
   error("unknown graph " .. tostring(graph), 0)
end

engine.configure(c)
-- Done when every reader is done and 10 more slices of breaths have run.
local after = 0
engine.main({done = function ()
   for _, name in ipairs(readers) do
      if not engine.app_table[name].done then return false end
   end
   after = after + 1
   return after > 10
end, no_report = true})
local lines = {}
for _, name in ipairs(watched) do
   for counter_name, value in pairs(vlan.counters(engine.app_table[name])) do
      lines[#lines + 1] = ("%s %s %d"):format(name, counter_name, value)
   end
end
engine.configure(config.new()) -- stops the writers: their files are complete
table.sort(lines)
print(table.concat(lines, "\n"))
