-- tests/pf_captures.lua: writes the generated captures of tests/data/pcap/pf/, the packets the
-- shared captures lack for testing the pcap-filter compiler (lib.pf) against libpcap: stacked VLAN
-- tags (802.1Q in 802.1Q, 802.1ad + 802.1Q, 0x9100), IPv6 with each extension header before
-- TCP/UDP/ICMPv6, IPv4 options and fragments, ICMP and ICMPv6 types, ND, RARP, SCTP, GRE, IGMP,
-- 802.3/LLC frames, broadcast and multicast addresses, the ports and nets the corpus names, and
-- frames cut short (caplen < wire length, cut inside the Ethernet, VLAN, IP and TCP headers).
-- Deterministic (fixed timestamps, no randomness): tests/pf_captures_test.sh runs it again and
-- checks the committed files are byte for byte what it writes.
-- Run: snabb tests/pf_captures.lua [DIR]   (DIR defaults to tests/data/pcap/pf)
local ffi = require("ffi")

local dir = (main and main.parameters and main.parameters[1]) or "tests/data/pcap/pf"

pcall(ffi.cdef, "int inet_pton(int af, const char *src, void *dst);")

local char, band, rshift = string.char, bit.band, bit.rshift

local function u8 (v) return char(band(v, 0xff)) end
local function u16 (v) return char(band(rshift(v, 8), 0xff), band(v, 0xff)) end
local function u32 (v) return u16(rshift(v, 16)) .. u16(band(v, 0xffff)) end

