-- snabb gen-pcap OUT.pcap [--size BYTES | --imix] [--ipv6] [--tcp] [--vlan ID[,ID]] [--src RANGE]
-- [--dst RANGE] [--sport PORTS] [--dport PORTS] [--flows N] [--packets N] [--seed S]: writes a
-- synthetic capture of Ethernet II (802.1Q/802.1ad tagged on request) / IPv4 or IPv6 / UDP or TCP
-- frames with valid checksums, for benchmarks. Each frame's size and its flow are drawn apart, by
-- two seeded shuffles, so every flow carries the whole IMIX. The same arguments give the same
-- bytes, timestamps included: the first packet is at 2026-01-01T00:00:00Z and each next one
-- follows when the previous has left a 10 Gbit/s wire.
local ffi = require("ffi")
local argparse = require("argparse")
local cli = require("programs.cli")
require("core.cdefs")
require("apps.pcap.cdefs")
local packet = require("core.packet")
local lib = require("core.lib")
local wire_bits = require("lib.ethernet").wire_bits
local C = ffi.C
local band, bor, bxor, rshift, lshift, floor = bit.band, bit.bor, bit.bxor, bit.rshift, bit.lshift,
   math.floor

pcall(ffi.cdef, "int inet_pton(int af, const char *src, void *dst);")
local AF_INET, AF_INET6 = 2, 10

local M = {}

-- For `snabb help` (programs/main.lua finds the command by its folder).
M.summary = "write a synthetic capture (fixed size or IMIX, N flows): snabb gen-pcap OUT.pcap"

local ETH, TAG, FCS = 14, 4, 4
local IP4, IP6, UDP, TCP = 20, 40, 8, 20
local MIN_SIZE, MAX_SIZE = 64, 1518       -- frame sizes with FCS, as RFC 2544 counts them
local MAX_FLOWS = 2^24
-- Simple IMIX 7:4:1. The smallest frame is 64 bytes, or the smallest the headers allow (IPv6:
-- RFC 5180 raises it likewise). Sizes are shuffled in blocks of 12, so each block holds 7:4:1.
local IMIX = {{64, 7}, {570, 4}, {1518, 1}}
local EPOCH_NS = 1767225600ULL * 1000000000ULL -- 2026-01-01T00:00:00Z
local WIRE_BPNS = 10                           -- 10 Gbit/s: bits per nanosecond
-- Default ranges: 10.0.0.1+65534 port 1024-65535 -> 10.1.0.1 port 9 (discard); IPv6 alike in the
-- documentation prefix. Between locally administered MACs.
local DEFAULTS = {[4] = {src = "10.0.0.1+65534", dst = "10.1.0.1"},
                  [6] = {src = "2001:db8::1+65534", dst = "2001:db8:1::1"}}
local SPORTS, DPORTS = "1024-65535", "9"
local MACS = "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01" -- dst, src
local TPID_8021Q, TPID_8021AD = 0x8100, 0x88a8


local function put16 (p, v) p[0], p[1] = rshift(v, 8), band(v, 0xff) end
local function put32 (p, v) put16(p, rshift(v, 16)); put16(p + 2, band(v, 0xffff)) end
local function get16 (p) return p[0] * 256 + p[1] end

-- RFC 1071 ones' complement sum of n bytes, added to sum and folded to 16 bits.
local function csum (p, n, sum)
   for k = 0, n - 2, 2 do sum = sum + p[k] * 256 + p[k + 1] end
   if n % 2 == 1 then sum = sum + p[n - 1] * 256 end
   while sum > 0xffff do sum = band(sum, 0xffff) + rshift(sum, 16) end
   return sum
end

-- The sum of a UDP or TCP segment of n bytes at l4 with its pseudo-header (addresses, protocol,
-- length; RFC 768, 793, 8200 8.1); 0xffff when the checksum in it is right.
local function l4_sum (ip, family, proto, l4, n)
   local addrs = family == 4 and csum(ip + 12, 8, proto + n) or csum(ip + 8, 32, proto + n)
   return csum(l4, n, addrs)
end

