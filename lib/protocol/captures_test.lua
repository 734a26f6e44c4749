-- lib/protocol/captures_test.lua: every packet of every capture in tests/data/pcap (lwaftr/
-- included), and a capture this test writes with what the shared ones lack (802.1ad Q-in-Q, IPv4
-- options, every IPv6 extension header, GRE, TCP options, ND advertisements), parsed with
-- lib.protocol.datagram and the header classes, field by field against what
-- `tshark -T fields` prints for the same file (run here). Then every packet cut at every length
-- is parsed from the end of a page followed by an inaccessible one: a read past the end would
-- crash the test; what parses must be what parsed from the whole packet, cut short, and the IP
-- bounds checks (ipv4.payload, ipv6.payload) must say "truncated" exactly when tshark's IP length
-- runs past the bytes captured (the snapped ICMP capture).
-- Run: bazel test //lib/protocol:captures_test
local ffi = require("ffi")
local packet = require("core.packet")
local datagram = require("lib.protocol.datagram")
local ethernet = require("lib.protocol.ethernet")
local dot1q = require("lib.protocol.dot1q")
local arp = require("lib.protocol.arp")
local ipv4 = require("lib.protocol.ipv4")
local ipv6 = require("lib.protocol.ipv6")
local icmp = require("lib.protocol.icmp.header")
local nd_header = require("lib.protocol.icmp.nd.header")
local tcp = require("lib.protocol.tcp")
local udp = require("lib.protocol.udp")
local gre = require("lib.protocol.gre")

local ok_cdef = pcall(ffi.cdef, [[
void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
int mprotect(void *addr, size_t len, int prot);]])
assert(ok_cdef or ffi.C.mmap, "mmap")

-- The records of a pcap file as strings.
local function read_pcap (file)
   local records = dofile("tests/pcap_records.lua")(file)
   for i, r in ipairs(records) do records[i] = r.data end
   return records
end

