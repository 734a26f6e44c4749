-- A route file for apps.router.router (lines "PREFIX NEXTHOP PORT", apps/router/README.md) of N
-- random distinct prefixes inside one prefix, for benchmarks (tools/bench-router). Lengths follow
-- the shares of a BGP table (/24 half of them, then /22, /23, /20-21, /16-19, a few longer than
-- /24 and shorter than /16); the enclosing prefix itself is the last route, so every address
-- inside it has a route. Or the routes of `dpdk-test-fib -w FILE` ("PREFIX VALUE" lines), to route
-- the same table DPDK's test measures.
-- Usage: snabb tools/gen-routes.lua N OUT [--within PREFIX] [--via "NEXTHOP PORT"] [--seed S]
--        snabb tools/gen-routes.lua --from FIB_ROUTES OUT [--via "NEXTHOP PORT"]
-- Defaults: --within 10.0.0.0/8 (IPv6: e.g. 2001:db8::/32, lengths shifted by 24 bits; /48 half),
-- --via "198.51.100.2 p1" (examples/router.lua's p1 neighbour; 2001:db8:0:2::2 for IPv6), --seed 1.
local ffi = require("ffi")
local C = ffi.C

local function usage (message)
   io.stderr:write("gen-routes: ", message, "\n",
                   "usage: snabb tools/gen-routes.lua N OUT [--within PREFIX] [--via \"NEXTHOP PORT\"] [--seed S]\n",
                   "       snabb tools/gen-routes.lua --from FIB_ROUTES OUT [--via \"NEXTHOP PORT\"]\n")
   os.exit(2)
end

local args, opts = {}, {seed = "1"}
do
   local a = {...}
   local i = 1
   while i <= #a do
      local k = a[i]:match("^%-%-(%w+)$")
      if k then
         if not (k == "within" or k == "via" or k == "seed" or k == "from") or a[i + 1] == nil then
            usage(("unknown option or missing value: %s"):format(a[i]))
         end
         opts[k], i = a[i + 1], i + 2
      else
         args[#args + 1], i = a[i], i + 1
      end
   end
end

local out, n
if opts.from then
   if #args ~= 1 then usage("--from FILE takes one more argument, OUT") end
   out = args[1]
else
   if #args ~= 2 then usage("expected N and OUT") end
   n = tonumber(args[1])
   if not n or n < 1 or n ~= math.floor(n) then usage(("N must be a whole number from 1, got '%s'"):format(args[1])) end
   out = args[2]
end
local seed = tonumber(opts.seed)
if not seed then usage(("--seed must be a number, got '%s'"):format(opts.seed)) end

local within = opts.within or "10.0.0.0/8"
local base_text, base_len = within:match("^([^/]+)/(%d+)$")
local base = ffi.new("uint8_t[16]")
local family = base_text and base_text:find(":") and 6 or 4
if not base_text or C.inet_pton(family == 4 and 2 or 10, base_text, base) ~= 1 then
   usage(("--within must be a prefix ADDR/LEN, got '%s'"):format(within))
end
base_len = tonumber(base_len)
local nbytes, bits = family == 4 and 4 or 16, family == 4 and 32 or 128
if base_len > bits then usage(("--within: the length must be 0 to %d, got %d"):format(bits, base_len)) end
local via = opts.via or (family == 4 and "198.51.100.2 p1" or "2001:db8:0:2::2 p1")
if not via:match("^%S+%s+%S+$") then usage(("--via must be \"NEXTHOP PORT\", got '%s'"):format(via)) end

local function text (addr, len)
   if family == 4 then
      return ("%d.%d.%d.%d/%d"):format(addr[0], addr[1], addr[2], addr[3], len)
   end
   local groups = {}
   for k = 0, 7 do groups[k + 1] = ("%x"):format(addr[2 * k] * 256 + addr[2 * k + 1]) end
   return table.concat(groups, ":") .. "/" .. len
end

local f = io.open(out, "w") or usage(("cannot write %s"):format(out))
local count = 0
if opts.from then
   local fib = io.open(opts.from, "r") or usage(("cannot read %s"):format(opts.from))
   local line_no = 0
   for line in fib:lines() do
      line_no = line_no + 1
      local prefix = line:match("^(%S+/%d+)%s+%d+%s*$")
      if not prefix then
         usage(("%s:%d: expected \"PREFIX VALUE\" (dpdk-test-fib -w), got '%s'"):format(opts.from, line_no, line))
      end
      f:write(prefix, " ", via, "\n")
      count = count + 1
   end
   fib:close()
else
   -- Prefix length shares (per mille) of a BGP table, for lengths counted from /8 (IPv4).
   local shares = {{8, 2}, {12, 3}, {15, 5}, {16, 10}, {17, 10}, {18, 20}, {19, 30}, {20, 45},
                   {21, 50}, {22, 190}, {23, 120}, {24, 500}, {25, 5}, {26, 4}, {28, 3}, {30, 2}, {32, 1}}
   local shift = family == 4 and 0 or 24
   local lengths = {}
   for _, s in ipairs(shares) do
      local len = s[1] + shift
      if len > base_len and len <= bits then lengths[#lengths + 1] = {len, s[2]} end
   end
   if #lengths == 0 then usage(("--within %s leaves no room for longer prefixes"):format(within)) end
   local total = 0
   for _, l in ipairs(lengths) do total = total + l[2] end
   -- Distinct prefixes can run out in a small --within: refuse rather than loop for ever.
   local room = 0
   for _, l in ipairs(lengths) do room = room + 2^(l[1] - base_len) end
   if n - 1 > room / 2 then usage(("%d routes do not fit in --within %s"):format(n, within)) end
   math.randomseed(seed)
   local seen, addr = {}, ffi.new("uint8_t[16]")
   f:write(("# %d routes inside %s via %s (snabb tools/gen-routes.lua, seed %d)\n"):format(n, within, via, seed))
   while count < n - 1 do
      local r, len = math.random() * total, nil
      for _, l in ipairs(lengths) do
         r = r - l[2]
         if r < 0 then len = l[1]; break end
      end
      len = len or lengths[#lengths][1]
      ffi.copy(addr, base, nbytes)
      for bit_no = base_len, len - 1 do
         if math.random() < 0.5 then
            local byte = math.floor(bit_no / 8)
            addr[byte] = bit.bor(addr[byte], bit.rshift(0x80, bit_no % 8))
         end
      end
      local prefix = text(addr, len)
      if not seen[prefix] then
         seen[prefix] = true
         f:write(prefix, " ", via, "\n")
         count = count + 1
      end
   end
   f:write(within, " ", via, "\n")
   count = count + 1
end
f:close()
print(("gen-routes: wrote %d routes to %s"):format(count, out))