-- Address ranges: {family = 4 or 6, base = the first address (4 or 16 bytes, a Lua string),
-- count = how many, shift = log2 of the step between them (0: consecutive)}. True when base +
-- index is past the family's last address.
local function past_end (base, index)
   for k = #base, 1, -1 do index = floor((base:byte(k) + index) / 256) end
   return index > 0
end

-- Writes the n-byte address base + index * 2^shift at p (index < the range's count: no carry out
-- of it).
local function put_address (p, base, n, index, shift)
   ffi.copy(p, base, n)
   shift = shift or 0
   local k = n - 1 - floor(shift / 8)
   index = index * 2^(shift % 8)
   while index > 0 do
      local v = p[k] + index % 256
      p[k], index, k = band(v, 0xff), floor(index / 256) + rshift(v, 8), k - 1
   end
end

local function address (s)
   local buf = ffi.new("uint8_t[16]")
   if C.inet_pton(AF_INET, s, buf) == 1 then return 4, ffi.string(buf, 4) end
   if C.inet_pton(AF_INET6, s, buf) == 1 then return 6, ffi.string(buf, 16) end
end

-- "ADDR", "ADDR/LEN" (every address of the prefix), "ADDR/LEN*COUNT" (COUNT addresses spread over
-- the prefix, a power of two apart: the most that fits) or "ADDR+COUNT" (COUNT addresses from ADDR).
local function range_converter (option)
   local usage = ("%s must be ADDR, ADDR/LEN, ADDR/LEN*COUNT or ADDR+COUNT (e.g. 10.0.0.0/24, "
                  .. "10.0.0.0/8*65536, 2001:db8::1+1000)"):format(option)
   return function (s)
      local a, sep, n = s:match("^([^/+]+)([/+]?)(.*)$")
      local family, base = address(a or "")
      if not family or (sep == "") ~= (n == "") then return nil, ("%s, got '%s'"):format(usage, s) end
      local bits = family == 4 and 32 or 128
      if sep == "" then return {family = family, base = base, count = 1} end
      local star, spread = "", ""
      if sep == "/" then n, star, spread = n:match("^([^*]*)(%*?)(.*)$") end
      local v = n:match("^%d+$") and tonumber(n)
      if sep == "/" then
         if not v or v > bits then
            return nil, ("%s: the prefix length must be 0 to %d, got '%s'"):format(option, bits, s)
         end
         -- Bits past the prefix must be zero: "10.0.0.1/24" is refused, not read as 10.0.0.0/24.
         for k = 1, #base do
            local keep = math.min(8, math.max(0, v - (k - 1) * 8))
            if band(base:byte(k), 0xff - (2^(8 - keep) - 1)) ~= base:byte(k) then
               return nil, ("%s: '%s' has bits set past its prefix length"):format(option, s)
            end
         end
         if star ~= "" then
            local count, most = spread:match("^%d+$") and tonumber(spread), math.min(MAX_FLOWS, 2^(bits - v))
            if not count or count < 1 or count > most then
               return nil, ("%s: the count after '*' must be a whole number from 1 to %d (the prefix's "
                            .. "addresses, at most 2^24), got '%s'"):format(option, most, s)
            end
            local c = 0
            while 2^c < count do c = c + 1 end
            return {family = family, base = base, count = count, shift = bits - v - c}
         end
         return {family = family, base = base, count = 2^(bits - v)}
      end
      if not v or v < 1 or v > 2^53 then
         return nil, ("%s: the count after '+' must be a whole number from 1 to 2^53, got '%s'"):format(option, s)
      end
      if past_end(base, v - 1) then
         return nil, ("%s: '%s' goes past the last IPv%d address"):format(option, s, family)
      end
      return {family = family, base = base, count = v}
   end
end

-- "PORT" or "LO-HI", 0..65535.
local function ports_converter (option)
   return function (s)
      local lo, hi = s:match("^(%d+)%-(%d+)$")
      if not lo then lo = s:match("^%d+$"); hi = lo end
      lo, hi = tonumber(lo), tonumber(hi)
      if lo and lo <= hi and hi <= 65535 then return {base = lo, count = hi - lo + 1} end
      return nil, ("%s must be a port or a range LO-HI, from 0 to 65535 (e.g. 9 or 1024-65535), got '%s'")
         :format(option, s)
   end
