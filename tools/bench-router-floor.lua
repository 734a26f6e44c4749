-- The floor under the router's cost (tools/bench-router-floor): what a router app must spend per
-- packet, in steps, each a minimal app in `snabb bench`'s harness on the same capture and routes
-- as tools/bench-router, so its figures compare with forward.lua's and the router's in one run.
-- As a config:  snabb bench tools/bench-router-floor.lua --pcap 64.pcap --in floor.p0
--                 --out floor.p1 variant=V routes=FILE
-- Variants, each doing what the one before does and more (apps/router/README.md, "Speed"):
--   forward  receive, transmit (forward.lua's loop)
--   lookup   + read the IPv4 destination, look it up (lib.lpm lookup_ptr, in the loop's trace),
--            free a packet without a route (value 0)
--   batch    the same with the destinations gathered and looked up with lookup_batch (C++,
--            prefetching), then a second loop transmitting
--   mac      batch + the Ethernet addresses written from the next hop's 12 bytes
--   ttl      mac + TTL decrement, RFC 1624 incremental checksum (one 16-bit store)
--   check    ttl + ethertype, length, version, IHL, total length, unicast and TTL > 1 checks
--   cksum    check + the header checksum verified (RFC 1812 5.2.2)
--   fused    cksum in one loop with lookup_ptr per packet (no batch); fused4: check so
-- As a program: snabb tools/bench-router-floor.lua push ROUTES CAPTURE [ROUTER.lua...]: each
-- variant's push and the router's (apps.router.router, and other copies of its file for A/B),
-- called in turn on the same packets (below).
-- As a program: snabb tools/bench-router-floor.lua lookup ROUTES CAPTURE: lookup_batch alone over
-- the capture's IPv4 destinations (all of them, chunks of link.max), and lookup_ptr in a Lua loop,
-- TSC cycles per address (best and median of 50 passes).
local ffi = require("ffi")
local bit = require("bit")
local lpm = require("lib.lpm")
local link = require("core.link")
local packet = require("core.packet")
local config = require("core.config")
local C = ffi.C
local band, rshift, lshift, bswap = bit.band, bit.rshift, bit.lshift, bit.bswap
local cast = ffi.cast
local receive, transmit, nreadable = link.receive, link.transmit, link.nreadable
local free = packet.free
local u16p, u32p = ffi.typeof("uint16_t *"), ffi.typeof("uint32_t *")
local N_ETH_IPV4 = 0x0008

-- An lpm4 of the route file's IPv4 prefixes, every one to next hop 1.
local function load_routes (file)
   local t = lpm.IPv4.new{default = 0}
   for line in io.lines(file) do
      local prefix = line:gsub("#.*", ""):match("^%s*(%S+)")
      if prefix and not prefix:find(":") then t:add(prefix, 1) end
   end
   return t
end

-- The destination address of each IPv4 frame of the capture (tests/pcap_records.lua reads it).
local function capture_dsts (file)
   local dsts = {}
   for k, rec in ipairs(dofile("tests/pcap_records.lua")(file)) do
      local b1, b2, b3, b4 = rec.data:byte(31, 34)
      dsts[k] = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
   end
   return dsts
end

local main_args = {...}
if main_args[1] == "lookup" then
   local t = load_routes(main_args[2])
   local dsts = capture_dsts(main_args[3])
   local n = #dsts
   local addrs, values = ffi.new("uint32_t[?]", n), ffi.new("uint32_t[?]", n)
   for k = 1, n do addrs[k - 1] = dsts[k] end
   local chunk = link.max
   local function batch ()
      for first = 0, n - 1, chunk do
         t:lookup_batch(addrs + first, values + first, math.min(chunk, n - first))
      end
   end
   local tbl24, tbl8 = t.tbl24, t.tbl8
   local sum = 0
   local function single ()
      local s = 0
      for k = 0, n - 1 do
         local addr = addrs[k]
         local e = tbl24[rshift(addr, 8)]
         local m = bit.arshift(e, 31)
         local x = tbl8[band(m, band(e, 0x7fffffff) + band(addr, 255))]
         s = s + bit.bxor(e, band(m, bit.bxor(e, x)))
      end
      sum = sum + s
   end
   for _, case in ipairs({{"lookup_batch", batch}, {"lookup_ptr in a Lua loop", single}}) do
      local per = {}
      for pass = 1, 50 do
         local t0 = C.snabb_rdtsc()
         case[2]()
         per[pass] = tonumber(C.snabb_rdtsc() - t0) / n
      end
      table.sort(per)
      print(("%s, %d addresses: best %.1f, median %.1f TSC cycles/address")
            :format(case[1], n, per[1], per[25]))
   end
   assert(values[0] ~= 0 and sum > 0, "routes must cover the capture")
   return
end

local args = {variant = "cksum"}
for _, a in ipairs(main_args) do
   local k, v = tostring(a):match("^(%w+)=(.*)$")
   if k then args[k] = v end
end

-- The next hop's Ethernet addresses (dst, src), as the router writes them.
local macs = ffi.new("uint8_t[2][12]")
ffi.copy(macs[1], "\x02\x00\x00\x00\x02\x02\x02\x00\x00\x00\x00\x02", 12)

local function sum20 (w)
   local s = w[0] + w[1] + w[2] + w[3] + w[4] + w[5] + w[6] + w[7] + w[8] + w[9]
   s = band(s, 0xffff) + rshift(s, 16)
   return band(s, 0xffff) + rshift(s, 16)
end

-- How much of the work a variant does: 2 the MACs, 3 TTL, 4 the checks, 5 the checksum.
local levels = {forward = 0, lookup = 1, batch = 1, mac = 2, ttl = 3, check = 4, cksum = 5,
                fused4 = 4, fused = 5}
local variants = {"forward", "lookup", "batch", "mac", "ttl", "check", "cksum", "fused4", "fused"}

-- An app class doing `variant`'s work (its own closures: each variant compiles its own traces).
local function floor_class (variant, t)
   local level = levels[variant]
   assert(level, "variant=" .. table.concat(variants, "|"))
   -- Pass 1 of the batch variants: true when the packet goes on (TTL decremented), else it was
   -- freed and counted.
   local function first_pass (p, drops)
      local d, len = p.data, p.length
      local w = cast(u16p, d + 14)
      if level >= 4 then
         local reason
         if len < 34 or cast(u16p, d + 12)[0] ~= N_ETH_IPV4 then
            reason = 0
         else
            local vihl = d[14]
            local ihl4 = lshift(band(vihl, 15), 2)
            local tlen = rshift(bswap(w[1]), 16)
            if band(vihl, 0xf0) ~= 0x40 or ihl4 < 20 or tlen < ihl4 then reason = 1
            elseif 14 + tlen > len then reason = 2
            elseif ihl4 > 20 then reason = 3 -- options: the router's slow path
            elseif level >= 5 and sum20(w) ~= 0xffff then reason = 4
            elseif d[30] >= 224 then reason = 5
            elseif d[22] <= 1 then reason = 6
            end
         end
         if reason then
            drops[reason] = drops[reason] + 1
            free(p)
            return false
         end
      end
      if level >= 3 then
         w[4] = w[4] - 1
         local hc = w[5]
         w[5] = band(hc + 1 + rshift(hc + 2, 16), 0xffff) -- (apps.router's RFC 1624 update)
      end
      return true
   end
   local Floor = {}
   function Floor:new ()
      local o = setmetatable({}, {__index = Floor})
      o.t = t or load_routes(assert(args.routes, "routes=FILE"))
      o.batch = ffi.new("struct packet *[?]", link.max)
      o.addrs, o.values = ffi.new("uint32_t[?]", link.max), ffi.new("uint32_t[?]", link.max)
      o.drops = ffi.new("uint64_t[8]")
      return o
   end
   function Floor:push ()
      local i, o = self.input.p0, self.output.p1
      if variant == "forward" then
         for _ = 1, nreadable(i) do transmit(o, receive(i)) end
      elseif variant == "lookup" or variant == "fused" or variant == "fused4" then
         local tbl24, tbl8, drops = self.t.tbl24, self.t.tbl8, self.drops
         for _ = 1, nreadable(i) do
            local p = receive(i)
            if first_pass(p, drops) then
               local addr = bswap(cast(u32p, p.data + 30)[0])
               local e = tbl24[rshift(addr, 8)]
               local m = bit.arshift(e, 31)
               local x = tbl8[band(m, band(e, 0x7fffffff) + band(addr, 255))]
               local nh = bit.bxor(e, band(m, bit.bxor(e, x)))
               if nh ~= 0 then
                  if level >= 2 then ffi.copy(p.data, macs[nh], 12) end
                  transmit(o, p)
               else
                  drops[7] = drops[7] + 1
                  free(p)
               end
            end
         end
      else
         local batch, addrs, values, drops = self.batch, self.addrs, self.values, self.drops
         local n = 0
         for _ = 1, nreadable(i) do
            local p = receive(i)
            if first_pass(p, drops) then
               batch[n], addrs[n] = p, bswap(cast(u32p, p.data + 30)[0])
               n = n + 1
            end
         end
         self.t:lookup_batch(addrs, values, n)
         for k = 0, n - 1 do
            local p, nh = batch[k], values[k]
            if nh ~= 0 then
               if level >= 2 then ffi.copy(p.data, macs[nh], 12) end
               transmit(o, p)
            else
               drops[7] = drops[7] + 1
               free(p)
            end
         end
      end
   end
   return Floor
end

-- Each app's push alone, its input refilled between calls with the capture's next records (so
-- each call looks up other destinations, the packets in cache as Replay leaves them): the apps
-- take turns call by call, so a loaded machine slows all alike; best and median per packet.
-- PER_CALL (512), ROUNDS (3000) and VARIANTS (a comma-separated list) from the environment;
-- FIXED=1: each app's window stays the same (packets and table entries in cache: compute alone).
-- (Called as loadfile(this file)("class"): floor_class of a fresh copy of this chunk, so that
-- each variant's loops are their own bytecode, with their own traces.)
if main_args[1] == "class" then return floor_class end
if main_args[1] == "push" then
   local here = debug.getinfo(1, "S").source:sub(2)
   local shm = require("core.shm")
   local lib = require("core.lib")
   local routes, capture = main_args[2], main_args[3]
   local per_call = tonumber(os.getenv("PER_CALL") or 512)
   local t = load_routes(routes)
   local records = {}
   for k, rec in ipairs(dofile("tests/pcap_records.lua")(capture)) do records[k] = rec.data end
   local apps = {}
   local only = os.getenv("VARIANTS") -- e.g. VARIANTS=cksum (routers always run)
   for _, v in ipairs(only and {only:match(("([^,]*),?"):rep(select(2, only:gsub(",", "")) + 1))}
                      or variants) do
      local a = assert(loadfile(here))("class")(v, t):new()
      apps[#apps + 1] = {v, a}
   end
   local function add_router (name, module, verify)
      local r = module.Router:new(lib.parse({
         ports = {p0 = "02:00:00:00:00:01", p1 = "02:00:00:00:00:02"}, routes = routes,
         neighbours = {["198.51.100.2"] = "02:00:00:00:02:02"}, verify_checksum = verify},
         module.Router.config))
      r.shm = shm.create_frame("apps/bench_router_floor_" .. name, r.shm)
      -- The one table of all the apps (the routes' one next hop is 1 in both): a window's table
      -- entries were last read ~#records lookups before, by whichever app, as in snabb bench.
      r.lpm4 = t
      apps[#apps + 1] = {name, r}
   end
   local router = require("apps.router.router")
   add_router("router", router)
   if router.Router.config.verify_checksum then
      -- A second copy of the module, for traces of its own (its C struct names renamed).
      -- (Run from the source tree, where apps/router/router.lua is the module's file.)
      local file = debug.getinfo(router.Router.new, "S").source:sub(2)
      local src = io.open(file)
      if src then
         local source = src:read("*a"):gsub("router_ipv", "router_nv_ipv")
         src:close()
         add_router("router_noverify", assert(loadstring(source, "@" .. file))(), false)
      end
   end
   for k = 4, #main_args do -- other versions of apps/router/router.lua, named by their file
      add_router(main_args[k]:match("([^/]*)%.lua$"), assert(loadfile(main_args[k]))())
   end
   for _, a in ipairs(apps) do
      a[2].input, a[2].output = {p0 = link.new("in")}, {p1 = link.new("out")}
      if a[2].link then a[2]:link() end
      a.per = {}
   end
   local packets = {}
   for k = 1, per_call do packets[k] = packet.allocate() end
   local rounds, pos = tonumber(os.getenv("ROUNDS") or 3000), 0
   -- Each app reads its own window of the capture, as far from the others' as can be: one app's
   -- lookups must not bring another's table entries into cache (in the first version of this
   -- program the apps took the same packets in turn, and all but the first found them cached).
   local stride = math.floor(#records / #apps / per_call) * per_call
   for round = 1, rounds do
      for index, a in ipairs(apps) do
         local app, i, o = a[2], a[2].input.p0, a[2].output.p1
         local first = pos + (index - 1) * stride
         for k = 1, per_call do
            local r, p = records[(first + k - 1) % #records + 1], packets[k]
            ffi.copy(p.data, r, #r)
            p.length = #r
            transmit(i, p)
         end
         local t0 = C.snabb_rdtsc()
         app:push()
         local t1 = C.snabb_rdtsc()
         local n = nreadable(o)
         assert(n == per_call, ("%s: %d of %d packets forwarded"):format(a[1], n, per_call))
         for k = 1, n do packets[k] = receive(o) end
         a.per[round] = tonumber(t1 - t0) / n
      end
      if not os.getenv("FIXED") then pos = (pos + per_call) % #records end
   end
   local rows = {}
   for _, a in ipairs(apps) do
      table.sort(a.per)
      rows[#rows + 1] = {a[1], ("%.1f"):format(a.per[1]), ("%.1f"):format(a.per[math.floor(rounds / 2)])}
   end
   print(("push alone, %d packets a call, %d calls each, turn about:"):format(per_call, rounds))
   print(lib.table_text({"app", "best", "median cycles/packet"}, rows, {false, true, true}))
   for _, a in ipairs(apps) do if a[2].shm then shm.delete_frame(a[2].shm) end end
   return
end

local c = config.new()
config.app(c, "floor", floor_class(args.variant))
return c
