-- tests/ipv4_frag_check.lua: one capture through one of the IPv4 apps, for tests/ipv4_frag_test.sh.
--   snabb ipv4_frag_check.lua fragment MTU IN OUT [ERRORS]
--                                      PcapReader -> Fragmenter{mtu} -> PcapWriter; with ERRORS,
--                                      icmp_source 192.0.2.1 and its errors port to a PcapWriter
--   snabb ipv4_frag_check.lua reassemble IN OUT     PcapReader -> Reassembler -> PcapWriter
-- Runs until the file is read and every link is empty, checks that the app's counters account for
-- every packet in and out (the links' counts), and prints the counters as "NAME VALUE" lines.
local pcap = require("apps.pcap.pcap")
local link = require("core.link")
local counter = require("core.counter")
local fragment = require("apps.ipv4.fragment")
local reassemble = require("apps.ipv4.reassemble")

local mode = main.parameters[1]
local mtu, input, output, errors
if mode == "fragment" then
   mtu, input, output = tonumber(main.parameters[2]), main.parameters[3], main.parameters[4]
   errors = main.parameters[5]
elseif mode == "reassemble" then
   input, output = main.parameters[2], main.parameters[3]
end
assert(input and output, "usage: ipv4_frag_check.lua fragment MTU IN OUT | reassemble IN OUT")

local c = config.new()
config.app(c, "reader", pcap.PcapReader, input)
if mode == "fragment" then
   config.app(c, "app", fragment.Fragmenter,
              {mtu = mtu, icmp_source = errors and "192.0.2.1" or nil})
   if errors then
      config.app(c, "errors", pcap.PcapWriter, errors)
      config.link(c, "app.errors -> errors.input")
   end
else
   config.app(c, "app", reassemble.Reassembler)
end
config.app(c, "writer", pcap.PcapWriter, output)
config.link(c, "reader.output -> app.input")
config.link(c, "app.output -> writer.input")
engine.configure(c)

local function idle ()
   if not engine.app_table.reader.done then return false end
   for _, l in pairs(engine.link_table) do
      if not link.empty(l) then return false end
   end
   return true
end
engine.main({done = idle, no_report = true})

local into = link.stats(engine.link_table["reader.output -> app.input"]).txpackets
local out = link.stats(engine.link_table["app.output -> writer.input"]).txpackets
local app = engine.app_table.app
local values = {}
local function v (name) return tonumber(counter.read(app.shm[name])) end
for name, spec in pairs(app.shm.specs) do
   if spec[1] == counter and name ~= "dtime" then values[#values + 1] = name end
end
table.sort(values)

local function check (what, a, b)
   if a ~= b then error(("%s: %s: %d, want %d"):format(input, what, a, b), 0) end
end
if mode == "fragment" then
   check("packets in", v("out-ipv4-frag-not") + v("ipv4-fragmented") + v("drop-ipv4-frag-df")
         + v("drop-ipv4-malformed"), into)
   check("packets out", v("out-ipv4-frag-not") + v("out-ipv4-frag"), out)
   if errors then
      check("ICMP errors", v("out-icmp-frag-needed"),
            link.stats(engine.link_table["app.errors -> errors.input"]).txpackets)
   end
else
   local drops = 0
   for _, name in ipairs(values) do
      if name:match("^drop%-frag%-") then drops = drops + v(name) end
   end
   check("packets in", v("in-ipv4-frag-reassembly-unneeded") + v("drop-ipv4-malformed")
         + v("in-ipv4-frag-needs-reassembly"), into)
   check("fragments", v("frag-reassembled") + v("held-fragments") + drops,
         v("in-ipv4-frag-needs-reassembly"))
   check("packets out", v("in-ipv4-frag-reassembly-unneeded") + v("in-ipv4-frag-reassembled"), out)
end
for _, name in ipairs(values) do print(name, v(name)) end
print("in", into)
print("out", out)
engine.configure(config.new()) -- the writer closes its file
