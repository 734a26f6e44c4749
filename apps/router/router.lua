-- apps.router.router: an IPv4 and IPv6 router between named ports. One app handles both families,
-- chosen by each frame's ethertype (0x0800, 0x86dd), so a port carries both and one route file
-- holds both (Router4 and Router6 are the same class under the names of a single-family router).
-- Per packet: checks the IP header (never reading past p.length), looks the destination up in
-- lib.lpm, decrements TTL / hop limit (IPv4: RFC 1624 incremental checksum), rewrites the
-- Ethernet header (src = the output port's MAC, dst = the next hop's) and sends it out of the
-- next hop's port. TTL / hop limit <= 1 is answered with ICMP time exceeded out of the input port.
-- Every packet is counted once: forwarded on its port or dropped for one reason (apps/router/README.md).
local ffi = require("ffi")
local bit = require("bit")
local lib = require("core.lib")
local link = require("core.link")
local packet = require("core.packet")
local counter = require("core.counter")
local lpm = require("lib.lpm")
local checksum = require("lib.checksum")
local ethernet = require("lib.protocol.ethernet")

local C = ffi.C
local band, rshift, lshift, bswap, bnot, tobit =
   bit.band, bit.rshift, bit.lshift, bit.bswap, bit.bnot, bit.tobit
local cast = ffi.cast
local htons, ntohs = lib.htons, lib.ntohs
local receive, transmit, nreadable = link.receive, link.transmit, link.nreadable
local free = packet.free
local min = math.min

local M = {}

local ETH_LEN, IPV4_MIN, IPV6_LEN = 14, 20, 40
local ETHERTYPE_IPV4, ETHERTYPE_IPV6 = 0x0800, 0x86dd
local IPV6_MIN_MTU = 1280

ffi.cdef[[
struct router_ipv4 {
   uint8_t ver_ihl, tos; uint16_t total_length, id, frag; uint8_t ttl, protocol;
   uint16_t checksum; uint8_t src[4], dst[4];
} __attribute__((packed));
struct router_ipv6 {
   uint32_t vtc_flow; uint16_t payload_length; uint8_t next_header, hop_limit;
   uint8_t src[16], dst[16];
} __attribute__((packed));
]]
local ipv4_ptr = ffi.typeof("struct router_ipv4 *")
local ipv6_ptr = ffi.typeof("struct router_ipv6 *")
local u16_ptr = ffi.typeof("uint16_t *")
local u8_ptr = ffi.typeof("uint8_t *")
local u32_ptr = ffi.typeof("uint32_t *")
local u64_ptr = ffi.typeof("uint64_t *")
local i32_ptr = ffi.typeof("int32_t *")
-- A next hop's Ethernet addresses as they are written over a frame's: dst, then src.
local macs_t = ffi.typeof("struct { uint8_t dst[6], src[6]; } [?]")
local N_ETH_IPV4, N_ETH_IPV6 = htons(ETHERTYPE_IPV4), htons(ETHERTYPE_IPV6)

-- Drop reasons: counter names, in the order of the stats array after the per-next-hop counts.
local reasons = {"not_ip", "truncated", "malformed", "bad_checksum", "not_unicast", "ttl_expired",
                 "no_route", "no_link"}
local R = {}
for k, name in ipairs(reasons) do R[name] = k - 1 end
M.drop_reasons = reasons

-- Parsing of config values, each error one line in the user's terms.
local function parse_mac (s, what)
   local ok, mac = pcall(ethernet.pton, ethernet, s)
   if not ok then error(("%s: '%s' is not a MAC address (like 02:00:00:00:00:01)"):format(what, tostring(s)), 0) end
   return mac
end

local function parse_ip (s, what)
   s = tostring(s)
   local family = s:find(":") and 10 or 2
   local buf = ffi.new("uint8_t[16]")
   if C.inet_pton(family, s, buf) ~= 1 then
      error(("%s: '%s' is not an IPv4 or IPv6 address"):format(what, s), 0)
   end
   return buf, family == 2 and 4 or 6
end

