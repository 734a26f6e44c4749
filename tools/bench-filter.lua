-- tools/bench-filter.lua: what a pcap-filter expression costs per packet, four ways over the same
-- packets in memory, alternating: ours (lib.pf.compile, the filter compiled to Lua; a loop that
-- branches on its verdict), ours numeric (lib.pf.compile with numeric = true; a loop that adds
-- its 1 or 0 verdicts, as libpcap's loop counts), libpcap's BPF translated to Lua (lib.pf.bpf),
-- and libpcap's own BPF interpreter (bpf_filter, what pcap_offline_filter runs, called from a C++
-- loop over the packets: lib/pf/bpf_loop.cc, so that no FFI call per packet is charged to it).
-- Each way's loop is its own Lua function, so that LuaJIT gives each its own traces, the matcher
-- inlined. Every loop, ours and libpcap's alike, prefetches (PREFETCHT0) the packet AHEAD places
-- on before it runs one, as a loop over packets not yet in the core's caches does (DPDK's l3fwd
-- prefetches ahead so): the mix's packets are 4.4 MB, their first lines alone 1 MB, beyond L2.
-- Without it, a matcher of a few dozen instructions waits on L3 for each packet, while libpcap's
-- interpreter, several times slower, overlaps the wait with its own work. Every measurement runs
-- PACKETS packets (whole passes over the set), timed in CPU time of the process (os.clock: what
-- the core gives other processes is not counted, on a shared machine); TRIALS trials after one
-- warm-up, the order of the ways rotating from trial to trial; prints the medians in Mpps and the
-- median of each trial's ratio to libpcap. Checks that all accept the same packets.
-- tools/bench-filter runs it pinned to one core, on a generated mix (tools/README.md).
--   snabb tools/bench-filter.lua [--trials N] [--packets N] [--shuffle] [--first N] [--ahead N]
--                                [--write OUT.pcap] [--region N] [--filter EXPR]... PCAP...
-- --shuffle: the packets of all the captures in a random order (fixed seed), as on a link that
-- carries them all at once; --first: only the first N of those packets (few enough to stay in
-- the core's caches, as packets replayed through packet buffers are); --ahead: how many packets
-- ahead the loops prefetch (16; 0: none); --write: the packets, as measured, into OUT.pcap (for
-- other tools to run on the same packets); --region: the numeric matcher's region (lib.pf's
-- opts.region, to measure its choice); --filter: these expressions instead of the fixed set.
local ffi = require("ffi")
local lib = require("core.lib")
local libpcap = require("lib.pf.libpcap")
local bpf = require("lib.pf.bpf")
local pf = require("lib.pf")
local C = ffi.C
require("core.lib_h") -- prefetch_for_read

ffi.cdef([[
uint64_t snabb_bpf_filter_loop(const struct snabb_bpf_insn *insns, const uint8_t *const *packets,
                               const uint32_t *caplens, const uint32_t *wirelens, size_t n,
                               size_t rounds, size_t ahead);
]])

-- The 20-term `or` of hosts: 10.0.0.1 to 10.0.0.20 (the generated IPv4 UDP flows' sources
-- start at 10.0.0.1).
local hosts = {}
for i = 1, 20 do hosts[i] = "host 10.0.0." .. i end
local EXPRESSIONS = {
   "ip", "tcp", "tcp port 80", "net 192.168.0.0/16", "ip and udp and dst port 53",
   "tcp[tcpflags] & tcp-syn != 0", "vlan and ip6", table.concat(hosts, " or "),
}

local function fail (message)
   io.stderr:write("bench-filter: ", message, "\n")
   os.exit(2)
end