local function write_pcap (file, frames)
   local f = assert(io.open(file, "wb"))
   local hdr = ffi.new("uint32_t[6]", 0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1)
   f:write(ffi.string(hdr, 24))
   for i, frame in ipairs(frames) do
      local rec = ffi.new("uint32_t[4]", i, 0, #frame, #frame)
      f:write(ffi.string(rec, 16), frame)
   end
   f:close()
end

-- What tshark says of each packet: one table per packet, field -> first value (nil when absent).
local fields = {
   "frame.len", "frame.cap_len", "frame.protocols", "eth.dst", "eth.src", "eth.type", "vlan.id", "ieee8021ad.id",
   "arp.opcode", "arp.src.hw_mac", "arp.src.proto_ipv4", "arp.dst.proto_ipv4",
   "ip.src", "ip.dst", "ip.proto", "ip.ttl", "ip.len", "ip.hdr_len", "ip.frag_offset", "ip.id",
   "ipv6.src", "ipv6.dst", "ipv6.nxt", "ipv6.hlim", "ipv6.plen",
   "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.flags", "tcp.hdr_len",
   "tcp.options.mss_val", "tcp.options.wscale.shift", "tcp.options.timestamp.tsval",
   "udp.srcport", "udp.dstport", "udp.length", "icmp.type", "icmp.code", "icmpv6.type",
   "icmpv6.code", "icmpv6.nd.ns.target_address", "icmpv6.nd.na.target_address",
   "icmpv6.opt.linkaddr", "gre.proto", "gre.key",
}
local function tshark (file)
   local cmd = "tshark -o ip.defragment:FALSE -o ipv6.defragment:FALSE -o tcp.relative_sequence_numbers:FALSE"
      .. " -o ip.check_checksum:FALSE -n -E occurrence=f -T fields -r '" .. file .. "'"
   for _, f in ipairs(fields) do cmd = cmd .. " -e " .. f end
   local pipe = assert(io.popen(cmd .. " 2>/dev/null"))
   local packets = {}
   for line in pipe:lines() do
      local t, i = {}, 0
      for value in (line .. "\t"):gmatch("([^\t]*)\t") do
         i = i + 1
         if value ~= "" then t[fields[i]] = value end
      end
      assert(i == #fields, "tshark printed " .. i .. " fields")
      packets[#packets + 1] = t
   end
   assert(pipe:close(), "tshark failed on " .. file)
   return packets
end

-- What our parse says, in tshark's terms. Walks the datagram to the last header it can parse;
-- only the outermost of each kind is kept (tshark's first occurrence).
local function ours (p)
   local r, parsed = {}, {}
   local d = datagram:new(p, ethernet)
   local ip_offset, ip_kind, tpid
   while true do
      local h = d:parse()
      if not h then break end
      parsed[#parsed + 1] = h:name()
      local kind = h:class()
      local seen = r[kind]
      r[kind] = true
      if kind == dot1q then
         -- tshark names an 802.1ad tag's VLAN ieee8021ad.id, an 802.1Q tag's vlan.id.
         r[tpid == 0x88a8 and "ieee8021ad.id" or "vlan.id"] = tostring(h:vid())
      end
      if kind == ethernet or kind == dot1q then tpid = h:type() end
      if (kind == ipv4 or kind == ipv6) and not ip_kind then
         ip_kind, ip_offset = kind, d._parse.offset - h:sizeof()
      end
      if not r.l4_offset and (kind == tcp or kind == udp or kind == icmp or kind == gre) then
         r.l4_offset, r.l4_proto = d._parse.offset - h:sizeof(), ({[tcp] = 6, [udp] = 17,
            [gre] = 47, [icmp] = ip_kind == ipv6 and 58 or 1})[kind]
      end
      if not seen then
         if kind == ethernet then
            r["eth.dst"], r["eth.src"] = ethernet:ntop(h:dst()), ethernet:ntop(h:src())
            r["eth.type"] = ("0x%04x"):format(h:type())
         elseif kind == arp then
            r["arp.opcode"] = tostring(h:oper())
            r["arp.src.hw_mac"] = ethernet:ntop(h:sha())
            r["arp.src.proto_ipv4"], r["arp.dst.proto_ipv4"] = ipv4:ntop(h:spa()), ipv4:ntop(h:tpa())
         elseif kind == ipv4 then
            r["ip.src"], r["ip.dst"] = ipv4:ntop(h:src()), ipv4:ntop(h:dst())
            r["ip.proto"], r["ip.ttl"] = tostring(h:protocol()), tostring(h:ttl())
            r["ip.len"], r["ip.hdr_len"] = tostring(h:total_length()), tostring(h:sizeof())
            r["ip.frag_offset"], r["ip.id"] = tostring(h:frag_off()), ("0x%04x"):format(h:id())
         elseif kind == ipv6 then
            r["ipv6.src"], r["ipv6.dst"] = ipv6:ntop(h:src()), ipv6:ntop(h:dst())
            r["ipv6.nxt"], r["ipv6.hlim"] = tostring(h:next_header()), tostring(h:hop_limit())
            r["ipv6.plen"] = tostring(h:payload_length())
         elseif kind == tcp then
            r["tcp.srcport"], r["tcp.dstport"] = tostring(h:src_port()), tostring(h:dst_port())
            r["tcp.seq_raw"], r["tcp.flags"] = tostring(h:seq_num()), ("0x%04x"):format(h:flags())
            r["tcp.hdr_len"] = tostring(h:sizeof())
            r["tcp.options.mss_val"] = h:mss() and tostring(h:mss())
            r["tcp.options.wscale.shift"] = h:wscale() and tostring(h:wscale())
            r["tcp.options.timestamp.tsval"] = h:timestamps() and tostring((h:timestamps()))
         elseif kind == udp then
            r["udp.srcport"], r["udp.dstport"] = tostring(h:src_port()), tostring(h:dst_port())
            r["udp.length"] = tostring(h:length())
         elseif kind == icmp then
            local v6 = r[ipv6] and not r[ipv4]
            r[v6 and "icmpv6.type" or "icmp.type"] = tostring(h:type())
            r[v6 and "icmpv6.code" or "icmp.code"] = tostring(h:code())
         elseif kind == require("lib.protocol.icmp.nd.ns")
             or kind == require("lib.protocol.icmp.nd.na") then
            local which = kind == require("lib.protocol.icmp.nd.ns") and "ns" or "na"
            r["icmpv6.nd." .. which .. ".target_address"] = ipv6:ntop(h:target())
            local mem, len = d:payload()
            local ll = nd_header.find_lladdr(mem, len, which == "ns" and 1 or 2)
            r["icmpv6.opt.linkaddr"] = ll and ethernet:ntop(ll)
         elseif kind == gre then
            r["gre.proto"] = ("0x%04x"):format(h:protocol())
            r["gre.key"] = h:key() and ("0x%08x"):format(h:key())
         end
      end
   end
   return r, table.concat(parsed, "/"), ip_offset, ip_kind
end

-- tshark's ICMP dissector also decodes the packet an ICMP error quotes: its TCP/UDP fields are
-- not headers of this packet (we stop at ICMP), so those are left out when ICMP is in the list.
local function comparable (field, t)
   -- We read link-layer options of Neighbor Solicitations and Advertisements only.
   if field == "icmpv6.opt.linkaddr" then
      return t["icmpv6.type"] == "135" or t["icmpv6.type"] == "136"
   end
   if field:match("^tcp%.") or field:match("^udp%.") then
      return not (t["frame.protocols"] or ""):match("icmp")
   end
   return field ~= "frame.len" and field ~= "frame.cap_len" and field ~= "frame.protocols"
end

local checked, packets_seen, mismatches, l4_checked = {}, 0, {}, 0
local function compare (file)
   local records, reference = read_pcap(file), tshark(file)
   assert(#records == #reference, ("%s: %d records, tshark printed %d"):format(file, #records,
                                                                              #reference))
   local truncated = 0
   for i, data in ipairs(records) do
      local p = packet.from_string(data)
      local r, parsed, ip_offset, ip_kind = ours(p)
      local t = reference[i]
      for _, field in ipairs(fields) do
         if comparable(field, t) and r[field] ~= t[field] then
            mismatches[#mismatches + 1] = ("%s #%d (%s): %s: ours %s, tshark %s"):format(
               file, i, parsed, field, tostring(r[field]), tostring(t[field]))
         elseif t[field] and comparable(field, t) then
            checked[field] = (checked[field] or 0) + 1
         end
      end
      -- The bounds checks: truncated exactly when the IP length runs past the capture.
      if ip_offset then
         -- The outer IP header's length (tshark's ip.len is an inner IPv4's under IPv6).
         local iplen = ip_kind == ipv4 and tonumber(t["ip.len"]) or tonumber(t["ipv6.plen"]) + 40
         local want = ip_offset + iplen > #data
         local f = ip_kind.payload
         local proto, why = f(p.data + ip_offset, p.length - ip_offset)
         if want then truncated = truncated + 1 end
         -- The bounds check's upper layer is where the datagram (and tshark) found it.
         -- (IPv4 or IPv6 in IPv6: the walk stops at the inner IP header, the datagram goes on.)
         if proto and proto ~= 4 and proto ~= 41 and r.l4_offset
            and (proto ~= r.l4_proto or ip_offset + why ~= r.l4_offset) then
            mismatches[#mismatches + 1] = ("%s #%d: %s.payload says protocol %d at %d, the"
               .. " datagram %d at %d"):format(file, i, ip_kind:name(), proto, ip_offset + why,
                                               r.l4_proto, r.l4_offset)
         end
         if proto and proto ~= 4 and proto ~= 41 then l4_checked = l4_checked + 1 end
         if (why == "truncated") ~= want or (not want and not proto) then
            mismatches[#mismatches + 1] = ("%s #%d: bounds check says %s, IP length %d at %d of %d"
               .. " bytes"):format(file, i, tostring(why or proto), iplen, ip_offset, #data)
         end
      end
      packet.free(p)
      packets_seen = packets_seen + 1
   end
   return #records, truncated
end

-- Frames for what the shared captures lack, built with the classes themselves.
local function frame (headers, payload_len)
   local parts = {}
   for _, h in ipairs(headers) do parts[#parts + 1] = ffi.string(h:header_ptr(), h:sizeof()) end
   parts[#parts + 1] = ("\171"):rep(payload_len or 0)
   return table.concat(parts)
end
local function raw (bytes) return {header_ptr = function () return bytes end,
                                   sizeof = function () return #bytes end} end
local function synthetic ()
   local mac1, mac2 = ethernet:pton("02:00:00:00:00:01"), ethernet:pton("33:33:00:00:00:01")
   local a4, b4 = ipv4:pton("192.0.2.1"), ipv4:pton("198.51.100.7")
   local a6, b6 = ipv6:pton("2001:db8::1"), ipv6:pton("2001:db8:1::abcd")
   local frames = {}
   -- 802.1ad + 802.1Q + IPv4 with 8 bytes of options (two NOPs, an end of list) + UDP.
   local ip = ipv4:new({src = a4, dst = b4, protocol = 17, ttl = 9, id = 77,
                        total_length = 28 + 8 + 4})
   local ipbytes = ffi.string(ip:header_ptr(), 20) .. "\1\1\0\0\0\0\0\0"
   local buf = ffi.new("uint8_t[28]")
   ffi.copy(buf, ipbytes, 28)
   buf[0] = 0x47
   local withopt = ipv4:new_from_mem(buf, 28)
   withopt:checksum()
   frames[#frames + 1] = frame({ethernet:new({src = mac1, dst = mac2, type = 0x88a8}),
      dot1q:new({vid = 300, type = 0x8100}), dot1q:new({vid = 42, pcp = 3, type = 0x0800}),
      withopt, udp:new({src_port = 5000, dst_port = 53, length = 12})}, 4)
   -- IPv6 with hop-by-hop, routing, destination options, fragment (first), AH, then TCP with
   -- MSS, window scale, SACK permitted and timestamps.
   local t = tcp:new({src_port = 40000, dst_port = 443, seq_num = 123456789, syn = 1,
                      window_size = 1000, offset = 10})
   local tcpbytes = ffi.string(t:header_ptr(), 20)
      .. "\2\4\5\180\4\2\8\10\0\0\3\232\0\0\0\0\1\3\3\7"
   local ext = "\43\0\1\4\0\0\0\0" -- hop-by-hop: next routing, PadN
      .. "\60\2\0\0\0\0\0\0" .. ("\0"):rep(16) -- routing type 0, 0 segments left, 24 bytes
      .. "\44\0\1\4\0\0\0\0" -- destination options: next fragment
      .. "\51\0\0\1\0\0\0\9" -- fragment: next AH, offset 0, M=1, id 9
      .. "\6\1\0\0\0\0\1\0\0\0\0\1" -- AH: next TCP, 12 bytes (SPI 256, seq 1), no ICV
   local ip6 = ipv6:new({src = a6, dst = b6, next_header = 0, hop_limit = 7,
                         payload_length = #ext + #tcpbytes})
   frames[#frames + 1] = frame({ethernet:new({src = mac1, dst = mac2, type = 0x86dd}), ip6,
                                raw(ext), raw(tcpbytes)})
   -- A later IPv6 fragment: no upper-layer header past its fragment header.
   local ip6b = ipv6:new({src = a6, dst = b6, next_header = 44, hop_limit = 7, payload_length = 16})
   frames[#frames + 1] = frame({ethernet:new({src = mac1, dst = mac2, type = 0x86dd}), ip6b,
                                raw("\6\0\0\32\0\0\0\9")}, 8)
   -- GRE with a key carrying Ethernet + IPv4 + ICMP echo.
   local inner_ip = ipv4:new({src = b4, dst = a4, protocol = 1, ttl = 64, total_length = 20 + 8})
   local echo = icmp:new(8, 0)
   echo:checksum(ffi.cast("uint8_t *", "\0\1\0\2"), 4)
   frames[#frames + 1] = frame({ethernet:new({src = mac1, dst = mac2, type = 0x0800}),
      ipv4:new({src = a4, dst = b4, protocol = 47, ttl = 1, total_length = 20 + 8 + 14 + 28}),
      gre:new({protocol = 0x6558, key = 0x01020304}),
      ethernet:new({src = mac2, dst = mac1, type = 0x0800}), inner_ip, echo, raw("\0\1\0\2")})
   -- A Neighbor Advertisement with a target link-layer address option.
   local na = require("lib.protocol.icmp.nd.na"):new(a6, 1, 1, 1)
   local opt_ll = "\2\1" .. ffi.string(mac1, 6)
   local ip6c = ipv6:new({src = a6, dst = b6, next_header = 58, hop_limit = 255,
                          payload_length = 4 + 20 + 8})
   local icmp6 = icmp:new(136, 0)
   local body = ffi.string(na:header_ptr(), 20) .. opt_ll
   icmp6:checksum(ffi.cast("uint8_t *", body), #body, ip6c)
   frames[#frames + 1] = frame({ethernet:new({src = mac1, dst = mac2, type = 0x86dd}), ip6c, icmp6,
                                raw(body)})
   return frames
end

-- Every cut of every packet, at the end of a page before an inaccessible one: parsing stops
-- inside the bytes given, and what parses is what the whole packet gave, cut short.
local PAGE = 4096
local mem = ffi.cast("uint8_t *", ffi.C.mmap(nil, 2 * PAGE, 3, 0x22, -1, 0))
assert(mem ~= ffi.cast("uint8_t *", -1) and ffi.C.mprotect(mem + PAGE, PAGE, 0) == 0)
local classes_of = {[0x0800] = ipv4, [0x86dd] = ipv6}
local function walk (ptr, len)
   local n, off, class = 0, 0, ethernet
   while class do
      local h = class:new_from_mem(ptr + off, len - off)
      if not h then break end
      n, off, class = n + 1, off + h:sizeof(), h:upper_layer()
      h:free()
   end
   -- The bounds checks and option walkers too.
   if len >= 14 then
      local ip = classes_of[ptr[12] * 256 + ptr[13]]
      if ip then ip.payload(ptr + 14, len - 14) end
   end
   nd_header.find_lladdr(ptr, len, 1)
   return n, off
end
local cuts = 0
local function cut_everywhere (data)
   local whole_n = walk(ffi.cast("const uint8_t *", data), #data)
   for len = 0, math.min(#data, PAGE) do
      local at = mem + PAGE - len
      ffi.copy(at, data, len)
      local n, off = walk(at, len)
      assert(n <= whole_n and off <= len, "parsed past the bytes given")
      -- A cut packet has the same headers through the datagram too.
      local p = packet.from_pointer(at, len)
      local d = datagram:new(p, ethernet)
      local m = 0
      while d:parse() do m = m + 1 end
      assert(m == n, ("datagram parsed %d headers, new_from_mem %d, of %d bytes"):format(m, n, len))
      packet.free(p)
      cuts = cuts + 1
   end
end

local dir = "tests/data/pcap"
local files = {}
for name in io.popen("ls " .. dir .. "/*.pcap " .. dir .. "/lwaftr/*.pcap"):lines() do
   if not name:match("loopback%-sll") then files[#files + 1] = name end -- not Ethernet
end
table.sort(files)
local tmp = os.tmpname()
write_pcap(tmp, synthetic())
files[#files + 1] = tmp
local snapped
for _, file in ipairs(files) do
   local n, truncated = compare(file)
   print(("%-48s %4d packets, %d truncated"):format(file == tmp and "(synthetic)" or file, n,
                                                     truncated))
   if file:match("icmp%-snapped") then snapped = truncated end
   for _, data in ipairs(read_pcap(file)) do cut_everywhere(data) end
end
os.remove(tmp)
assert(snapped == 6, "icmp-snapped.pcap: 6 truncated packets expected, got " .. tostring(snapped))
if #mismatches > 0 then
   for i = 1, math.min(#mismatches, 30) do print(mismatches[i]) end
   error(#mismatches .. " fields differ from tshark's")
end
local names = {}
for field, n in pairs(checked) do names[#names + 1] = field .. " " .. n end
table.sort(names)
print(table.concat(names, ", "))
-- Each kind of field was compared at least once (a field we never saw would test nothing).
for _, field in ipairs(fields) do
   assert(not comparable(field, {}) or checked[field], "never compared: " .. field)
end
print(("captures_test: %d packets agree with tshark (%d IP bounds checks found the upper layer"
       .. " where the datagram did); %d cuts parsed within bounds"):format(packets_seen,
       l4_checked, cuts))