-- Reads lines of a file (name) or a list of strings; calls fn(fields) for each line that is not
-- blank or a # comment; errors raised by fn are prefixed with the file's name (or `what`) and line.
local function each_line (source, what, fn)
   local lines, name = source, what
   if type(source) ~= "table" then
      lines = {}
      local f, err = io.open(source, "r")
      if not f then error(("%s: cannot read %s"):format(what, err), 0) end
      for line in f:lines() do lines[#lines + 1] = line end
      f:close()
      name = source
   end
   for n, line in ipairs(lines) do
      line = tostring(line):gsub("#.*", "")
      local fields = {}
      for w in line:gmatch("%S+") do fields[#fields + 1] = w end
      if #fields > 0 then
         local ok, err = pcall(fn, fields)
         if not ok then
            local message = lib.error_message(err):gsub("^[^:]*:%d+: ", ""):gsub("^lib%.lpm: ", "")
            error(("%s:%d: %s"):format(name, n, message), 0)
         end
      end
   end
end

local Router = {
   config = {
      ports = {required = true, type = "table",
               allows = "a table of ports, NAME = {mac = \"02:...\", ip = \"192.0.2.1\", ip6 = \"2001:db8::1\"}"},
      routes = {required = true,
                check = function (v) return (type(v) == "string" or type(v) == "table") and v or nil end,
                allows = "a route file's name or a list of lines \"PREFIX NEXTHOP PORT\""},
      neighbours = {default = {},
                    check = function (v) return (type(v) == "string" or type(v) == "table") and v or nil end,
                    allows = "a neighbour file's name (lines \"IP MAC\") or a table {IP = MAC}"},
      icmp = {default = true, type = "boolean"},
      verify_checksum = {default = true, type = "boolean"},
   },
}
M.Router, M.Router4, M.Router6 = Router, Router, Router

function Router:new (conf)
   local o = setmetatable({}, {__index = Router})
   -- Ports, sorted by name: index 0..n-1.
   local names = {}
   for name in pairs(conf.ports) do
      if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
         error(("parameter 'ports': port name %s must be an identifier"):format(lib.describe(name)), 0)
      end
      names[#names + 1] = name
   end
   if #names == 0 then error("parameter 'ports': no ports", 0) end
   table.sort(names)
   o.port_names, o.port_index = names, {}
   o.port_mac, o.port_ip4, o.port_ip6 = {}, {}, {}
   for k, name in ipairs(names) do
      local p = conf.ports[name]
      if type(p) == "string" then p = {mac = p} end
      if type(p) ~= "table" or p.mac == nil then
         error(("parameter 'ports': port '%s' needs its mac (and optionally ip, ip6)"):format(name), 0)
      end
      for key in pairs(p) do
         if key ~= "mac" and key ~= "ip" and key ~= "ip6" then
            error(("parameter 'ports': port '%s': unknown key '%s' (known: ip, ip6, mac)")
                  :format(name, tostring(key)), 0)
         end
      end
      o.port_index[name] = k - 1
      o.port_mac[k - 1] = parse_mac(p.mac, ("port '%s' mac"):format(name))
      if p.ip then
         local a, fam = parse_ip(p.ip, ("port '%s' ip"):format(name))
         if fam ~= 4 then error(("port '%s' ip: '%s' is not an IPv4 address"):format(name, p.ip), 0) end
         o.port_ip4[k - 1] = a
      end
      if p.ip6 then
         local a, fam = parse_ip(p.ip6, ("port '%s' ip6"):format(name))
         if fam ~= 6 then error(("port '%s' ip6: '%s' is not an IPv6 address"):format(name, p.ip6), 0) end
         o.port_ip6[k - 1] = a
      end
   end
   -- Neighbours: next-hop IP (as inet_pton's bytes) -> MAC.
   local neighbours = {}
   local function add_neighbour (ip, mac)
      local a, fam = parse_ip(ip, "neighbour")
      neighbours[ffi.string(a, fam == 4 and 4 or 16)] = parse_mac(mac, ("neighbour %s"):format(ip))
   end
   if type(conf.neighbours) == "string" then
      each_line(conf.neighbours, "neighbours", function (f)
         if #f ~= 2 then error(("expected \"IP MAC\", got %d fields"):format(#f), 0) end
         add_neighbour(f[1], f[2])
      end)
   else
      for ip, mac in pairs(conf.neighbours) do add_neighbour(ip, mac) end
   end
   -- Routes: next hops numbered from 1 (0 is lib.lpm's default: no route).
   o.lpm4, o.lpm6 = lpm.IPv4.new{default = 0}, lpm.IPv6.new{default = 0}
   local nexthop_of, nh_port, unresolved = {}, {}, {}
   local macs = {}
   o.routes4, o.routes6 = 0, 0
   each_line(conf.routes, "routes", function (f)
      if #f ~= 3 then error(("expected \"PREFIX NEXTHOP PORT\", got %d fields"):format(#f), 0) end
      local prefix, via, port = f[1], f[2], f[3]
      local pi = o.port_index[port]
      if not pi then error(("no port '%s' (ports: %s)"):format(port, table.concat(names, ", ")), 0) end
      local a, fam = parse_ip(via, "next hop")
      local pfam = prefix:find(":") and 6 or 4
      if fam ~= pfam then
         error(("next hop %s is IPv%d, prefix %s is IPv%d"):format(via, fam, prefix, pfam), 0)
      end
      local key = ffi.string(a, fam == 4 and 4 or 16) .. port
      local nh = nexthop_of[key]
      if not nh then
         nh = #nh_port + 1
         nexthop_of[key], nh_port[nh] = nh, pi
         local dst = neighbours[ffi.string(a, fam == 4 and 4 or 16)]
         if not dst then unresolved[#unresolved + 1] = ("%s on port %s"):format(via, port) end
         macs[nh] = {dst, o.port_mac[pi]}
      end
      if pfam == 4 then o.lpm4:add(prefix, nh); o.routes4 = o.routes4 + 1
      else o.lpm6:add(prefix, nh); o.routes6 = o.routes6 + 1 end
   end)
   o.unresolved = unresolved
   if #unresolved > 0 then
      io.stderr:write(("router: next hops without a neighbour entry leave with destination MAC "
                       .. "00:00:00:00:00:00, for an ARP/ND app to fill in: %s\n")
                      :format(table.concat(unresolved, ", ")))
   end
   -- Per next hop (1..n): 12 bytes to write over the Ethernet addresses (dst then src; dst zero
   -- for a next hop without a neighbour entry, left to an ARP/ND app downstream), its port.
   local n = #nh_port
   o.nnexthops = n
   o.nh_macs = macs_t(n + 1)
   o.nh_port = nh_port
   o.port_nhs = {}
   for k = 1, #names do o.port_nhs[k - 1] = {} end
   for nh = 1, n do table.insert(o.port_nhs[nh_port[nh]], nh) end
   for nh = 1, n do
      if macs[nh][1] then ffi.copy(o.nh_macs[nh].dst, macs[nh][1], 6) end
      ffi.copy(o.nh_macs[nh].src, macs[nh][2], 6)
   end
   -- Counts: [0, #reasons) drops by reason, then forwarded per next hop (#reasons + nh), then
   -- ICMP sent per port (#reasons + n + 1 + port). Copied to the shm counters after each push.
   o.nreasons = #reasons
   o.icmp_base = #reasons + n + 1
   o.stats = ffi.new("uint64_t[?]", o.icmp_base + #names)
   o.forwarded = o.stats + #reasons -- forwarded[nh]
   o.icmp = conf.icmp
   o.verify_checksum = conf.verify_checksum
   o.shm = {}
   for _, r in ipairs(reasons) do o.shm["drop_" .. r] = {counter} end
   for _, name in ipairs(names) do
      o.shm["forwarded_" .. name] = {counter}
      o.shm["icmp_" .. name] = {counter}
   end
   -- The batches of push(): packets and their destinations, at most a link's worth.
   o.batch4, o.batch6 = ffi.new("struct packet *[?]", link.max), ffi.new("struct packet *[?]", link.max)
   o.addrs4, o.values = ffi.new("uint32_t[?]", link.max), ffi.new("uint32_t[?]", link.max)
   o.addrs6 = ffi.new("uint8_t[?]", 16 * link.max)
   o.outs = {[0] = false}  -- next hop -> output link (link())
   o.in_out = {} -- port index -> output link, for ICMP
   o.inputs = {} -- {link, port index}, filled by link()
   return o
end

function Router:link ()
   for nh = 1, self.nnexthops do
      self.outs[nh] = self.output[self.port_names[self.nh_port[nh] + 1]] or false
   end
   local inputs = {}
   for k, name in ipairs(self.port_names) do
      self.in_out[k - 1] = self.output[name] or false
      if self.input[name] then inputs[#inputs + 1] = {self.input[name], k - 1} end
   end
   for name in pairs(self.input) do
      if type(name) == "string" and not self.port_index[name] then
         error(("input link '%s' names no port (ports: %s)"):format(name, table.concat(self.port_names, ", ")), 0)
      end
   end
   for name in pairs(self.output) do
      if type(name) == "string" and not self.port_index[name] then
         error(("output link '%s' names no port (ports: %s)"):format(name, table.concat(self.port_names, ", ")), 0)
      end
   end
   self.inputs = inputs
end

-- The ones' complement sum of an IPv4 header (ihl4 bytes at w), folded to 16 bits: 0xffff when
-- its checksum is right. The 20 bytes of a header without options are summed unrolled: a loop
-- here made the JIT compile it as its own trace, the packet loop a side trace of it, with every
-- pointer boxed between them (1,900 cycles a packet, 62% of them in the GC).
local function options_sum (w, ihl4)
   local s = 0
   for k = 10, ihl4 / 2 - 1 do s = s + w[k] end
   return s
end

local function header_sum (w, ihl4)
   local s = w[0] + w[1] + w[2] + w[3] + w[4] + w[5] + w[6] + w[7] + w[8] + w[9]
   if ihl4 > IPV4_MIN then s = s + options_sum(w, ihl4) end
   s = band(s, 0xffff) + rshift(s, 16)
   return band(s, 0xffff) + rshift(s, 16)
end

-- The same for a header without options, in the packet loop (tobit: 32-bit adds without the
-- JIT's overflow checks, which they do not need; in two halves, whose words are loaded apart:
-- ten loads before the first add had the loop spill four more values to the stack).
local function sum20 (w)
   local s = tobit(w[0] + w[1] + w[2] + w[3] + w[4]) + tobit(w[5] + w[6] + w[7] + w[8] + w[9])
   s = band(s, 0xffff) + rshift(s, 16)
   return band(s, 0xffff) + rshift(s, 16)
end

-- The drop reason of an IPv4 packet (header at ip, len bytes of frame) that is not the common
-- case (version 4 without options, lengths right), or nil when it is well formed (options).
local function check4 (ip, len, verify)
   if len < ETH_LEN + IPV4_MIN then return R.truncated end
   local vihl = ip.ver_ihl
   local ihl4 = lshift(band(vihl, 15), 2) -- (* 4 would be a floating-point multiply)
   local tlen = ntohs(ip.total_length)
   if band(vihl, 0xf0) ~= 0x40 or ihl4 < IPV4_MIN or tlen < ihl4 then return R.malformed end
   if ETH_LEN + tlen > len then return R.truncated end
   if verify and header_sum(cast(u16_ptr, ip), ihl4) ~= 0xffff then return R.bad_checksum end
   return nil
end

-- ICMPv4 time exceeded (type 11, code 0) for the IPv4 packet p (header at ip, ihl4 bytes of
-- header, tlen its total length), from port `port`'s address, out of that port. RFC 1812 4.3.2.7:
-- none for an ICMP error, a fragment other than the first, a source that is no single host.
local function time_exceeded4 (self, p, ip, ihl4, tlen, port)
   local out, src = self.in_out[port], self.port_ip4[port]
   if not (self.icmp and out and src) then return end
   if band(ntohs(ip.frag), 0x1fff) ~= 0 then return end
   local s0 = ip.src[0]
   if s0 == 0 or s0 == 127 or s0 >= 224 then return end
   if ip.protocol == 1 and tlen > ihl4 then
      local t = ffi.cast(u8_ptr, ip)[ihl4]
      if t == 3 or t == 4 or t == 5 or t == 11 or t == 12 then return end
   end
   local n = min(ihl4 + 8, tlen)
   local q = packet.allocate()
   local d = q.data
   ffi.copy(d, p.data + 6, 6)                   -- back to the sender's MAC
   ffi.copy(d + 6, self.port_mac[port], 6)
   ffi.cast(u16_ptr, d + 12)[0] = N_ETH_IPV4
   local h = ffi.cast(ipv4_ptr, d + ETH_LEN)
   h.ver_ihl, h.tos, h.total_length, h.id, h.frag = 0x45, 0, htons(IPV4_MIN + 8 + n), 0, 0
   h.ttl, h.protocol, h.checksum = 64, 1, 0
   ffi.copy(h.src, src, 4)
   ffi.copy(h.dst, ip.src, 4)
   local icmp = d + ETH_LEN + IPV4_MIN
   ffi.fill(icmp, 8)
   icmp[0] = 11
   ffi.copy(icmp + 8, ip, n)
   checksum.l4_ipv4(h, IPV4_MIN + 8 + n)
   checksum.ipv4_header(h)
   q.length = ETH_LEN + IPV4_MIN + 8 + n
   transmit(out, q)
   self.stats[self.icmp_base + port] = self.stats[self.icmp_base + port] + 1
end

-- ICMPv6 time exceeded (type 3, code 0) for the IPv6 packet p (header at ip, plen its payload
-- length): as much of it as fits a 1280-byte packet (RFC 4443 2.4, 3.3); none for an ICMPv6 error
-- directly after the header or a source that is unspecified or multicast.
local function time_exceeded6 (self, p, ip, plen, port)
   local out, src = self.in_out[port], self.port_ip6[port]
   if not (self.icmp and out and src) then return end
   if ip.src[0] == 0xff then return end
   local unspecified = true
   for k = 0, 15 do if ip.src[k] ~= 0 then unspecified = false end end
   if unspecified then return end
   if ip.next_header == 58 and plen > 0 and ffi.cast(u8_ptr, ip)[IPV6_LEN] < 128 then return end
   local n = min(IPV6_LEN + plen, IPV6_MIN_MTU - IPV6_LEN - 8)
   local q = packet.allocate()
   local d = q.data
   ffi.copy(d, p.data + 6, 6)
   ffi.copy(d + 6, self.port_mac[port], 6)
   ffi.cast(u16_ptr, d + 12)[0] = N_ETH_IPV6
   local h = ffi.cast(ipv6_ptr, d + ETH_LEN)
   h.vtc_flow, h.payload_length, h.next_header, h.hop_limit = lib.htonl(0x60000000), htons(8 + n), 58, 255
   ffi.copy(h.src, src, 16)
   ffi.copy(h.dst, ip.src, 16)
   local icmp = d + ETH_LEN + IPV6_LEN
   ffi.fill(icmp, 8)
   icmp[0] = 3
   ffi.copy(icmp + 8, ip, n)
   checksum.l4_ipv6(h, IPV6_LEN + 8 + n)
   q.length = ETH_LEN + IPV6_LEN + 8 + n
   transmit(out, q)
   self.stats[self.icmp_base + port] = self.stats[self.icmp_base + port] + 1
end

-- The hot path, in two passes over what an input link holds (as DPDK's l3fwd and VPP do): the
-- first checks each packet, drops or answers what cannot be forwarded, decrements TTL / hop limit
-- and gathers the destinations; lib.lpm's lookup_batch looks them all up at once (C++ that
-- prefetches the table entries of later packets while it resolves earlier ones); the second
-- rewrites Ethernet and transmits. One lookup_ptr per packet in one loop cost twice the cycles
-- with 100,000 routes as with one (a cache miss per packet). Each packet ends in exactly one
-- place: forwarded (forwarded[nh]) or freed with one reason (stats[R.reason]).
local function forward (batch, values, n, stats, forwarded, outs, macs)
   -- values < 2^31: int32_t loads are integers, where uint32_t loads are doubles; and each is
   -- compared with values[k], an integer, not nh (a double: 5 instructions a packet, not 2).
   values = cast(i32_ptr, values)
   local k = 0
   while k < n do
      -- A run of packets to one next hop (all of them, when every destination takes one route):
      -- its link and MACs stay in registers, its count is added once. Transmitting to outs[nh]
      -- and adding to forwarded[nh] packet by packet made each packet load what the one before
      -- had just stored (the link's cursor, the count); so did ffi.copy for the MACs (a barrier
      -- to the JIT's forwarding of the cursor): two stores instead.
      local nh = values[k]
      local o = outs[nh]
      local m = n
      if nh ~= 0 and o then
         local a, b = cast(u64_ptr, macs + nh)[0], cast(u32_ptr, macs + nh)[2]
         for j = k, n - 1 do
            if values[j] ~= values[k] then m = j; break end
            local p = batch[j]
            local d = p.data
            cast(u64_ptr, d)[0] = a
            cast(u32_ptr, d)[2] = b
            transmit(o, p)
         end
         forwarded[nh] = forwarded[nh] + (m - k)
      else
         local reason = nh == 0 and R.no_route or R.no_link
         for j = k, n - 1 do
            if values[j] ~= values[k] then m = j; break end
            free(batch[j])
         end
         stats[reason] = stats[reason] + (m - k)
      end
      k = m
   end
end

function Router:push ()
   local stats, forwarded, outs, macs = self.stats, self.forwarded, self.outs, self.nh_macs
   local batch4, addrs4, values = self.batch4, self.addrs4, self.values
   local batch6, addrs6 = self.batch6, self.addrs6
   local verify = self.verify_checksum
   for _, input in ipairs(self.inputs) do
      local i, port = input[1], input[2]
      local n4, n6 = 0, 0
      for _ = 1, nreadable(i) do
         local p = receive(i)
         local len, d = p.length, p.data
         local reason
         local et = len >= ETH_LEN and cast(u16_ptr, d + 12)[0] or 0
         if et == N_ETH_IPV4 then
            local ip = cast(ipv4_ptr, d + ETH_LEN)
            local w = cast(u16_ptr, ip)
            -- The common case in three tests, the rest apart (check4): version 4 without options
            -- (0x45), the total length at least the header and within the frame.
            local tlen = len >= ETH_LEN + IPV4_MIN and ntohs(ip.total_length) or 0
            if ip.ver_ihl == 0x45 and tlen >= IPV4_MIN and ETH_LEN + tlen <= len then
               if verify and sum20(w) ~= 0xffff then reason = R.bad_checksum end
            else
               reason = check4(ip, len, verify)
            end
            if reason then -- luacheck: ignore 542 (dropped below)
            elseif ip.dst[0] >= 224 then -- multicast, class E, broadcast: not routed here
               reason = R.not_unicast
            elseif ip.ttl <= 1 then
               reason = R.ttl_expired
               time_exceeded4(self, p, ip, lshift(band(ip.ver_ihl, 15), 2), ntohs(ip.total_length), port)
            else
               -- RFC 1624 on the 16-bit word holding TTL and protocol as it lies in memory
               -- (ones' complement sums commute with byte swaps): no byte swapping. TTL is
               -- its low byte (x86-64 is little-endian) and at least 2: the word less one.
               -- Written as one 16-bit store, never read back: storing the TTL byte and then
               -- loading the word stalled store forwarding, 31.7 against 24.1 cycles/packet.
               -- With m' = m - 1, RFC 1624's ~m + m' is the constant 0xfffe: HC' = ~(~HC +
               -- 0xfffe), which is HC + 1 but for HC = 0xfffe (-> 0, where "+ 1" gives 0xffff,
               -- which no sum afresh gives) and 0xffff (-> 1): HC + 1 + (HC + 2 >= 0x10000), the
               -- same for all 65,536 HC in half the instructions (lib.checksum.incremental16).
               w[4] = w[4] - 1
               local hc = w[5]
               w[5] = band(hc + 1 + rshift(hc + 2, 16), 0xffff)
               batch4[n4], addrs4[n4] = p, bswap(cast(u32_ptr, ip.dst)[0])
               n4 = tobit(n4 + 1) -- (an integer: n4 + 1 alone is a double)
            end
         elseif et == N_ETH_IPV6 then
            local ip = cast(ipv6_ptr, d + ETH_LEN)
            if len < ETH_LEN + IPV6_LEN then
               reason = R.truncated
            elseif band(cast(u8_ptr, ip)[0], 0xf0) ~= 0x60 then
               reason = R.malformed
            else
               local plen = ntohs(ip.payload_length)
               if ETH_LEN + IPV6_LEN + plen > len then
                  reason = R.truncated
               elseif ip.dst[0] == 0xff then -- multicast (ff02::1:ffXX:XXXX of ND too)
                  reason = R.not_unicast
               else
                  local hl = ip.hop_limit
                  if hl <= 1 then
                     reason = R.ttl_expired
                     time_exceeded6(self, p, ip, plen, port)
                  else
                     ip.hop_limit = hl - 1
                     batch6[n6] = p
                     ffi.copy(addrs6 + lshift(n6, 4), ip.dst, 16)
                     n6 = tobit(n6 + 1)
                  end
               end
            end
         elseif len < ETH_LEN then
            reason = R.truncated
         else
            reason = R.not_ip
         end
         if reason then
            stats[reason] = stats[reason] + 1
            free(p)
         end
      end
      if n4 > 0 then
         self.lpm4:lookup_batch(addrs4, values, n4)
         forward(batch4, values, n4, stats, forwarded, outs, macs)
      end
      if n6 > 0 then
         self.lpm6:lookup_batch(addrs6, values, n6)
         forward(batch6, values, n6, stats, forwarded, outs, macs)
      end
   end
end

-- Copies the counts to the shm counters: tick_Hz times a second (1000, as often as core.counter
-- commits them to their files), at stop and in counts(); nothing per packet.
function Router:sync_counters ()
   local stats, shm = self.stats, self.shm
   for k, r in ipairs(reasons) do counter.set(shm["drop_" .. r], stats[k - 1]) end
   for k, name in ipairs(self.port_names) do
      local sum = 0ULL
      for _, nh in ipairs(self.port_nhs[k - 1]) do sum = sum + stats[self.nreasons + nh] end
      counter.set(shm["forwarded_" .. name], sum)
      counter.set(shm["icmp_" .. name], stats[self.icmp_base + k - 1])
   end
end
Router.tick = Router.sync_counters
Router.stop = Router.sync_counters

-- A table of the counts by name (drop_*, forwarded_PORT, icmp_PORT), as numbers.
function Router:counts ()
   self:sync_counters()
   local t = {}
   for name, c in pairs(self.shm) do
      if type(c) == "cdata" and name ~= "dtime" then t[name] = tonumber(counter.read(c)) end
   end
   return t
end

function Router:report ()
   local t = self:counts()
   local rows = {}
   local keys = {}
   for name in pairs(t) do keys[#keys + 1] = name end
   table.sort(keys)
   for _, name in ipairs(keys) do rows[#rows + 1] = {name, lib.comma_value(t[name])} end
   print(lib.table_text({"counter", "packets"}, rows, {false, true}))
end

-- Selftest helpers: a frame of `len` bytes from hex fields, and the parsed app, driven directly.
local function frame (eth_type, ip_bytes, len)
   local p = packet.allocate()
   local d = p.data
   ffi.copy(d, "\x02\x00\x00\x00\x00\xaa\x02\x00\x00\x00\x00\xbb", 12)
   ffi.cast(u16_ptr, d + 12)[0] = htons(eth_type)
   ffi.copy(d + ETH_LEN, ip_bytes, #ip_bytes)
   p.length = len or ETH_LEN + #ip_bytes
   return p
end

local function ipv4 (dst, ttl, payload_len, fix_checksum)
   local h = ffi.new("uint8_t[?]", IPV4_MIN + payload_len)
   local ip = ffi.cast(ipv4_ptr, h)
   ip.ver_ihl, ip.total_length, ip.ttl, ip.protocol = 0x45, htons(IPV4_MIN + payload_len), ttl, 17
   ffi.copy(ip.src, "\x0a\x09\x08\x07", 4)
   C.inet_pton(2, dst, ip.dst)
   for k = IPV4_MIN, IPV4_MIN + payload_len - 1 do h[k] = k end
   if fix_checksum ~= false then checksum.ipv4_header(h) end
   return ffi.string(h, IPV4_MIN + payload_len)
end

-- The same with 4 bytes of options (IHL 6: NOP, NOP, NOP, end of list).
local function ipv4_options (dst, ttl, payload_len, fix_checksum)
   local h = ffi.new("uint8_t[?]", IPV4_MIN + 4 + payload_len)
   local plain = ipv4(dst, ttl, payload_len, false)
   ffi.copy(h, plain, IPV4_MIN)
   ffi.copy(h + IPV4_MIN, "\1\1\1\0", 4)
   ffi.copy(h + IPV4_MIN + 4, plain:sub(IPV4_MIN + 1), payload_len)
   local ip = ffi.cast(ipv4_ptr, h)
   ip.ver_ihl, ip.total_length = 0x46, htons(IPV4_MIN + 4 + payload_len)
   if fix_checksum ~= false then checksum.ipv4_header(h) end
   return ffi.string(h, IPV4_MIN + 4 + payload_len)
end

local function ipv6 (dst, hop, payload_len)
   local h = ffi.new("uint8_t[?]", IPV6_LEN + payload_len)
   local ip = ffi.cast(ipv6_ptr, h)
   ip.vtc_flow, ip.payload_length = lib.htonl(0x60000000), htons(payload_len)
   ip.next_header, ip.hop_limit = 17, hop
   C.inet_pton(10, "2001:db8:9::7", ip.src)
   C.inet_pton(10, dst, ip.dst)
   return ffi.string(h, IPV6_LEN + payload_len)
end

function M.selftest ()
   print("selftest: apps.router.router")
   local shm = require("core.shm")
   local conf = lib.parse({
      ports = {p0 = {mac = "02:00:00:00:00:01", ip = "192.0.2.1", ip6 = "2001:db8:ff::1"},
               p1 = {mac = "02:00:00:00:00:02"}},
      routes = {"10.0.0.0/8 192.0.2.2 p1  # comment", "10.1.0.0/16 192.0.2.3 p0",
                "2001:db8:1::/48 fe80::2 p1", "# only a comment"},
      neighbours = {["192.0.2.2"] = "02:00:00:00:00:22", ["fe80::2"] = "02:00:00:00:00:66"},
   }, Router.config)
   local r = Router:new(conf)
   r.shm = shm.create_frame("apps/router_selftest", r.shm)
   r.input = {p0 = link.new("in0"), p1 = link.new("in1")}
   r.output = {p0 = link.new("out0"), p1 = link.new("out1")}
   r:link()
   local function run (port, p)
      transmit(r.input[port], p)
      r:push()
      for _, name in ipairs({"p0", "p1"}) do
         if not link.empty(r.output[name]) then
            local q = receive(r.output[name])
            assert(link.empty(r.output[name]))
            return name, q
         end
      end
   end
   local sent = 0
   -- Forwarded: TTL 63, header checksum right, Ethernet rewritten to the next hop's.
   for _, case in ipairs({{"10.2.3.4", "p1", "\x02\x00\x00\x00\x00\x22\x02\x00\x00\x00\x00\x02"},
                          {"10.1.2.3", "p0", "\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x01"}}) do
      local out, q = run("p0", frame(ETHERTYPE_IPV4, ipv4(case[1], 64, 26), 60))
      sent = sent + 1
      assert(out == case[2], case[1])
      local ip = ffi.cast(ipv4_ptr, q.data + ETH_LEN)
      assert(ip.ttl == 63 and checksum.verify_ipv4_header(ip, 46), "ttl/checksum")
      assert(ffi.string(q.data, 12) == case[3], "MACs")
      assert(q.length == 60)
      free(q)
   end
   -- RFC 1624: the incremental checksum equals the one computed afresh, for every TTL and
   -- checksums around the 0x0000/0xffff corner.
   -- Besides a few ids, ids that make the checksum each corner value (network order; 0xfeff is
   -- 0xfffe as the 16-bit word lies in memory); a checksum of 0 is also tried as 0xffff, its
   -- ones' complement twin, which a sender may write.
   for ttl = 2, 255 do
      local ids = {0, 1, 0x1234, 0xfeff, 0xffff}
      for _, target in ipairs({0x0000, 0x0001, 0x00ff, 0x0100, 0xfeff, 0xfffe}) do
         local h = ffi.cast(ipv4_ptr, ffi.new("uint8_t[20]", ipv4("10.9.9.9", ttl, 0)))
         h.id = 0
         local v = band(bnot(target), 0xffff) + checksum.ipv4_header(h) -- ~target + C(id 0)
         ids[#ids + 1] = band(v, 0xffff) + rshift(v, 16)
      end
      for _, id in ipairs(ids) do
         for _, twin in ipairs({false, true}) do
            local q = frame(ETHERTYPE_IPV4, ipv4("10.9.9.9", ttl, 0))
            local ip = ffi.cast(ipv4_ptr, q.data + ETH_LEN)
            ip.id = htons(id)
            local c = checksum.ipv4_header(ip)
            if twin and c ~= 0 then free(q); break end
            if twin then ip.checksum = 0xffff end
            local out, q2 = run("p1", q)
            sent = sent + 1
            assert(out == "p1")
            ip = ffi.cast(ipv4_ptr, q2.data + ETH_LEN)
            local got = ip.checksum
            checksum.ipv4_header(ip)
            assert(ip.checksum == got, ("ttl %d id %d checksum %04x: incremental %04x, afresh %04x")
                   :format(ttl, id, twin and 0xffff or c, ntohs(got), ntohs(ip.checksum)))
            free(q2)
         end
      end
   end
   -- TTL 1: ICMP time exceeded out of the input port, from its address, with the header + 8 bytes.
   local orig = ipv4("10.2.3.4", 1, 26)
   local out, q = run("p0", frame(ETHERTYPE_IPV4, orig, 60))
   sent = sent + 1
   assert(out == "p0" and q.length == ETH_LEN + 20 + 8 + 28, "icmp4 " .. tostring(out))
   local ip = ffi.cast(ipv4_ptr, q.data + ETH_LEN)
   assert(checksum.verify_ipv4_header(ip, q.length - ETH_LEN) and checksum.verify_l4_ipv4(ip, q.length - ETH_LEN))
   assert(ip.protocol == 1 and q.data[ETH_LEN + 20] == 11 and q.data[ETH_LEN + 21] == 0)
   assert(ffi.string(ip.src, 4) == "\192\0\2\1" and ffi.string(ip.dst, 4) == "\10\9\8\7")
   assert(ffi.string(q.data + ETH_LEN + 28, 28) == orig:sub(1, 28))
   assert(ffi.string(q.data, 12) == "\x02\x00\x00\x00\x00\xbb\x02\x00\x00\x00\x00\x01")
   free(q)
   -- p1 has no IPv4 address: TTL expired there is dropped without an answer.
   assert(run("p1", frame(ETHERTYPE_IPV4, orig, 60)) == nil)
   sent = sent + 1
   -- IPv6: hop limit decremented; 1 answered with ICMPv6 type 3 holding as much as fits 1280.
   out, q = run("p0", frame(ETHERTYPE_IPV6, ipv6("2001:db8:1::5", 64, 8)))
   sent = sent + 1
   assert(out == "p1" and q.data[ETH_LEN + 7] == 63)
   assert(ffi.string(q.data, 12) == "\x02\x00\x00\x00\x00\x66\x02\x00\x00\x00\x00\x02")
   free(q)
   out, q = run("p0", frame(ETHERTYPE_IPV6, ipv6("2001:db8:1::5", 1, 1400)))
   sent = sent + 1
   assert(out == "p0" and q.length == ETH_LEN + IPV6_MIN_MTU, "icmp6 length")
   local ip6 = ffi.cast(ipv6_ptr, q.data + ETH_LEN)
   assert(ip6.next_header == 58 and q.data[ETH_LEN + 40] == 3 and checksum.verify_l4_ipv6(ip6, IPV6_MIN_MTU))
   free(q)
   -- Options: the header sum over them, TTL and checksum updated as without.
   out, q = run("p0", frame(ETHERTYPE_IPV4, ipv4_options("10.2.3.4", 64, 26)))
   sent = sent + 1
   ip = ffi.cast(ipv4_ptr, q.data + ETH_LEN)
   assert(out == "p1" and ip.ttl == 63 and checksum.verify_ipv4_header(ip, 50), "options")
   free(q)
   -- Drops, one reason each.
   local drops = {
      {"bad_checksum", frame(ETHERTYPE_IPV4, ipv4_options("10.2.3.4", 64, 26, false))},
      {"malformed", frame(ETHERTYPE_IPV4, ipv4("10.2.3.4", 64, 26):sub(1, 2) .. "\0\19"
                                             .. ipv4("10.2.3.4", 64, 26):sub(5))},
      {"no_route", frame(ETHERTYPE_IPV4, ipv4("11.0.0.1", 64, 26))},
      {"no_route", frame(ETHERTYPE_IPV6, ipv6("2001:db8:2::1", 64, 0))},
      {"bad_checksum", frame(ETHERTYPE_IPV4, ipv4("10.2.3.4", 64, 26, false))},
      {"truncated", frame(ETHERTYPE_IPV4, ipv4("10.2.3.4", 64, 26), ETH_LEN + 19)},
      {"truncated", frame(ETHERTYPE_IPV4, ipv4("10.2.3.4", 64, 26), ETH_LEN + 45)},
      {"truncated", frame(ETHERTYPE_IPV6, ipv6("2001:db8:1::5", 64, 8), ETH_LEN + 47)},
      {"truncated", frame(ETHERTYPE_IPV4, "", 10)},
      {"malformed", frame(ETHERTYPE_IPV4, "\x44" .. ipv4("10.2.3.4", 64, 26):sub(2))},
      {"malformed", frame(ETHERTYPE_IPV6, "\x40" .. ipv6("2001:db8:1::5", 64, 8):sub(2))},
      {"not_unicast", frame(ETHERTYPE_IPV4, ipv4("224.0.0.22", 1, 26))},
      {"not_unicast", frame(ETHERTYPE_IPV4, ipv4("255.255.255.255", 64, 26))},
      {"not_unicast", frame(ETHERTYPE_IPV6, ipv6("ff02::16", 1, 8))},
      {"not_ip", frame(0x0806, ("\0"):rep(28))},
      {"not_ip", frame(0x8100, ipv4("10.2.3.4", 64, 26))},
   }
   for _, case in ipairs(drops) do
      local before = r:counts()["drop_" .. case[1]]
      assert(run("p0", case[2]) == nil, case[1])
      sent = sent + 1
      assert(r:counts()["drop_" .. case[1]] == before + 1, case[1])
   end
   -- Every packet in is counted once.
   local t, total = r:counts(), 0
   for name, n in pairs(t) do
      if name:match("^drop_") or name:match("^forwarded_") then total = total + n end
   end
   assert(total == sent, ("counted %d of %d packets"):format(total, sent))
   assert(t.icmp_p0 == 2 and t.forwarded_p0 == 1 and t.drop_ttl_expired == 3)
   shm.delete_frame(r.shm)
   -- Runs of next hops in one push: p1 without an output link (no_link), p0, no route, mixed;
   -- each packet counted once, the forwarded ones in order with their next hop's MACs.
   do
      local rl = Router:new(conf)
      rl.shm = shm.create_frame("apps/router_selftest_runs", rl.shm)
      rl.input, rl.output = {p0 = link.new("rl_in")}, {p0 = link.new("rl_out")}
      rl:link()
      local dsts = {"10.2.3.4", "10.2.3.5", "10.1.0.1", "10.1.0.2", "11.0.0.1", "10.1.0.3",
                    "10.2.0.1", "11.0.0.2", "11.0.0.3", "10.1.0.4"}
      for _, dst in ipairs(dsts) do transmit(rl.input.p0, frame(ETHERTYPE_IPV4, ipv4(dst, 64, 26))) end
      rl:push()
      for _, last in ipairs({1, 2, 3, 4}) do
         local f = receive(rl.output.p0)
         assert(ffi.string(f.data + ETH_LEN + 16, 4) == "\10\1\0" .. string.char(last), "order")
         assert(ffi.string(f.data, 12) == "\0\0\0\0\0\0\x02\0\0\0\0\x01", "MACs")
         free(f)
      end
      assert(link.empty(rl.output.p0))
      local c = rl:counts()
      assert(c.forwarded_p0 == 4 and c.drop_no_link == 3 and c.drop_no_route == 3, "runs")
      shm.delete_frame(rl.shm)
      link.free(rl.input.p0, "rl_in")
      link.free(rl.output.p0, "rl_out")
   end
   -- verify_checksum = false: a wrong header checksum is forwarded (updated, so still wrong),
   -- the rest checked as before.
   do
      local nv = Router:new(lib.parse({ports = conf.ports, routes = conf.routes,
                                        neighbours = conf.neighbours, verify_checksum = false},
                                       Router.config))
      nv.shm = shm.create_frame("apps/router_selftest_nv", nv.shm)
      nv.input, nv.output = {p0 = link.new("nv_in")}, {p1 = link.new("nv_out")}
      nv:link()
      for _, h in ipairs({ipv4("10.2.3.4", 64, 26, false), ipv4_options("10.2.3.4", 64, 26, false)}) do
         transmit(nv.input.p0, frame(ETHERTYPE_IPV4, h))
         nv:push()
         local f = receive(nv.output.p1)
         ip = ffi.cast(ipv4_ptr, f.data + ETH_LEN)
         assert(ip.ttl == 63 and not checksum.verify_ipv4_header(ip, f.length - ETH_LEN))
         free(f)
      end
      transmit(nv.input.p0, frame(ETHERTYPE_IPV4, ipv4("10.2.3.4", 64, 26), ETH_LEN + 45))
      nv:push()
      local c = nv:counts()
      assert(c.forwarded_p1 == 2 and c.drop_truncated == 1 and c.drop_bad_checksum == 0)
      shm.delete_frame(nv.shm)
      link.free(nv.input.p0, "nv_in")
      link.free(nv.output.p1, "nv_out")
   end
   -- Config errors name the line and what is wrong.
   local function refused (c, pattern)
      local ok, err = pcall(Router.new, Router, lib.parse(c, Router.config))
      assert(not ok and tostring(err):find(pattern), tostring(err))
   end
   local ports = {p0 = "02:00:00:00:00:01"}
   refused({ports = ports, routes = {"10.0.0.0/8 1.2.3.4 p0", "10.0.0.0/8 1.2.3.4 p9"}},
           "^routes:2: no port 'p9' %(ports: p0%)$")
   refused({ports = ports, routes = {"10.0.0.0/8 1.2.3.4"}},
           "^routes:1: expected \"PREFIX NEXTHOP PORT\", got 2 fields$")
   refused({ports = ports, routes = {"10.0.0.0/8 fe80::1 p0"}},
           "^routes:1: next hop fe80::1 is IPv6, prefix 10.0.0.0/8 is IPv4$")
   refused({ports = ports, routes = {"10.0.0.0/8 1.2.3 p0"}},
           "^routes:1: next hop: '1.2.3' is not an IPv4 or IPv6 address$")
   refused({ports = {p0 = "02:00:00:00:01"}, routes = {}}, "port 'p0' mac: '02:00:00:00:01' is not a MAC address")
   refused({ports = ports, routes = "/nonexistent/routes"}, "^routes: cannot read /nonexistent/routes: No such file")
   refused({ports = ports, routes = {"10.0.0.0/33 1.2.3.4 p0"}},
           "^routes:1: prefix '10.0.0.0/33': length 33, at most 32$")
   for _, dir in ipairs({r.input, r.output}) do
      for name, l in pairs(dir) do
         while not link.empty(l) do packet.free(receive(l)) end
         link.free(l, name)
      end
   end
   print("selftest: apps.router.router ok")
end

return M
