-- lib.lpm beside DPDK's rte_fib on the same files: the routes and addresses dpdk-test-fib wrote
-- (-w ROUTES -u IPS). Each run runs dpdk-test-fib on them (DPDK ... -f ROUTES -t IPS), which times
-- rte_fib_lookup_bulk on each batch of 64 addresses with the TSC and prints the sum over the
-- number of lookups; then lib.lpm's lookups over the same addresses, timed the same way:
-- lookup_batch on each batch of 64, and single lookups from Lua in a loop over the whole array
-- (t:lookup on host-order numbers, t:lookup_ptr on network-order bytes, as in a packet). Prints
-- each run, then the medians (TSC cycles per lookup, Mlookups/s at the TSC's rate) and the median
-- of each run's ratio to DPDK's cycles; and what adding the routes cost each. Checks that every
-- way of looking up gives the same values.
-- Usage (tools/bench-lpm runs it; it makes the files and gives DPDK its memory):
--   snabb tools/bench-lpm.lua 4|6 ROUTES IPS RUNS [DPDK-TEST-FIB COMMAND, ITS EAL OPTIONS...]
local ffi = require("ffi")
local lpm = require("lib.lpm")
local engine = require("core.engine")
local lib = require("core.lib")
require("core.cdefs")
local C = ffi.C

local args = {...}
local family, routes, ips, runs = args[1], args[2], args[3], tonumber(args[4])
if not (family == "4" or family == "6") or not ips or not runs then
   io.stderr:write("usage: snabb tools/bench-lpm.lua 4|6 ROUTES IPS RUNS [DPDK COMMAND...]\n")
   os.exit(2)
end
local dpdk = #args > 4 and table.concat(args, " ", 5) or nil
local v4 = family == "4"
local BURST = 64

local w_start, c_start = engine.now(), C.snabb_rdtsc()
-- The routes parsed first, then added, timed (as dpdk-test-fib times its rte_fib_add calls).
local t = v4 and lpm.IPv4.new() or lpm.IPv6.new()
local prefixes, lengths, nexthops = {}, {}, {}
for text in io.lines(routes) do
   local prefix, value = text:match("^(%S+) (%d+)$")
   local addr, len = t:parse_prefix(prefix)
   prefixes[#prefixes + 1] = ffi.string(addr, t.nbytes)
   lengths[#lengths + 1], nexthops[#nexthops + 1] = len, tonumber(value)
end
local nroutes = #prefixes
local c0 = C.snabb_rdtsc()
for i = 1, nroutes do
   t:add_key(ffi.cast("const uint8_t *", prefixes[i]), lengths[i], nexthops[i])
end
local add_cycles = tonumber(C.snabb_rdtsc() - c0) / nroutes
prefixes, lengths, nexthops = nil, nil, nil -- luacheck: ignore

-- The addresses, one a line as dpdk-test-fib writes them, into an array: host-order uint32 for
-- IPv4, 16 bytes each for IPv6; as many as fill whole batches (dpdk-test-fib's count too).
local f = assert(io.open(ips, "rb"))
local text = f:read("*a")
f:close()
local n = select(2, text:gsub("\n", "\n"))
n = n - n % BURST
local mem = ffi.new("uint8_t[?]", n * (v4 and 4 or 16))
local addrs4 = ffi.cast("uint32_t *", mem)
local bytes = ffi.cast("const uint8_t *", text)
local line = ffi.new("char[64]")
local pos = 0
for i = 0, n - 1 do
   if v4 then
      local a, octet = 0, 0
      while true do
         local c = bytes[pos]
         pos = pos + 1
         if c == 46 or c == 10 then -- '.' or newline
            a, octet = a * 256 + octet, 0
            if c == 10 then break end
         else
            octet = octet * 10 + c - 48
         end
      end
      addrs4[i] = a
   else
      local len = 0
      while bytes[pos + len] ~= 10 and len < 63 do
         line[len] = bytes[pos + len]
         len = len + 1
      end
      line[len] = 0
      pos = pos + len + 1
      assert(C.snabb_lpm_parse6(line, mem + 16 * i) == 1, "bad address in " .. ips)
   end
end
text, bytes = nil, nil -- luacheck: ignore
collectgarbage()
local be = ffi.new("uint32_t[?]", v4 and n or 1) -- network order, for lookup_ptr
if v4 then for i = 0, n - 1 do be[i] = bit.bswap(addrs4[i]) end end
local values = ffi.new("uint32_t[?]", n)
local check = ffi.new("uint32_t[?]", n)

-- Ours, each a pass over the array returning the TSC cycles it counted.
local ways = {
   {"lib.lpm lookup_batch, batches of 64 (C++)",
    function ()
       local acc, tt, out = 0ULL, t, values
       for i = 0, n - 1, BURST do
          local start = C.snabb_rdtsc()
          if v4 then tt:lookup_batch(addrs4 + i, out + i, BURST)
          else tt:lookup_batch(mem + 16 * i, out + i, BURST) end
          acc = acc + (C.snabb_rdtsc() - start)
       end
       return tonumber(acc)
    end},
}
if v4 then
   ways[#ways + 1] = {"lib.lpm lookup, one at a time (Lua)", function ()
      local tt, out, a = t, check, addrs4 -- locals, as in an app's loop
      local start = C.snabb_rdtsc()
      for i = 0, n - 1 do out[i] = tt:lookup(a[i]) end
      return tonumber(C.snabb_rdtsc() - start)
   end}
   ways[#ways + 1] = {"lib.lpm lookup_ptr, one at a time (Lua)", function ()
      local tt, out, a = t, check, be
      local start = C.snabb_rdtsc()
      for i = 0, n - 1 do out[i] = tt:lookup_ptr(a + i) end
      return tonumber(C.snabb_rdtsc() - start)
   end}
else
   ways[#ways + 1] = {"lib.lpm lookup_ptr, one at a time (Lua)", function ()
      local tt, out, a = t, check, mem
      local start = C.snabb_rdtsc()
      for i = 0, n - 1 do out[i] = tt:lookup_ptr(a + 16 * i) end
      return tonumber(C.snabb_rdtsc() - start)
   end}
end

-- dpdk-test-fib's "AVG FIB lookup" (TSC cycles per lookup), or nil and its output.
local function run_dpdk ()
   local p = assert(io.popen(("%s -f %s -t %s 2>&1"):format(dpdk, routes, ips)))
   local out = p:read("*a")
   p:close()
   local cycles = out:match("AVG FIB lookup ([%d.]+)")
   -- Its adds, timed in equal slices of the routes: their mean.
   local add, slices = 0, 0
   for c in out:gmatch("AVG FIB add (%d+)") do add, slices = add + tonumber(c), slices + 1 end
   return tonumber(cycles), out, slices > 0 and add / slices or nil
end

local dpdk_add = {} -- its cycles per route added, each run
local results = {} -- results[way][run] = cycles per lookup; way 0: DPDK
for w = 0, #ways do results[w] = {} end
local names = {[0] = v4 and "DPDK rte_fib DIR24_8, rte_fib_lookup_bulk of 64"
                    or "DPDK rte_fib6 TRIE, rte_fib6_lookup_bulk of 64"}
for w, way in ipairs(ways) do names[w] = way[1] end
for run = 1, runs do
   local fields = {}
   if dpdk then
      local cycles, out, add = run_dpdk()
      dpdk_add[#dpdk_add + 1] = add
      if not cycles then
         io.stderr:write("bench-lpm: dpdk-test-fib gave no lookup figure:\n", out)
         os.exit(1)
      end
      results[0][run] = cycles
      fields[#fields + 1] = ("DPDK %.1f"):format(cycles)
   end
   for w, way in ipairs(ways) do
      ffi.fill(check, n * 4)
      local cycles = way[2]() / n
      results[w][run] = cycles
      fields[#fields + 1] = ("%s %.1f"):format(way[1]:match("^lib.lpm (%S+)"):gsub(",", ""),
                                               cycles)
      if w > 1 then
         for i = 0, n - 1 do
            if check[i] ~= values[i] then
               error(("%s: %d for address %d, lookup_batch %d"):format(way[1], check[i], i,
                                                                       values[i]))
            end
         end
      end
   end
   print(("run %d, TSC cycles per lookup: %s"):format(run, table.concat(fields, ", ")))
end

local median = lib.median

local tsc_hz = tonumber(C.snabb_rdtsc() - c_start) / (engine.now() - w_start)
local rows = {}
for w = dpdk and 0 or 1, #ways do
   local cycles = median(results[w])
   local ratio = "-"
   if dpdk then
      local ratios = {}
      for run = 1, runs do ratios[run] = results[w][run] / results[0][run] end
      ratio = ("%.2f"):format(median(ratios))
   end
   rows[#rows + 1] = {names[w], ("%.1f"):format(cycles), ("%.1f"):format(tsc_hz / cycles / 1e6),
                      ratio}
end
print(("IPv%s, %d routes, %d lookups, median of %d runs (TSC %.2f GHz)"):format(
   family, nroutes, n, runs, tsc_hz / 1e9))
print(("adds: lib.lpm %.0f cycles per route (%d groups of 256 used)%s"):format(
   add_cycles, t.groups, #dpdk_add > 0 and (", DPDK %.0f (the median of its runs)"):format(
      median(dpdk_add)) or ""))
io.write(lib.table_text({"lookups", "cycles/lookup", "Mlookups/s", "cycles / DPDK's"}, rows,
                        {[2] = true, [3] = true, [4] = true}))