local args = {...}
local trials, per_measure, shuffle, write, files, exprs = 5, 4e6, false, nil, {}, {}
local region, first
local ahead = 16
local i = 1
while i <= #args do
   local a = args[i]
   if a == "--trials" or a == "--packets" or a == "--write" or a == "--filter"
      or a == "--region" or a == "--first" or a == "--ahead" then
      local v = args[i + 1] or fail(a .. " needs a value")
      if a == "--trials" then trials = tonumber(v) or fail("--trials: not a number: " .. v)
      elseif a == "--packets" then
         per_measure = tonumber(v) or fail("--packets: not a number: " .. v)
      elseif a == "--write" then write = v
      elseif a == "--region" then region = tonumber(v) or fail("--region: not a number: " .. v)
      elseif a == "--ahead" then
         ahead = tonumber(v)
         if not ahead or ahead < 0 or ahead > 256 or ahead % 1 ~= 0 then
            fail("--ahead: not a count of packets from 0 to 256: " .. v)
         end
      elseif a == "--first" then
         first = tonumber(v)
         if not first or first < 1 or first % 1 ~= 0 then
            fail("--first: not a count of packets: " .. v)
         end
      else exprs[#exprs + 1] = v end
      i = i + 2
   else
      if a == "--shuffle" then shuffle = true
      elseif a:match("^%-") then fail("unknown option " .. a)
      else files[#files + 1] = a end
      i = i + 1
   end
end
if #files == 0 then fail("no capture given") end
if #exprs == 0 then exprs = EXPRESSIONS end

-- The packets: every record of the Ethernet captures (others are skipped, said so).
local records = dofile("tests/pcap_records.lua")
local packets, skipped = {}, {}
for _, file in ipairs(files) do
   local recs, linktype = records(file)
   if linktype == libpcap.DLT_EN10MB then
      for _, r in ipairs(recs) do packets[#packets + 1] = r end
   else
      skipped[#skipped + 1] = file
   end
end
if #skipped > 0 then
   print("not Ethernet (skipped): " .. table.concat(skipped, " "))
end
local n = #packets
if n == 0 then fail("no Ethernet packets in the captures given") end
if shuffle then
   math.randomseed(19)
   for j = n, 2, -1 do
      local k = math.random(j)
      packets[j], packets[k] = packets[k], packets[j]
   end
end

if first and first < n then
   for j = n, first + 1, -1 do packets[j] = nil end
   n = first
end

if write then
   local f = assert(io.open(write, "wb"))
   local hdr = ffi.new("uint32_t[6]", 0xa1b2c3d4, 0x00040002, 0, 0, 262144, libpcap.DLT_EN10MB)
   f:write(ffi.string(hdr, 24))
   local rec = ffi.new("uint32_t[4]")
   for j, r in ipairs(packets) do
      rec[0], rec[1], rec[2], rec[3] = math.floor(j / 1e6), j % 1e6, r.caplen, r.len
      f:write(ffi.string(rec, 16), r.data)
   end
   f:close()
end

-- In memory, each packet at a 64-byte boundary (as packet buffers are).
local size = 0
for _, r in ipairs(packets) do size = size + r.caplen + 63 - (r.caplen + 63) % 64 end
-- A numeric matcher may read REACH bytes from a packet's start, whatever its length.
local mem = ffi.new("uint8_t[?]", size + 64 + require("lib.pf.codegen").REACH)
local base = mem + (64 - tonumber(ffi.cast("uintptr_t", mem) % 64)) % 64
-- ptrs has `ahead` more addresses, the first packets again: the next pass's, to prefetch.
local ptrs = ffi.new("const uint8_t *[?]", n + ahead)
local caplens, wirelens = ffi.new("uint32_t[?]", n), ffi.new("uint32_t[?]", n)
local bytes, at = 0, 0
for j, r in ipairs(packets) do
   ffi.copy(base + at, r.data, r.caplen)
   ptrs[j - 1], caplens[j - 1], wirelens[j - 1] = base + at, r.caplen, r.len
   at = at + r.caplen + 63 - (r.caplen + 63) % 64
   bytes = bytes + r.caplen
end
for j = 0, ahead - 1 do ptrs[n + j] = ptrs[j % n] end
local rounds = math.max(1, math.ceil(per_measure / n))
-- The Lua loops read the same lengths as int32_t, as our matchers get them from a packet (its
-- uint16_t length). As uint32_t, LuaJIT makes each a double (a value may pass 2^31): the wire
-- length, which no matcher of the fixed set reads, cost a load and a conversion a packet (3 of
-- the 40-60 instructions of a numeric matcher's loop) for the snapshot of the call's frame.
local caplens_i, wirelens_i = ffi.cast("const int32_t *", caplens),
   ffi.cast("const int32_t *", wirelens)

-- A loop of Lua over the packets, a new function each time (its own traces). A compiled
-- prefetch_for_read is one PREFETCHT0 (third_party/luajit/prefetch-intrinsic.patch); AHEAD is
-- written into the source, so the address is one load (as a variable, an add more: 2 of the 17
-- instructions a packet of `ip`'s numeric loop).
local LOOP = [[
local match, ptrs, caplens, wirelens, n, rounds = ...
local prefetch = require("ffi").C.prefetch_for_read
local accepted = 0
for _ = 1, rounds do
   for i = 0, n - 1 do
      PREFETCH
      if match(ptrs[i], caplens[i], wirelens[i]) then accepted = accepted + 1 end
   end
end
return accepted
]]
-- The numeric matcher's loop: the verdict counted, not branched on, in an integer (tobit: a double
-- accumulator's 3-cycle add chain would be the loop's floor, measured with `len >= 0`).
local COUNT = [[
local match, ptrs, caplens, wirelens, n, rounds = ...
local tobit = require("bit").tobit
local prefetch = require("ffi").C.prefetch_for_read
local accepted = 0
for _ = 1, rounds do
   for i = 0, n - 1 do
      PREFETCH
      accepted = tobit(accepted + match(ptrs[i], caplens[i], wirelens[i]))
   end
end
return accepted
]]
local function lua_way (match, loop_source)
   local prefetch = ahead > 0 and ("prefetch(ptrs[i + %d])"):format(ahead) or ""
   local source = (loop_source or LOOP):gsub("PREFETCH", prefetch)
   local loop = assert(loadstring(source, "=bench-filter loop"))
   return function (r) return loop(match, ptrs, caplens_i, wirelens_i, n, r) end
end

local WAYS = {"ours", "numeric", "bpf", "libpcap"}
local cases = {}
for _, expr in ipairs(exprs) do
   local prog, err = libpcap.compile(expr)
   if not prog then fail(("'%s': %s"):format(expr, err)) end
   local ours, err2 = pf.compile(expr)
   if not ours then fail(err2) end
   local via_bpf = assert(bpf.compile(expr))
   local numeric = assert(pf.compile(expr, {numeric = true, region = region}))
   cases[#cases + 1] = {
      expr = expr,
      run = {
         ours = lua_way(ours),
         numeric = lua_way(numeric, COUNT),
         bpf = lua_way(via_bpf),
         libpcap = function (r)
            return tonumber(C.snabb_bpf_filter_loop(prog.bf_insns, ptrs, caplens, wirelens, n, r,
                                                    ahead))
         end,
      },
      mpps = {ours = {}, numeric = {}, bpf = {}, libpcap = {}},
      ratio = {ours = {}, numeric = {}, bpf = {}},
   }
end

print(("%d packets (%d bytes captured) of %d capture(s)%s, %d passes (%d packets) a measurement, "
          .. "%d trials, %s"):format(n, bytes, #files - #skipped, shuffle and ", shuffled" or "",
                                     rounds, rounds * n, trials,
                                     ahead > 0 and ("every loop prefetching %d packets ahead"):format(ahead)
                                        or "no prefetch"))

-- Trial 0 warms up (traces compiled, side traces for every path the packets take) and checks
-- that the three ways accept the same packets.
for trial = 0, trials do
   for _, case in ipairs(cases) do
      local seconds, accepted = {}, {}
      for w = 1, #WAYS do
         local way = WAYS[(w + trial - 1) % #WAYS + 1]
         local t0 = os.clock()
         accepted[way] = case.run[way](rounds)
         seconds[way] = os.clock() - t0
      end
      if accepted.ours ~= accepted.libpcap or accepted.bpf ~= accepted.libpcap
         or accepted.numeric ~= accepted.libpcap then
         error(("'%s': accepted %d packets (ours), %d (numeric), %d (BPF to Lua), %d (libpcap) "
                   .. "of %d"):format(case.expr, accepted.ours, accepted.numeric, accepted.bpf,
                                      accepted.libpcap, rounds * n))
      end
      case.accepted = accepted.libpcap / rounds
      if trial > 0 then
         for _, way in ipairs(WAYS) do
            table.insert(case.mpps[way], rounds * n / seconds[way] / 1e6)
         end
         for _, way in ipairs({"ours", "numeric", "bpf"}) do
            table.insert(case.ratio[way], seconds.libpcap / seconds[way])
         end
      end
   end
end

local median = lib.median
local rows = {}
for _, case in ipairs(cases) do
   local expr = #case.expr > 40 and case.expr:sub(1, 37) .. "..." or case.expr
   rows[#rows + 1] = {
      expr, ("%d"):format(case.accepted),
      ("%.1f"):format(median(case.mpps.ours)), ("%.1f"):format(median(case.mpps.numeric)),
      ("%.1f"):format(median(case.mpps.bpf)), ("%.1f"):format(median(case.mpps.libpcap)),
      ("%.2fx"):format(median(case.ratio.ours)), ("%.2fx"):format(median(case.ratio.numeric)),
      ("%.2fx"):format(median(case.ratio.bpf)),
   }
end
io.write(lib.table_text(
   {"expression", "accepted", "ours Mpps", "numeric Mpps", "BPF->Lua Mpps", "libpcap Mpps",
    "ours/libpcap", "numeric/libpcap", "BPF->Lua/libpcap"}, rows,
   {false, true, true, true, true, true, true, true, true}))
