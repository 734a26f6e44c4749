-- tools/bench-frag.lua: what apps.ipv4.fragment and apps.ipv4.reassemble cost, in ns per packet,
-- run as `bazel-bin/programs/snabb tools/bench-frag.lua [ROUNDS]` (pin it: taskset -c N). Each
-- case pushes batches of 100 packets through the app called directly (no engine), and is timed
-- against the same loop through a plain forwarder (receive, transmit: the cost of the links,
-- clones and frees) in alternation, ROUNDS times (default 9); it prints the medians of both and
-- their difference, the app's own cost:
--   reasm pass, frag pass   64-byte IPv4 frames through each app's fast path (not a fragment; within the MTU)
--   frag 1500    1,500-byte IPv4 packets cut at MTU 576 (3 fragments each), per packet in
--   reasm 1500   those 3 fragments reassembled, per datagram out
local lib = require("core.lib")
local ffi = require("ffi")
local packet = require("core.packet")
local link = require("core.link")
local header = require("apps.ipv4.header")
local Fragmenter = require("apps.ipv4.fragment").Fragmenter
local Reassembler = require("apps.ipv4.reassemble").Reassembler
local C = ffi.C

local rounds = tonumber(main.parameters[1] or 9)
local BATCH, BATCHES = 100, 2000

local Forward = {}
function Forward:push ()
   local i, o = self.input.input, self.output.output
   for _ = 1, link.nreadable(i) do link.transmit(o, link.receive(i)) end
end
local function forwarder ()
   return setmetatable({input = {input = link.new("in")}, output = {output = link.new("out")}},
                       {__index = Forward})
end

-- ns per unit: BATCHES batches of the packets `make(k)` gives, through app; `units` per batch.
local function time (app, make, units)
   local i, o = app.input.input, app.output.output
   local t0 = C.get_time_ns()
   for _ = 1, BATCHES do
      for k = 1, BATCH do link.transmit(i, make(k)) end
      app:push()
      for _ = 1, link.nreadable(o) do packet.free(link.receive(o)) end
   end
   return tonumber(C.get_time_ns() - t0) / (BATCHES * units)
end

local median = lib.median

local function case (name, app, make, units)
   local ours, base = {}, {}
   local fwd = forwarder()
   for _ = 1, rounds do
      ours[#ours + 1] = time(app, make, units)
      base[#base + 1] = time(fwd, make, units)
   end
   local a, b = median(ours), median(base)
   print(("%-12s app %7.1f ns   forward %7.1f ns   app's own %7.1f ns per %s"):format(
      name, a, b, a - b, units == BATCH and "packet" or "datagram"))
end

local small = header.build{payload = 64 - 34}
local big = header.build{payload = 1500 - 20}
local frag = header.instance(Fragmenter, {mtu = 576}, "bench_fragment")
local pieces = header.push(frag, {packet.clone(big)})
assert(#pieces == 3)
-- Every batch of the reassembly case: 33 datagrams of 3 fragments, each its own identification.
local fragments = {}
for d = 1, 33 do
   for _, p in ipairs(pieces) do
      local c = packet.clone(p)
      local ip = c.data + 14
      header.set16(ip, 4, d)
      require("lib.checksum").ipv4_header(ip)
      fragments[#fragments + 1] = c
   end
end
fragments[100] = packet.clone(small)

case("reasm pass", header.instance(Reassembler, {}, "bench_pass_r"),
     function () return packet.clone(small) end, BATCH)
case("frag pass", header.instance(Fragmenter, {mtu = 1500}, "bench_pass_f"),
     function () return packet.clone(small) end, BATCH)
case("frag 1500", frag, function () return packet.clone(big) end, BATCH)
case("reasm 1500", header.instance(Reassembler, {}, "bench_reasm"),
     function (k) return packet.clone(fragments[k]) end, 33)