local function mac (s)
   local b = {}
   for h in s:gmatch("%x%x") do b[#b + 1] = char(tonumber(h, 16)) end
   assert(#b == 6, s)
   return table.concat(b)
end
local function addr (af, size, s)
   local buf = ffi.new("uint8_t[16]")
   assert(ffi.C.inet_pton(af, s, buf) == 1, s)
   return ffi.string(buf, size)
end
local function ip4 (s) return addr(2, 4, s) end
local function ip6 (s) return addr(10, 16, s) end

-- The Internet checksum of a string, folded, not complemented.
local function sum (s, acc)
   acc = acc or 0
   for i = 1, #s - 1, 2 do acc = acc + s:byte(i) * 256 + s:byte(i + 1) end
   if #s % 2 == 1 then acc = acc + s:byte(#s) * 256 end
   while acc > 0xffff do acc = band(acc, 0xffff) + rshift(acc, 16) end
   return acc
end
local function with_checksum (s, at, pseudo)
   local c = 0xffff - sum(s, pseudo and sum(pseudo) or 0)
   return s:sub(1, at - 1) .. u16(c) .. s:sub(at + 2)
end

-- Transport headers: {proto, bytes, checksum offset (1-based) or nil}.
local TCP = {fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10, urg = 0x20,
             ece = 0x40, cwr = 0x80}
local function tcp (sport, dport, flags, payload, options)
   local f = 0
   for name in (flags or "ack"):gmatch("%a+") do f = f + TCP[name] end
   options = options or ""
   local hlen = 20 + #options
   local acked, urgent = band(f, TCP.ack) ~= 0, band(f, TCP.urg) ~= 0
   local h = u16(sport) .. u16(dport) .. u32(0x1000 + sport) .. u32(acked and 0x2000 or 0)
      .. u8(hlen / 4 * 16) .. u8(f) .. u16(8192) .. u16(0) .. u16(urgent and 7 or 0) .. options
   return {6, h .. (payload or ""), 17}
end
local function udp (sport, dport, payload)
   payload = payload or "pf"
   return {17, u16(sport) .. u16(dport) .. u16(8 + #payload) .. u16(0) .. payload, 7}
end
local function icmp (type, code, rest, payload)
   local s = u8(type) .. u8(code) .. u16(0) .. (rest or u32(0x12340001)) .. (payload or "ping")
   return {1, with_checksum(s, 3), nil}
end
local function icmp6 (type, code, body)
   return {58, u8(type) .. u8(code) .. u16(0) .. (body or u32(0x12340001) .. "ping"), 3}
end
local function sctp (sport, dport)
   -- Common header and one DATA chunk (CRC32c left 0: tshark is told not to check it).
   return {132, u16(sport) .. u16(dport) .. u32(0xabcd) .. u32(0)
              .. u8(0) .. u8(3) .. u16(20) .. u32(1) .. u16(0) .. u16(0) .. u32(0) .. "sctp", nil}
end
local function raw (proto, bytes) return {proto, bytes, nil} end

-- IPv4: o = {src, dst, ttl, id, df, mf, frag (in 8-byte units), options, tos, len (total length
-- field override)}.
local function ipv4 (src, dst, l4, o)
   o = o or {}
   local options = o.options or ""
   assert(#options % 4 == 0)
   local body = l4[2]
   if l4[3] and not o.frag and not o.mf then
      local pseudo = ip4(src) .. ip4(dst) .. u16(l4[1]) .. u16(#body)
      body = with_checksum(body, l4[3], pseudo)
   end
   local flags = (o.df and 0x4000 or 0) + (o.mf and 0x2000 or 0) + (o.frag or 0)
   local h = u8(0x40 + 5 + #options / 4) .. u8(o.tos or 0)
      .. u16(o.len or 20 + #options + #body) .. u16(o.id or 0x1234) .. u16(flags)
      .. u8(o.ttl or 64) .. u8(l4[1]) .. u16(0) .. ip4(src) .. ip4(dst) .. options
   return 0x0800, with_checksum(h, 11) .. body
end

-- IPv6 with extension headers: ext = list of {type, bytes-after-the-first-two} (the next header
-- and length bytes are filled in), or {44, offset, more} for a fragment header.
local function ipv6 (src, dst, l4, ext, o)
   o = o or {}
   local body, final = l4[2], ip6(dst)
   for _, e in ipairs(ext or {}) do
      if e[1] == 43 then final = e[2]:sub(-16) end -- the routing header's last address
   end
   if l4[3] then
      local pseudo = ip6(src) .. final .. u32(#body) .. u32(l4[1])
      body = with_checksum(body, l4[3], pseudo)
   end
   local nh = l4[1]
   for i = #(ext or {}), 1, -1 do
      local e = ext[i]
      local h
      if e[1] == 44 then
         h = u8(nh) .. u8(0) .. u16(e[2] * 8 + (e[3] and 1 or 0)) .. u32(0xf00d)
      elseif e[1] == 51 then -- AH: length in 4-byte units minus 2
         local rest = e[2] or (u16(0) .. u32(0x100) .. u32(1) .. u32(0xaaaaaaaa))
         h = u8(nh) .. u8((#rest + 2) / 4 - 2) .. rest
      else -- hop-by-hop, routing, destination options: length in 8-byte units minus 1
         local rest = e[2] or (u8(1) .. u8(4) .. u32(0)) -- a PadN option
         h = u8(nh) .. u8((#rest + 2) / 8 - 1) .. rest
      end
      body, nh = h .. body, e[1]
   end
   local h = u32(0x60000000 + (o.flow or 0)) .. u16(o.plen or #body) .. u8(nh)
      .. u8(o.hlim or 64) .. ip6(src) .. ip6(dst)
   return 0x86dd, h .. body
end

local function arp (op, sha, spa, tha, tpa)
   return u16(1) .. u16(0x0800) .. u8(6) .. u8(4) .. u16(op) .. mac(sha) .. ip4(spa)
      .. mac(tha) .. ip4(tpa)
end

-- An Ethernet frame: tags = list of {tpid, tci}; padded to 60 bytes as a NIC would.
local HOST_A, HOST_B = "00:11:22:33:44:55", "66:77:88:99:aa:bb"
local BCAST = "ff:ff:ff:ff:ff:ff"
local function eth (dst, src, type, payload, tags)
   local s = mac(dst) .. mac(src)
   for _, t in ipairs(tags or {}) do s = s .. u16(t[1]) .. u16(t[2]) end
   s = s .. u16(type) .. payload
   if #s < 60 then s = s .. string.rep("\0", 60 - #s) end
   return s
end
-- An IP frame between the two usual hosts.
local function frame (type, payload, tags, dst, src)
   return eth(dst or HOST_B, src or HOST_A, type, payload, tags)
end

-- A capture: records are strings (whole frames) or {data, wirelen} (frames cut short).
local function write (name, records)
   local f = assert(io.open(dir .. "/" .. name, "wb"))
   f:write(u32(0xa1b2c3d4), u16(2), u16(4), u32(0), u32(0), u32(262144), u32(1))
   for i, r in ipairs(records) do
      local data, len = r, nil
      if type(r) == "table" then data, len = r[1], r[2] end
      len = len or #data
      f:write(u32(1700000000 + i), u32(i * 1000), u32(#data), u32(len), data)
   end
   f:close()
end

local Q, AD, Q9100 = 0x8100, 0x88a8, 0x9100

-- vlan.pcap: single, stacked and oddly-tagged frames.
write("vlan.pcap", {
   frame(0x0800, select(2, ipv4("192.168.1.1", "10.0.0.1", tcp(1234, 80, "syn"))), {{Q, 100}}),
   frame(0x0800, select(2, ipv4("10.0.0.2", "192.168.1.1", udp(5353, 53))), {{Q, 200}, {Q, 100}}),
   frame(0x86dd, select(2, ipv6("2001:db8::1", "2001:db8::2", tcp(443, 33000, "syn ack"))),
         {{AD, 300}, {Q, 10}}),
   eth(BCAST, HOST_A, 0x0806, arp(1, HOST_A, "192.168.1.1", "00:00:00:00:00:00", "192.168.1.2"),
       {{Q, 5}}),
   frame(0x0800, select(2, ipv4("192.168.1.2", "192.168.1.1", icmp(8, 0))), {{Q, 0}}),
   frame(0x86dd, select(2, ipv6("fe80::1", "ff02::1", icmp6(128, 0))), {{Q, 4095}},
         "33:33:00:00:00:01"),
   frame(0x0800, select(2, ipv4("10.1.2.3", "10.0.0.1", udp(53, 1024))), {{Q, 1}, {Q, 2}, {Q, 3}}),
   eth(BCAST, HOST_B, 0x0806, arp(2, HOST_B, "10.0.0.1", HOST_A, "10.0.0.2"), {{AD, 300}, {Q, 20}}),
   frame(0x86dd, select(2, ipv6("2001:db8::2", "2001:db8::1", udp(53, 65535))), {{Q, 100}, {Q, 100}}),
   frame(0x0800, select(2, ipv4("172.16.0.1", "192.168.200.1", tcp(80, 8080, "psh ack", "GET"))),
         {{Q9100, 100}}),
   eth(BCAST, HOST_A, 0x8035, arp(3, HOST_A, "0.0.0.0", HOST_A, "0.0.0.0"), {{Q, 100}}),
   -- Priority 5 and DEI set with VLAN 100: `vlan 100` masks the TCI to 12 bits.
   frame(0x0800, select(2, ipv4("192.168.1.1", "10.0.0.1", tcp(1234, 80, "ack"))),
         {{Q, 0xb000 + 100}}),
   -- IPv4 under a lone 802.1ad tag.
   frame(0x0800, select(2, ipv4("192.168.1.1", "10.0.0.1", udp(67, 68))), {{AD, 7}}),
   frame(0x0806, arp(1, HOST_A, "10.0.0.2", "00:00:00:00:00:00", "10.0.0.1"), {{Q, 100}, {Q, 200}},
         BCAST),
   -- IPv6 in three tags, the innermost VLAN 4095.
   frame(0x86dd, select(2, ipv6("2001:db8::1", "ff05::2", udp(1024, 5353))),
         {{AD, 1}, {Q, 2}, {Q, 4095}}, "33:33:00:00:00:02"),
   -- Untagged for contrast.
   frame(0x0800, select(2, ipv4("192.168.1.1", "10.0.0.1", tcp(1234, 80, "syn")))),
   -- Two tags, then a type nobody handles (LLDP's).
   frame(0x88cc, string.rep("\1", 30), {{Q, 100}, {Q, 200}}, "01:80:c2:00:00:0e"),
})

-- ip6ext.pcap: each extension header before TCP, UDP and ICMPv6, and chains of them.
local S6, D6 = "2001:db8::1", "2001:db8::2"
local HBH, RT, FRAG, DST, AH, ESP, NONE = 0, 43, 44, 60, 51, 50, 59
local routing = u8(0) .. u8(1) .. u32(0) .. ip6("2001:db8::99") -- type 0, 1 segment left
local function v6 (l4, ext, src, dst, o)
   return frame(0x86dd, select(2, ipv6(src or S6, dst or D6, l4, ext, o)))
end
write("ip6ext.pcap", {
   v6(tcp(1234, 80, "syn")),
   v6(udp(5353, 53)),
   v6(icmp6(128, 0)),
   v6(tcp(1234, 80, "syn"), {{HBH}}),
   v6(udp(53, 5353), {{HBH}}),
   v6(icmp6(129, 0), {{HBH}}),
   v6(tcp(1234, 80, "ack"), {{RT, routing}}),
   v6(udp(1024, 53), {{RT, routing}}),
   v6(icmp6(1, 4, u32(0) .. "unreach"), {{RT, routing}}),
   v6(tcp(1234, 80, "syn"), {{FRAG, 0, true}}),
   v6(raw(6, string.rep("x", 48)), {{FRAG, 185, true}}),
   v6(raw(17, string.rep("y", 40)), {{FRAG, 370, false}}),
   v6(udp(5353, 53, string.rep("z", 40)), {{FRAG, 0, true}}),
   v6(icmp6(128, 0), {{FRAG, 0, true}}),
   v6(tcp(1234, 80, "fin ack"), {{DST}}),
   v6(udp(123, 123), {{DST}}),
   v6(icmp6(128, 0), {{DST}}),
   v6(tcp(22, 65535, "psh ack", "ssh"), {{AH}}),
   v6(udp(500, 500), {{AH}}),
   v6(icmp6(128, 0), {{AH}}),
   v6(raw(ESP, u32(0x100) .. u32(1) .. string.rep("e", 24))),
   v6(raw(NONE, "")),
   v6(tcp(1234, 80, "syn"), {{HBH}, {RT, routing}, {DST}}),
   v6(udp(0, 0), {{HBH}, {DST}, {FRAG, 0, true}}),
   v6(icmp6(128, 0), {{HBH}, {AH}}),
   v6(tcp(80, 1234, "rst"), {{DST}, {FRAG, 0, false}}),
   -- Fragment header directly under a hop-by-hop, non-first (no transport header follows).
   v6(raw(6, string.rep("w", 32)), {{HBH}, {FRAG, 3, false}}),
   -- Link-local and multicast addresses, a hop limit of 255 (ND's), unspecified source.
   v6(icmp6(135, 0, u32(0) .. ip6("fe80::2") .. u8(1) .. u8(1) .. mac(HOST_A)), nil,
      "::", "ff02::1:ff00:2", {hlim = 255}),
   v6(udp(546, 547), nil, "fe80::1", "ff02::1:2"),
   -- IPv4 in IPv6 (next header 4).
   v6(raw(4, select(2, ipv4("10.0.0.1", "10.0.0.2", udp(53, 53)))), nil),
   -- A payload length past the frame's end.
   v6(udp(53, 53), nil, nil, nil, {plen = 400}),
})

-- ip4.pcap: options, fragments, ICMP types, protocols, hosts, nets and ports.
local function v4 (src, dst, l4, o, dst_mac)
   return frame(0x0800, select(2, ipv4(src, dst, l4, o)), nil, dst_mac)
end
local rr = u8(7) .. u8(11) .. u8(4) .. ip4("0.0.0.0") .. ip4("0.0.0.0") -- record route
local ra = u8(148) .. u8(4) .. u16(0) -- router alert
local long = rr .. string.rep(u8(1), 40 - #rr) -- 40 bytes of options: IHL 15
local frag_tcp = tcp(1234, 80, "psh ack", string.rep("f", 32))
local ip4_records = {
   v4("192.168.1.1", "10.0.0.1", tcp(1234, 80, "syn")),
   v4("10.0.0.1", "192.168.1.1", tcp(80, 1234, "syn ack")),
   v4("192.168.1.1", "10.0.0.1", tcp(1234, 80, "fin ack")),
   v4("10.0.0.1", "192.168.1.1", tcp(80, 1234, "rst")),
   v4("192.168.1.1", "10.0.0.1", tcp(1234, 80, "urg psh ack", "urgent")),
   v4("192.168.1.1", "10.0.0.1", tcp(1234, 80, "syn ece cwr")),
   v4("192.168.1.1", "10.0.0.1", tcp(0, 65535, "syn")),
   v4("192.168.1.1", "10.0.0.1", tcp(65535, 0, "ack")),
   v4("192.168.1.2", "8.8.8.8", udp(33333, 53, "query")),
   v4("8.8.8.8", "192.168.1.2", udp(53, 33333, "answer")),
   v4("0.0.0.0", "255.255.255.255", udp(68, 67), nil, BCAST),
   v4("192.168.1.1", "192.168.1.255", udp(137, 137), nil, BCAST),
   v4("192.168.1.1", "224.0.0.251", udp(5353, 5353), nil, "01:00:5e:00:00:fb"),
   v4("10.1.2.3", "239.255.255.250", udp(1900, 1900), {ttl = 1}, "01:00:5e:7f:ff:fa"),
   v4("192.168.1.1", "224.0.0.22", raw(2, u8(0x22) .. u8(0) .. u16(0xf9fc) .. u32(0)),
      {options = ra, ttl = 1}, "01:00:5e:00:00:16"),
   v4("10.255.255.254", "172.16.0.1", tcp(8080, 1023, "ack")),
   v4("172.16.5.4", "10.0.0.1", udp(1024, 1025)),
   v4("127.0.0.1", "127.0.0.1", udp(9999, 9999)),
   v4("192.168.0.1", "192.168.255.255", tcp(1024, 8080, "syn")),
   v4("192.169.0.1", "11.0.0.1", tcp(22, 2222, "ack")),
   -- Options: record route (IHL 8), router alert (IHL 6), 40 bytes (IHL 15).
   v4("192.168.1.1", "10.0.0.1", tcp(1234, 80, "syn"), {options = rr .. u8(0)}),
   v4("192.168.1.1", "10.0.0.1", udp(1234, 53), {options = ra}),
   v4("10.0.0.1", "192.168.1.1", icmp(0, 0), {options = long}),
   v4("10.0.0.1", "192.168.1.1", tcp(443, 65535, "psh ack", "tls"), {options = long}),
   -- Fragments: first (offset 0, MF), middle, last; of TCP, UDP and ICMP; DF alone.
   v4("192.168.1.1", "10.0.0.1", frag_tcp, {mf = true, id = 0x1111}),
   v4("192.168.1.1", "10.0.0.1", raw(6, string.rep("m", 48)), {mf = true, frag = 7, id = 0x1111}),
   v4("192.168.1.1", "10.0.0.1", raw(6, string.rep("l", 20)), {frag = 13, id = 0x1111}),
   v4("10.0.0.2", "192.168.1.2", udp(53, 1024, string.rep("u", 40)), {mf = true, id = 0x2222}),
   v4("10.0.0.2", "192.168.1.2", raw(17, string.rep("v", 24)), {frag = 6, id = 0x2222}),
   v4("10.0.0.2", "192.168.1.2", icmp(8, 0, nil, string.rep("p", 40)), {mf = true, id = 0x3333}),
   v4("10.0.0.2", "192.168.1.2", raw(1, string.rep("q", 24)), {frag = 6, id = 0x3333}),
   -- A non-first fragment whose bytes look like a TCP header to port 80.
   v4("192.168.1.1", "10.0.0.1", raw(6, u16(1234) .. u16(80) .. string.rep("\0", 16)),
      {frag = 1, id = 0x4444}),
   v4("192.168.1.1", "10.0.0.1", tcp(1234, 80, "ack"), {df = true}),
   v4("192.168.1.1", "10.0.0.1", frag_tcp, {mf = true, options = ra, id = 0x5555}),
   -- SCTP, GRE (carrying IPv4), ESP, protocol 255, TOS and TTL variety.
   v4("192.168.1.1", "10.0.0.1", sctp(5000, 80)),
   v4("10.0.0.1", "192.168.1.1", sctp(80, 5000)),
   v4("192.168.1.1", "10.0.0.1", raw(47, u16(0) .. u16(0x0800)
      .. select(2, ipv4("172.16.0.1", "172.16.0.2", icmp(8, 0))))),
   v4("192.168.1.1", "10.0.0.1", raw(50, u32(0x100) .. u32(1) .. string.rep("e", 24))),
   v4("192.168.1.1", "10.0.0.1", raw(255, "reserved"), {tos = 0xb8, ttl = 255}),
   v4("10.0.0.1", "10.0.0.2", raw(6, ""), {len = 20}), -- TCP announced, no header
}
-- ICMP of every type libpcap names, and an unnamed one.
for _, tc in ipairs({{0, 0}, {3, 0}, {3, 1}, {3, 3}, {3, 4}, {3, 13}, {4, 0}, {5, 1}, {8, 0}, {9, 0},
                    {10, 0}, {11, 0}, {11, 1}, {12, 0}, {13, 0}, {14, 0}, {15, 0}, {16, 0}, {17, 0},
                    {18, 0}, {42, 0}}) do
   ip4_records[#ip4_records + 1] = v4(tc[1] % 2 == 0 and "192.168.1.1" or "10.0.0.1",
                                      tc[1] % 2 == 0 and "10.0.0.1" or "192.168.1.1",
                                      icmp(tc[1], tc[2]))
end
write("ip4.pcap", ip4_records)

-- l2.pcap: ARP, RARP, 802.3/LLC, broadcast and multicast MACs, ICMPv6 ND and MLD, other types.
local ll_a, ll_b = "fe80::211:22ff:fe33:4455", "fe80::6677:88ff:fe99:aabb"
local function nd (type, body, src, dst, dst_mac)
   return frame(0x86dd, select(2, ipv6(src, dst, icmp6(type, 0, body), nil, {hlim = 255})), nil,
                dst_mac)
end
write("l2.pcap", {
   eth(BCAST, HOST_A, 0x0806, arp(1, HOST_A, "192.168.1.1", "00:00:00:00:00:00", "192.168.1.2")),
   eth(HOST_A, HOST_B, 0x0806, arp(2, HOST_B, "192.168.1.2", HOST_A, "192.168.1.1")),
   eth(BCAST, HOST_A, 0x8035, arp(3, HOST_A, "0.0.0.0", HOST_A, "0.0.0.0")),
   eth(HOST_A, HOST_B, 0x8035, arp(4, HOST_B, "10.0.0.1", HOST_A, "10.0.0.2")),
   -- 802.3 + LLC: an STP BPDU (length field, DSAP/SSAP 0x42) and SNAP carrying IPv4.
   eth("01:80:c2:00:00:00", HOST_A, 38, u8(0x42) .. u8(0x42) .. u8(3) .. string.rep("\0", 35)),
   eth(HOST_B, HOST_A, 8 + 20 + 10, u8(0xaa) .. u8(0xaa) .. u8(3) .. u8(0) .. u16(0) .. u16(0x0800)
       .. select(2, ipv4("192.168.1.1", "10.0.0.1", udp(53, 53)))),
   -- IPX over raw 802.3 (DSAP/SSAP 0xff) and IPX's Ethernet II type.
   eth(BCAST, HOST_A, 30, u16(0xffff) .. string.rep("\0", 28)),
   eth(BCAST, HOST_A, 0x8137, string.rep("\0", 30)),
   -- LLDP, a MAC control frame, IPv4 and IPv6 to broadcast and multicast MACs from a multicast
   -- source, a locally administered MAC.
   eth("01:80:c2:00:00:0e", HOST_A, 0x88cc, string.rep("\2", 40)),
   eth("01:80:c2:00:00:01", HOST_A, 0x8808, u16(1) .. u16(0xffff)),
   v4("192.168.1.1", "10.0.0.1", udp(53, 53), nil, "01:00:5e:01:02:03"),
   frame(0x0800, select(2, ipv4("192.168.1.1", "10.0.0.1", udp(53, 53))), nil, BCAST,
         "03:00:00:00:00:01"),
   frame(0x86dd, select(2, ipv6(ll_a, "ff02::1", icmp6(128, 0))), nil, "33:33:00:00:00:01"),
   frame(0x0800, select(2, ipv4("10.0.0.1", "10.0.0.2", udp(53, 53))), nil, "02:00:00:00:00:01",
         "02:00:00:00:00:02"),
   -- ND: router solicitation, advertisement, neighbour solicitation, advertisement, redirect;
   -- MLDv2 report; IPv6 echo between link-local hosts.
   nd(133, u32(0), ll_a, "ff02::2", "33:33:00:00:00:02"),
   nd(134, u8(64) .. u8(0) .. u16(1800) .. u32(0) .. u32(0), ll_b, "ff02::1", "33:33:00:00:00:01"),
   nd(135, u32(0) .. ip6(ll_b) .. u8(1) .. u8(1) .. mac(HOST_A), ll_a, "ff02::1:ff99:aabb",
      "33:33:ff:99:aa:bb"),
   nd(136, u32(0x60000000) .. ip6(ll_b) .. u8(2) .. u8(1) .. mac(HOST_B), ll_b, ll_a, HOST_A),
   nd(137, u32(0) .. ip6("2001:db8::9") .. ip6(ll_b), ll_b, ll_a, HOST_A),
   frame(0x86dd, select(2, ipv6(ll_a, "ff02::16", icmp6(143, 0, u16(0) .. u16(1) .. u8(4) .. u8(0)
         .. u16(0) .. ip6("ff02::fb")), {{HBH, u8(5) .. u8(2) .. u16(0) .. u8(1) .. u8(0)}},
         {hlim = 1})), nil, "33:33:00:00:00:16"),
   frame(0x86dd, select(2, ipv6(ll_a, ll_b, icmp6(128, 0)))),
   frame(0x86dd, select(2, ipv6("::1", "::1", udp(9999, 9999)))),
   frame(0x86dd, select(2, ipv6("2001:db8:1::5", "ff0e::101", udp(1234, 5678))), nil,
         "33:33:00:00:01:01"),
   -- A frame of 1514 bytes and one exactly 60 long with its IP packet shorter (padding).
   v4("192.168.1.1", "10.0.0.1", tcp(1234, 80, "psh ack", string.rep("d", 1460))),
   v4("192.168.1.1", "10.0.0.1", udp(7, 7, "")),
})

-- truncated.pcap: one TCP/IPv4 frame (and tagged/IPv6 ones) recorded with ever fewer bytes;
-- the wire length stays the frame's. A snap length of 54 + a 1514-byte frame, as tcpdump -s 54.
local full = v4("192.168.1.1", "10.0.0.1", tcp(1234, 80, "psh ack", string.rep("t", 1460)))
local tagged = frame(0x0800, select(2, ipv4("192.168.1.1", "10.0.0.1", tcp(1234, 80, "syn"))),
                     {{Q, 100}, {Q, 200}})
local six = v6(tcp(1234, 80, "syn"), {{HBH}})
local arp_req = eth(BCAST, HOST_A, 0x0806, arp(1, HOST_A, "192.168.1.1", "00:00:00:00:00:00",
                                                "192.168.1.2"))
local icmp_f = v4("10.0.0.1", "192.168.1.1", icmp(8, 0, nil, string.rep("i", 100)))
local cut = {}
local function snap (f, n) cut[#cut + 1] = {f:sub(1, n), #f} end
for _, n in ipairs({54, 1514, 100, 53, 50, 48, 47, 40, 38, 37, 36, 35, 34, 33, 30, 26, 24, 23, 20,
                    15, 14, 13, 12, 6, 1, 0}) do
   snap(full, n)
end
for _, n in ipairs({#tagged, 60, 58, 56, 42, 38, 37, 26, 22, 18, 17, 16, 14}) do snap(tagged, n) end
for _, n in ipairs({#six, 70, 63, 62, 61, 60, 55, 54, 40, 38, 22, 20}) do snap(six, n) end
for _, n in ipairs({42, 41, 38, 30, 28, 22, 21, 20}) do snap(arp_req, n) end
for _, n in ipairs({42, 38, 35, 34}) do snap(icmp_f, n) end
write("truncated.pcap", cut)