end

-- "ID" (an 802.1Q tag) or "OUTER,INNER" (802.1ad then 802.1Q, QinQ); ids 0..4094.
local function vlan_converter (s)
   local ids, ok = {}, true
   for id in (s .. ","):gmatch("([^,]*),") do
      local v = tonumber(id:match("^%d+$") or "")
      ok, ids[#ids + 1] = ok and v and v <= 4094, v
   end
   if ok and #ids <= 2 then return ids end
   return nil, ("--vlan must be a VLAN id or OUTER,INNER for QinQ, ids from 0 to 4094 (e.g. 100 or 100,200), got '%s'")
      :format(s)
end

-- splitmix64 (Steele, Lea, Flood 2014): a seeded stream of 64-bit numbers; below(n) is uniform in
-- 0..n-1 for n up to 2^24 (the top 32 bits scaled: a bias under 2^-8 at most).
local function stream (seed, which)
   local state = ffi.new("uint64_t[1]", ffi.cast("uint64_t", seed) * 2 + which)
   return function (n)
      local z = state[0] + 0x9E3779B97F4A7C15ULL
      state[0] = z
      z = bxor(z, rshift(z, 30)) * 0xBF58476D1CE4E5B9ULL
      z = bxor(z, rshift(z, 27)) * 0x94D049BB133111EBULL
      z = bxor(z, rshift(z, 31))
      return floor(tonumber(rshift(z, 32)) / 2^32 * n)
   end
end

-- A shuffled deck of n cards dealt one by one: each block of n draws holds every card once, in
-- an order drawn from `below` (a Fisher-Yates shuffle done a step per draw).
local function deck (n, below)
   local cards, i = ffi.new("uint32_t[?]", n), 0
   for k = 0, n - 1 do cards[k] = k end
   return function ()
      if i == n then i = 0 end
      local j = i + below(n - i)
      local card = cards[j]
      cards[j], cards[i] = cards[i], card
      i = i + 1
      return card
   end
end

-- The frame layout the options ask for: tags, family, protocol, ranges, offsets, smallest frame.
function M.layout (opts)
   local family = opts.ipv6 and 6 or 4
   for _, key in ipairs({"src", "dst"}) do
      if opts[key] then family = opts[key].family end
   end
   local src = opts.src or range_converter("--src")(DEFAULTS[family].src)
   local dst = opts.dst or range_converter("--dst")(DEFAULTS[family].dst)
   if src.family ~= dst.family then
      error(("the addresses must be of one family: --src is IPv%d, --dst IPv%d"):format(
         src.family, dst.family), 0)
   elseif opts.ipv6 and family ~= 6 then
      error(("--ipv6, but %s is an IPv4 range"):format(opts.src and "--src" or "--dst"), 0)
   end
   local L = {family = family, tcp = opts.tcp, vlan = opts.vlan or {}, src = src, dst = dst,
              sport = opts.sport or ports_converter("--sport")(SPORTS),
              dport = opts.dport or ports_converter("--dport")(DPORTS)}
   L.l3 = ETH + TAG * #L.vlan
   L.l4 = L.l3 + (family == 4 and IP4 or IP6)
   L.payload = L.l4 + (L.tcp and TCP or UDP)
   L.min_size = math.max(MIN_SIZE, L.payload + FCS)
   L.name = ("%sIPv%d/%s"):format(#L.vlan == 0 and "" or
                                     (#L.vlan == 1 and "802.1Q " or "QinQ ") .. table.concat(L.vlan, ",") .. " ",
                                  family, L.tcp and "TCP" or "UDP")
   -- Distinct 5-tuples: every combination of the four ranges.
   L.tuples = src.count * dst.count * L.sport.count * L.dport.count
   return L
end

-- Writes one frame of `size` bytes on the wire (the capture holds it without FCS) into p, for
-- flow number `flow`: its source address is the fastest-changing part of the 5-tuple, then the
-- destination, the source port, the destination port.
local function build (p, L, size, flow, seq, seed, payload, tcp_seq)
   local d, len = p.data, size - FCS
   ffi.copy(d, MACS, 12)
   local o = 12
   for k, id in ipairs(L.vlan) do
      put16(d + o, k < #L.vlan and TPID_8021AD or TPID_8021Q)
      put16(d + o + 2, id)
      o = o + TAG
   end
   put16(d + o, L.family == 4 and 0x0800 or 0x86dd)
   local f = flow
   local si = f % L.src.count; f = floor(f / L.src.count)
   local di = f % L.dst.count; f = floor(f / L.dst.count)
   local sport = L.sport.base + f % L.sport.count; f = floor(f / L.sport.count)
   local dport = L.dport.base + f % L.dport.count
   local ip, l4, n = d + L.l3, d + L.l4, len - L.l4
   local proto = L.tcp and 6 or 17
   if L.family == 4 then
      ip[0], ip[1] = 0x45, 0
      put16(ip + 2, len - L.l3)
      put16(ip + 4, (seed + seq) % 65536)    -- identification
      put16(ip + 6, 0x4000)                  -- don't fragment
      ip[8], ip[9] = 64, proto               -- TTL
      put16(ip + 10, 0)
      put_address(ip + 12, L.src.base, 4, si, L.src.shift)
      put_address(ip + 16, L.dst.base, 4, di, L.dst.shift)
      put16(ip + 10, 0xffff - csum(ip, IP4, 0))
   else
      put32(ip, 0x60000000 + flow % 2^20)    -- version 6, flow label: the flow number
      put16(ip + 4, n)
      ip[6], ip[7] = proto, 64               -- next header, hop limit
      put_address(ip + 8, L.src.base, 16, si, L.src.shift)
      put_address(ip + 24, L.dst.base, 16, di, L.dst.shift)
   end
   put16(l4, sport)
   put16(l4 + 2, dport)
   if L.tcp then
      -- Each flow's stream: sequence numbers from 1, counting the bytes sent; PSH+ACK.
      local data = n - TCP
      put32(l4 + 4, tcp_seq[flow] + 1)
      tcp_seq[flow] = tcp_seq[flow] + data
      put32(l4 + 8, 1)
      l4[12], l4[13] = 0x50, 0x18            -- 5 words of header; PSH, ACK
      put16(l4 + 14, 65535)                  -- window
      put32(l4 + 16, 0)                      -- checksum, urgent pointer
      ffi.copy(l4 + TCP, payload, data)
      put16(l4 + 16, 0xffff - l4_sum(ip, L.family, proto, l4, n))
   else
      put16(l4 + 4, n)
      put16(l4 + 6, 0)
      ffi.copy(l4 + UDP, payload, n - UDP)
      local sum = 0xffff - l4_sum(ip, L.family, proto, l4, n)
      put16(l4 + 6, sum == 0 and 0xffff or sum) -- 0 would mean "no checksum"
   end
   p.length = len
end

-- The frame sizes opts ask for (IMIX: each with its weight) in the layout L.
function M.sizes (opts, L)
   if not opts.imix then return {{opts.size or L.min_size, 1}} end
   local sizes = {}
   for k, s in ipairs(IMIX) do sizes[k] = {math.max(s[1], L.min_size), s[2]} end
   return sizes
end

-- The layout, once the options are checked to fit together (one message raised when not).
function M.check (opts)
   local L = M.layout(opts)
   if opts.size and opts.size < L.min_size then
      error(("--size %d is too small for %s: the headers and FCS take %d bytes"):format(
         opts.size, L.name, L.payload + FCS), 0)
   end
   if (opts.flows or 1) > L.tuples then
      local comma = lib.comma_value
      error(("--flows %s is more than the %s distinct flows that --src, --dst, --sport and --dport "
                .. "give (%s x %s x %s x %s)"):format(comma(opts.flows), comma(L.tuples),
            comma(L.src.count), comma(L.dst.count), comma(L.sport.count), comma(L.dport.count)), 0)
   end
   return L
end

-- Writes the capture; opts: file, size or imix, ipv6, tcp, vlan, src, dst, sport, dport (ranges
-- as the converters above make them), flows, packets, seed. Returns the bytes captured. Errors
-- (options that do not fit together, a file that cannot be created) are raised as one message.
function M.generate (opts)
   local L = M.check(opts)
   local flows, seed = opts.flows or 1, opts.seed or 1
   -- Sizes and flows come from two decks, shuffled by two streams of the seed: size and flow are
   -- independent, every block of 12 packets holds the IMIX exactly and every block of `flows`
   -- packets each flow once.
   local cards = {}
   for _, s in ipairs(M.sizes(opts, L)) do
      for _ = 1, s[2] do cards[#cards + 1] = s[1] end
   end
   local next_size, next_flow = deck(#cards, stream(seed, 0)), deck(flows, stream(seed, 1))
   local tcp_seq = L.tcp and ffi.new("uint32_t[?]", flows)
   -- Payload: byte k is (k + seed) mod 256, the same for every packet.
   local payload = ffi.new("uint8_t[?]", MAX_SIZE)
   for k = 0, MAX_SIZE - 1 do payload[k] = (k + seed) % 256 end
   local w = C.snabb_pcap_writer_open(opts.file, 0, 0)
   if w == nil then lib.c_error(nil, 0) end
   local bytes, bits = 0, 0
   for seq = 0, opts.packets - 1 do
      local p = packet.allocate()
      build(p, L, cards[next_size() + 1], next_flow(), seq, seed, payload, tcp_seq)
      packet.set_timestamp(p, EPOCH_NS + floor(bits / WIRE_BPNS))
      C.snabb_pcap_writer_write(w, p, 0)
      bytes, bits = bytes + p.length, bits + wire_bits(p.length)
      packet.free(p)
   end
   if C.snabb_pcap_writer_close(w) ~= 0 then lib.c_error(nil, 0) end
   return bytes, L
end

local function parser ()
   local p = argparse("snabb gen-pcap", "Write a synthetic capture of Ethernet / IPv4 or IPv6 / UDP "
                         .. "or TCP frames (the same arguments give the same file).")
      :add_help("-h --help")
   p:argument("output", "pcap file to write")
   local size = p:option("--size", "frame size on the wire with FCS and tags, as RFC 2544 counts "
                            .. "it (64..1518; default 64, or the smallest the headers allow)")
      :convert(cli.whole("--size", MIN_SIZE, MAX_SIZE, "a frame size with FCS"))
   local imix = p:flag("--imix", "simple IMIX: 64 (or the smallest the headers allow), 570 and 1518-byte frames, 7:4:1")
   p:mutex(size, imix)
   p:flag("--ipv6", "IPv6 (the default addresses: 2001:db8::1+65534 -> 2001:db8:1::1)")
   p:flag("--tcp", "TCP segments (PSH+ACK, sequence numbers per flow) instead of UDP datagrams")
   p:option("--vlan", "802.1Q tag with this VLAN id, or OUTER,INNER: QinQ (802.1ad then 802.1Q)")
      :convert(vlan_converter)
   p:option("--src", "source addresses: ADDR, ADDR/LEN, ADDR/LEN*COUNT (spread over the prefix) or "
            .. "ADDR+COUNT (default 10.0.0.1+65534)")
      :convert(range_converter("--src"))
   p:option("--dst", "destination addresses, as --src (default 10.1.0.1)")
      :convert(range_converter("--dst"))
   p:option("--sport", "source ports: PORT or LO-HI (default " .. SPORTS .. ")")
      :convert(ports_converter("--sport"))
   p:option("--dport", "destination ports, as --sport (default " .. DPORTS .. ")")
      :convert(ports_converter("--dport"))
   p:option("--flows", "distinct flows (5-tuples: source address fastest, then destination, ports)")
      :default("1"):convert(cli.whole("--flows", 1, MAX_FLOWS))
   p:option("--packets", "packets to write; 1e6 style allowed"):default("1000")
      :convert(cli.whole("--packets", 1, 2^40))
   p:option("--seed", "shuffles sizes and flows, varies the payload and IP identifications"):default("1")
      :convert(cli.whole("--seed", 0, 65535))
   return p
end

function M.run (args)
   local p = parser()
   local opts = cli.parse(p, args)
   if not opts then return 2 end
   opts.file = opts.output
   local ok, L = pcall(M.check, opts)
   if not ok then
      cli.usage_error(p, L)
      return 2
   end
   local bytes
   ok, bytes = pcall(M.generate, opts)
   if not ok then
      io.stderr:write(("snabb gen-pcap: %s\n"):format(bytes))
      return 1
   end
   local comma, sizes = lib.comma_value, {}
   for _, s in ipairs(M.sizes(opts, L)) do sizes[#sizes + 1] = s[1] end
   print(("wrote %s packets (%s, %s, %s flow%s, %s bytes captured) to %s"):format(
      comma(opts.packets), L.name,
      opts.imix and "IMIX 7:4:1 of " .. table.concat(sizes, "/") .. "-byte frames" or sizes[1] .. "-byte frames",
      comma(opts.flows), opts.flows == 1 and "" or "s", comma(bytes), opts.file))
   return 0
end

function M.selftest ()
   print("selftest: programs.gen_pcap.gen_pcap")
   local file = os.tmpname()
   local parse = parser()
   -- The options of a command line, as run takes them.
   local function options (...)
      local args = {file}
      for _, a in ipairs({...}) do args[#args + 1] = tostring(a) end
      local ok, opts = parse:pparse(args)
      assert(ok, opts)
      opts.file = file
      return opts
   end
   local function gen (...) return M.generate(options(...)) end
   -- Reads file back: per frame its length, timestamp, VLAN ids and flow ("src sport dst dport"),
   -- checking the headers, lengths and checksums (IPv4 header, UDP or TCP) on the way.
   local function read_back ()
      local r = C.snabb_pcap_reader_open(file)
      if r == nil then lib.c_error(nil, 0) end
      local p = packet.allocate()
      local frames = {}
      while C.snabb_pcap_reader_next(r, p) == 1 do
         local d, len = p.data, p.length
         local o, vlans = 12, {}
         while get16(d + o) == TPID_8021Q or get16(d + o) == TPID_8021AD do
            vlans[#vlans + 1] = get16(d + o + 2)
            o = o + TAG
         end
         local ip, family, proto, l4, src, dst = d + o + 2
         if get16(d + o) == 0x0800 then
            family, proto, l4 = 4, ip[9], ip + IP4
            assert(ip[0] == 0x45 and get16(ip + 2) == len - (o + 2), "IPv4 length")
            assert(csum(ip, IP4, 0) == 0xffff, "IPv4 header checksum")
            src, dst = ffi.string(ip + 12, 4), ffi.string(ip + 16, 4)
         else
            assert(get16(d + o) == 0x86dd and rshift(ip[0], 4) == 6, "IPv6")
            family, proto, l4 = 6, ip[6], ip + IP6
            assert(get16(ip + 4) == len - (o + 2) - IP6, "IPv6 payload length")
            src, dst = ffi.string(ip + 8, 16), ffi.string(ip + 24, 16)
         end
         local n = len - (l4 - d)
         assert(proto == 17 or proto == 6, "protocol")
         if proto == 17 then assert(get16(l4 + 4) == n and get16(l4 + 6) ~= 0, "UDP length") end
         assert(l4_sum(ip, family, proto, l4, n) == 0xffff, "UDP/TCP checksum")
         frames[#frames + 1] = {len = len, stamp = packet.timestamp(p), vlans = table.concat(vlans, ","),
                                proto = proto, family = family, src = src, dst = dst,
                                flow = ("%s %d %s %d"):format(src, get16(l4), dst, get16(l4 + 2)),
                                seq = proto == 6 and bor(lshift(get16(l4 + 4), 16), get16(l4 + 6))}
      end
      packet.free(p)
      C.snabb_pcap_reader_close(r)
      return frames
   end
   local function contents ()
      local f = assert(io.open(file, "rb"))
      local s = f:read("*a")
      f:close()
      return s
   end
   local function count (list)
      local n, seen = 0, {}
      for _, v in ipairs(list) do
         if not seen[v] then seen[v], n = true, n + 1 end
      end
      return n
   end

   -- IMIX: 7:4:1 in every block of 12, every flow once in every block of 5, timestamps from the
   -- epoch on a 10 Gbit/s wire.
   local bytes = gen("--imix", "--flows", "5", "--packets", "120", "--seed", "7")
   assert(bytes == 10 * (7 * 60 + 4 * 566 + 1514), bytes)
   local frames = read_back()
   assert(#frames == 120)
   for start = 1, 120, 12 do
      local n = {}
      for k = start, start + 11 do n[frames[k].len] = (n[frames[k].len] or 0) + 1 end
      assert(n[60] == 7 and n[566] == 4 and n[1514] == 1, "7:4:1 block at " .. start)
   end
   for start = 1, 120, 5 do
      local flows = {}
      for k = start, start + 4 do flows[#flows + 1] = frames[k].flow end
      assert(count(flows) == 5, "flows block at " .. start)
   end
   assert(frames[1].stamp == EPOCH_NS, "first timestamp")
   local bits = 0
   for k = 2, #frames do
      bits = bits + wire_bits(frames[k - 1].len)
      -- microsecond pcap: the wire time, truncated to whole microseconds
      assert(frames[k].stamp == EPOCH_NS + floor(floor(bits / WIRE_BPNS) / 1000) * 1000, "timestamp " .. k)
   end
   -- Size and flow are independent: with 16 flows every flow carries every size (round-robin
   -- flows over a pattern of 12 gave only 4 flows the 1518-byte frames).
   gen("--imix", "--flows", "16", "--packets", "4800")
   local pairs_seen = {}
   for _, f in ipairs(read_back()) do pairs_seen[#pairs_seen + 1] = f.flow .. " " .. f.len end
   assert(count(pairs_seen) == 16 * 3, "flow and size pairs: " .. count(pairs_seen))
   -- The same arguments give the same bytes; another seed another order.
   gen("--imix", "--flows", "5", "--packets", "120", "--seed", "7")
   local first = contents()
   gen("--imix", "--flows", "5", "--packets", "120", "--seed", "7")
   assert(contents() == first, "not deterministic")
   gen("--imix", "--flows", "5", "--packets", "120", "--seed", "8")
   assert(contents() ~= first, "seed ignored")

   -- Fixed sizes: the capture holds the frame without FCS; more flows than packets.
   for _, size in ipairs({64, 65, 1518}) do
      gen("--size", size, "--flows", "100", "--packets", "30")
      frames = read_back()
      local flows = {}
      for _, f in ipairs(frames) do assert(f.len == size - FCS); flows[#flows + 1] = f.flow end
      assert(#frames == 30 and count(flows) == 30)
   end
   -- More flows than source addresses: the source port changes next.
   gen("--flows", "70000", "--packets", "70000")
   local flows = {}
   for _, f in ipairs(read_back()) do flows[#flows + 1] = f.flow end
   assert(count(flows) == 70000, "flows not distinct")

   -- IPv6, TCP, QinQ and ranges: a range carried past a byte (::ff+2 is ::ff and ::100), every
   -- combination of the ranges once.
   gen("--ipv6", "--tcp", "--vlan", "100,200", "--imix", "--src", "2001:db8::ff+2",
       "--dst", "2001:db8:1::/127", "--sport", "1000-1002", "--dport", "80", "--flows", "12",
       "--packets", "240")
   frames = read_back()
   flows = {}
   local srcs, dsts, next_seq = {}, {}, {}
   for _, f in ipairs(frames) do
      assert(f.family == 6 and f.proto == 6 and f.vlans == "100,200" and f.len >= 86 - FCS, f.len)
      flows[#flows + 1], srcs[f.src], dsts[f.dst] = f.flow, true, true
      -- Each flow's sequence numbers count its bytes from 1.
      assert(f.seq == (next_seq[f.flow] or 1), "TCP sequence")
      next_seq[f.flow] = f.seq + f.len - (12 + 2 * TAG + 2 + IP6 + TCP)
   end
   assert(count(flows) == 12)
   local function v6 (s) return select(2, address(s)) end
   assert(srcs[v6("2001:db8::ff")] and srcs[v6("2001:db8::100")] and dsts[v6("2001:db8:1::")] and
          dsts[v6("2001:db8:1::1")])
   assert(#frames == 240)
   local opts = options("--ipv6", "--tcp", "--vlan", "1,2", "--imix")
   assert(M.sizes(opts, M.layout(opts))[1][1] == 86, "smallest IMIX frame of IPv6/TCP in QinQ")
   -- Spread over a prefix: 1000 addresses 2^14 apart over 10.0.0.0/8 (the step that fits), each
   -- once; IPv6 the same 2^110 apart over 2000::/8 (a step carried into the prefix's bytes).
   gen("--src", "10.9.9.9", "--dst", "10.0.0.0/8*1000", "--flows", "1000", "--packets", "1000")
   dsts = {}
   for _, f in ipairs(read_back()) do
      local b = {f.dst:byte(1, 4)}
      local i = (b[2] * 65536 + b[3] * 256 + b[4]) / 2^14
      assert(b[1] == 10 and i == floor(i) and i < 1000 and not dsts[i], "spread " .. i)
      dsts[i] = true
   end
   gen("--ipv6", "--src", "::9", "--dst", "2000::/8*1000", "--flows", "1000", "--packets", "1000")
   dsts = {}
   for _, f in ipairs(read_back()) do
      assert(f.dst:byte(1) == 0x20 and f.dst:sub(4) == ("\0"):rep(13) and not dsts[f.dst])
      dsts[f.dst] = true
   end
   assert(dsts[v6("20f9:c000::")] and dsts[v6("2000::")], "IPv6 spread: 999 << 14 in the top 24 bits")
   -- One 802.1Q tag, IPv4 TCP: the smallest frame is still 64 bytes.
   gen("--tcp", "--vlan", "4094", "--src", "192.168.0.0/30", "--flows", "4", "--packets", "8")
   for _, f in ipairs(read_back()) do assert(f.vlans == "4094" and f.proto == 6 and f.len == 60) end

   -- Options are checked: by argparse's converters, then together (M.check).
   assert(parse:pparse({"x.pcap", "--imix", "--flows", "16", "--packets", "1e6"}))
   for _, bad in ipairs({{"x", "--size", "63"}, {"x", "--size", "1519"}, {"x", "--size", "64", "--imix"},
                         {"x", "--flows", "0"}, {"x", "--packets", "1.5"}, {"x", "--seed", "-1"},
                         {"x", "--vlan", "4095"}, {"x", "--vlan", "1,2,3"}, {"x", "--vlan", "a"},
                         {"x", "--vlan", "1,"}, {"x", "--src", "10.0.0.1/24"}, {"x", "--src", "10.0.0.0/33"},
                         {"x", "--src", "10.0.0.256"}, {"x", "--src", "255.255.255.255+2"},
                         {"x", "--src", "10.0.0.1+0"}, {"x", "--dst", "::1/"}, {"x", "--dst", "10.0.0.0/24*257"},
                         {"x", "--dst", "10.0.0.0/8*0"}, {"x", "--dst", "10.0.0.0/8*"}, {"x", "--sport", "2-1"},
                         {"x", "--dport", "65536"}}) do
      assert(not parse:pparse(bad), table.concat(bad, " "))
   end
   local function refused (message, ...)
      local ok, err = pcall(M.check, options(...))
      assert(not ok and err == message, err)
   end
   refused("--size 64 is too small for IPv6/UDP: the headers and FCS take 66 bytes", "--ipv6", "--size", "64")
   refused("--flows 5 is more than the 4 distinct flows that --src, --dst, --sport and --dport give (2 x 1 x 2 x 1)",
           "--src", "10.0.0.0/31", "--sport", "1-2", "--flows", "5")
   refused("the addresses must be of one family: --src is IPv4, --dst IPv6", "--src", "10.0.0.1", "--dst", "::1")
   refused("--ipv6, but --src is an IPv4 range", "--ipv6", "--src", "10.0.0.1")
   refused("--ipv6, but --dst is an IPv4 range", "--ipv6", "--dst", "10.0.0.1")
   local ok, err = pcall(M.generate, {file = "/nonexistent/x.pcap", packets = 1})
   assert(not ok and err == "/nonexistent/x.pcap: No such file or directory", err)
   os.remove(file)
   print("selftest: programs.gen_pcap.gen_pcap ok")
end

return M
