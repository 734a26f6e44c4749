-- lib.pf.expand: the semantics of pcap-filter(7) on Ethernet (lib/pf/README.md). It turns
-- lib.pf.parse's syntax tree into a boolean tree of tests over packet loads, the tests libpcap
-- 1.10.3's gencode.c generates for DLT_EN10MB, in the same order and with the same quirks:
-- `host` means ip, arp or rarp; `port` is tcp, udp or sctp over ip6 (tested first) or ip, false
-- on a non-first IPv4 fragment; `vlan` moves every later network-layer offset by 4, in the order
-- the expression is written (libpcap generates code while it parses); `tcp[...]` and the like
-- test their protocol first, and an arithmetic operator keeps only its left operand's protocol
-- tests (gen_arth drops the right one's). Names are resolved as libpcap does, through the C
-- library: getaddrinfo for hosts and ports, getnetbyname, getprotobyname, ether_hostton.
--
-- The tree (lib.pf.optimize's input): {"true"}, {"false"}, {"and", A, B}, {"or", A, B},
-- {"not", A}, {"pchain", IP6, PROTO, OFFSET} (gen_protochain's walk of the headers), {"cmp", OP,
-- X, Y} with OP "==", ">", ">=" or "&" (X & Y ~= 0, BPF's jset) over
-- arithmetic: {"k", N} (0..2^32-1), {"len"} (the wire length), {"ld", SIZE, X, K[, IND]} (SIZE
-- bytes big-endian at offset X + K, X an arithmetic value or nil; IND true for a packet access
-- with a constant index), {"op", OP, X, Y} (BPF's unsigned
-- 32-bit + - * / % & | ^ << >>) and {"neg", X}.

local ffi = require("ffi")
local bit = require("bit")

local M = {}

local U32 = 4294967296

local TRUE, FALSE = {"true"}, {"false"}

-- A failure in the user's terms: caught by lib.pf.compile, reported with the column of node.
local function fail(node, fmt, ...)
   error({col = node and node.col or 1, message = fmt:format(...)}, 0)
end

-- The same for the number after a keyword (`vlan 5000`), which has no node of its own:
-- lib.pf finds its column in the text (value_of).
local function fail_value(node, fmt, ...)
   error({col = node.col, value_of = node.tag, message = fmt:format(...)}, 0)
end

local function AND(a, b)
   if a == nil then return b elseif b == nil then return a end
   if a[1] == "true" then return b elseif a[1] == "false" then return FALSE end
   if b[1] == "true" then return a end
   return {"and", a, b}
end
local function OR(a, b)
   if a[1] == "true" then return TRUE elseif a[1] == "false" then return b end
   if b[1] == "false" then return a end
   return {"or", a, b}
end
local function NOT(a)
   if a[1] == "true" then return FALSE elseif a[1] == "false" then return TRUE end
   return {"not", a}
end

local function k(v) return {"k", v} end
local function ld(size, off, x) return {"ld", size, x, off} end
local function cmp(op, a, b) return {"cmp", op, a, b} end
local function eq(a, v) return cmp("==", a, k(v)) end

-- BPF's 32-bit arithmetic on constants (folded here, as libpcap's optimizer does).
local function fold(op, x, y)
   local r
   if op == "+" then r = (x + y) % U32
   elseif op == "-" then r = (x - y) % U32
   elseif op == "*" then
      r = (x * (y % 65536) + ((x * math.floor(y / 65536)) % 65536) * 65536) % U32
   elseif op == "/" then r = math.floor(x / y)
   elseif op == "%" then r = x % y
   elseif op == "&" then r = bit.band(x, y) % U32
   elseif op == "|" then r = bit.bor(x, y) % U32
   elseif op == "^" then r = bit.bxor(x, y) % U32
   elseif op == "<<" then r = y < 32 and bit.lshift(x, y) % U32 or 0
   elseif op == ">>" then r = y < 32 and bit.rshift(x, y) % U32 or 0
   end
   return r
end

---- Name resolution through the C library, as libpcap's nametoaddr.c does it.

ffi.cdef([[
struct pf_addrinfo {
   int ai_flags, ai_family, ai_socktype, ai_protocol;
   unsigned int ai_addrlen;
   uint8_t *ai_addr;
   char *ai_canonname;
   struct pf_addrinfo *ai_next;
};
int getaddrinfo(const char *node, const char *service, const struct pf_addrinfo *hints,
                struct pf_addrinfo **res);
void freeaddrinfo(struct pf_addrinfo *res);
struct pf_protoent { char *p_name; char **p_aliases; int p_proto; };
struct pf_protoent *getprotobyname(const char *name);
struct pf_netent { char *n_name; char **n_aliases; int n_addrtype; uint32_t n_net; };
struct pf_netent *getnetbyname(const char *name);
int ether_hostton(const char *hostname, uint8_t *addr);
]])

local AF_INET, AF_INET6 = 2, 10
local SOCK_STREAM, SOCK_DGRAM, IPPROTO_TCP, IPPROTO_UDP = 1, 2, 6, 17
local EAI_NONAME, EAI_SERVICE = -2, -8

local function addrinfo(node, service, socktype, protocol)
   local hints = ffi.new("struct pf_addrinfo")
   hints.ai_socktype, hints.ai_protocol = socktype, protocol
   local res = ffi.new("struct pf_addrinfo *[1]")
   local err = ffi.C.getaddrinfo(node, service, hints, res)
   if err ~= 0 then return nil, err end
   local out = {}
   local ai = res[0]
   while ai ~= nil do
      if ai.ai_addr ~= nil then
         local family = ffi.cast("uint16_t *", ai.ai_addr)[0]
         local a = {family = family, port = ai.ai_addr[2] * 256 + ai.ai_addr[3]}
         if family == AF_INET then
            a.addr = ((ai.ai_addr[4] * 256 + ai.ai_addr[5]) * 256 + ai.ai_addr[6]) * 256
               + ai.ai_addr[7]
         elseif family == AF_INET6 then
            a.bytes = {}
            for i = 0, 15 do a.bytes[i + 1] = ai.ai_addr[8 + i] end
         end
         out[#out + 1] = a
      end
      ai = ai.ai_next
   end
   ffi.C.freeaddrinfo(res[0])
   return out
end

-- pcap_nametoport: the port and protocol (6, 17, or nil when both) of a service name.
local function nametoport(name)
   local ports = {}
   for i, spec in ipairs({{SOCK_STREAM, IPPROTO_TCP}, {SOCK_DGRAM, IPPROTO_UDP}}) do
      local res, err = addrinfo(nil, name, spec[1], spec[2])
      if not res then
         if err ~= EAI_NONAME and err ~= EAI_SERVICE then return nil end
      else
         for _, a in ipairs(res) do
            if a.family == AF_INET or a.family == AF_INET6 then ports[i] = a.port; break end
         end
      end
   end
   local tcp, udp = ports[1], ports[2]
   if tcp then
      if udp == tcp then return tcp, nil end
      return tcp, IPPROTO_TCP
   end
   if udp then return udp, IPPROTO_UDP end
   if name == "nfs" then return 2049, nil end
   return nil
end

local ETHERTYPE = {aarp = 0x80f3, arp = 0x0806, atalk = 0x809b, decnet = 0x6003, ip = 0x0800,
   ip6 = 0x86dd, lat = 0x6004, loopback = 0x9000, mopdl = 0x6001, moprc = 0x6002, rarp = 0x8035,
   sca = 0x6007}
local LLC = {iso = 0xfe, stp = 0x42, ipx = 0xe0, netbeui = 0xf0}

---- Code generation state and the link layer (gencode.c's gen_linktype and friends).

local E -- per-expansion state: linktype and linkpl offsets, moved by vlan/mpls/pppoes

local ETHERMTU = 1500

local function linktype_ld() return ld(2, E.linktype) end

local function snap(org, ptype)
   -- gen_bcmp over the 8 bytes AA AA 03 OUI TYPE at the LLC header: the last 4, then the first.
   local w0 = 0xaaaa0300 + bit.rshift(org, 16)
   local w1 = bit.band(org, 0xffff) * 65536 + ptype
   return AND(eq(ld(4, E.linkpl + 4), w1), eq(ld(4, E.linkpl), w0))
end

local function not_gt_mtu() return NOT(cmp(">", linktype_ld(), k(ETHERMTU))) end

local function linktype(p)
   if E.mpls > 0 then
      -- gen_mpls_linktype: bottom of the label stack, then the version nibble.
      local bos = eq({"op", "&", ld(1, E.linkpl - 2), k(1)}, 1)
      if p == 0x0800 then
         return AND(bos, eq({"op", "&", ld(1, E.linkpl), k(0xf0)}, 0x40))
      elseif p == 0x86dd then
         return AND(bos, eq({"op", "&", ld(1, E.linkpl), k(0xf0)}, 0x60))
      end
      fail(E.node, "unsupported protocol over mpls")
   end
   if p == 0xfe or p == 0x06 or p == 0xf0 then
      return AND(not_gt_mtu(), eq(ld(2, E.linkpl), p * 256 + p))
   elseif p == 0xe0 then
      local b1 = OR(eq(ld(1, E.linkpl), 0xe0), eq(ld(2, E.linkpl), 0xffff))
      b1 = OR(snap(0, 0x8137), b1)
      b1 = AND(not_gt_mtu(), b1)
      return OR(eq(linktype_ld(), 0x8137), b1)
   elseif p == 0x809b or p == 0x80f3 then
      local b1 = p == 0x809b and snap(0x080007, 0x809b) or snap(0, 0x80f3)
      return OR(eq(linktype_ld(), p), AND(not_gt_mtu(), b1))
   elseif p <= ETHERMTU then
      return AND(not_gt_mtu(), eq(ld(1, E.linktype + 2), p))
   end
   return eq(linktype_ld(), p)
end

local IP, IP6, ARP, RARP = 0x0800, 0x86dd, 0x0806, 0x8035

local function ipfrag() -- not a non-first fragment
   return NOT(cmp("&", ld(2, E.linkpl + 6), k(0x1fff)))
end

-- The IPv4 header length, BPF's ldxb 4*([linkpl]&0xf).
local function iphl()
   return {"op", "<<", {"op", "&", ld(1, E.linkpl), k(15)}, k(2)}
end

---- Protocols (gen_proto, gen_proto_abbrev).

local ISO_ESIS, ISO_ISIS, ISO_CLNP = 0x82, 0x83, 0x81

local proto

function proto(v, p, dir, node)
   if dir then fail(node, "direction applied to 'proto'") end
   if p == nil then
      return OR(proto(v, "ip"), proto(v, "ip6"))
   elseif p == "link" then return linktype(v)
   elseif p == "ip" then return AND(linktype(IP), eq(ld(1, E.linkpl + 9), v))
   elseif p == "ip6" then
      local b1 = AND(eq(ld(1, E.linkpl + 6), 44), eq(ld(1, E.linkpl + 40), v))
      b1 = OR(eq(ld(1, E.linkpl + 6), v), b1)
      return AND(linktype(IP6), b1)
   elseif p == "iso" then
      return AND(linktype(0xfe), eq(ld(1, E.linkpl + 3), v))
   elseif p == "isis" then
      return AND(proto(ISO_ISIS, "iso"), eq(ld(1, E.linkpl + 3 + 4), v))
   end
   local msg = {arp = "arp does not encapsulate another protocol",
      rarp = "rarp does not encapsulate another protocol",
      atalk = "AppleTalk encapsulation is not specifiable",
      decnet = "DECNET encapsulation is not specifiable",
      lat = "LAT does not encapsulate another protocol",
      sca = "SCA does not encapsulate another protocol",
      moprc = "MOPRC does not encapsulate another protocol",
      mopdl = "MOPDL does not encapsulate another protocol",
      clnp = "'clnp proto' is not supported"}
   fail(node, msg[p] or ("'" .. p .. " proto' is bogus"))
end

local ABBREV_IP = {tcp = {6}, udp = {17}, sctp = {132}, icmp = {1, "ip"}, igmp = {2, "ip"},
   igrp = {9, "ip"}, pim = {103}, vrrp = {112, "ip"}, carp = {112, "ip"}, icmp6 = {58, "ip6"},
   ah = {51}, esp = {50}, esis = {ISO_ESIS, "iso"}, isis = {ISO_ISIS, "iso"},
   clnp = {ISO_CLNP, "iso"}}
local ABBREV_LINK = {ip = IP, arp = ARP, rarp = RARP, atalk = 0x809b, aarp = 0x80f3,
   decnet = 0x6003, sca = 0x6007, lat = 0x6004, mopdl = 0x6001, moprc = 0x6002, ip6 = IP6,
   iso = 0xfe, stp = 0x42, ipx = 0xe0, netbeui = 0xf0}
local ISIS = {l1 = {15, 17, 18, 24, 26}, l2 = {16, 17, 20, 25, 27}, iih = {15, 16, 17},
   lsp = {18, 20}, snp = {24, 25, 26, 27}, csnp = {24, 25}, psnp = {26, 27}}

local function abbrev(p, node)
   if ABBREV_IP[p] then return proto(ABBREV_IP[p][1], ABBREV_IP[p][2])
   elseif ABBREV_LINK[p] then return linktype(ABBREV_LINK[p])
   elseif ISIS[p] then
      -- gen_or(b0, b1): each new test goes before the ones so far, but the first two.
      local t = ISIS[p]
      local b = OR(proto(t[1], "isis"), proto(t[2], "isis"))
      for i = 3, #t do b = OR(proto(t[i], "isis"), b) end
      return b
   elseif p == "link" then fail(node, "link layer applied in wrong context")
   elseif p == "radio" then fail(node, "'radio' is not a valid protocol type") end
   fail(node, "'%s' is not supported on Ethernet", p)
end

---- Hosts and nets (gen_host, gen_host6, gen_ehostop).

local function dirop(dir, src, dst, node, what)
   if dir == "src" then return src()
   elseif dir == "dst" then return dst()
   elseif dir == "src and dst" then return AND(src(), dst())
   elseif dir == nil or dir == "src or dst" then return OR(src(), dst()) end
   local names = {addr1 = "'addr1' and 'address1' are", addr2 = "'addr2' and 'address2' are",
      addr3 = "'addr3' and 'address3' are", addr4 = "'addr4' and 'address4' are",
      ra = "'ra' is", ta = "'ta' is"}
   if what == "ether" then
      fail(node, "%s only supported on 802.11 with 802.11 headers", names[dir])
   end
   fail(node, "%s not %s qualifier%s %s", names[dir],
      names[dir]:match("are$") and "valid" or "a valid",
      names[dir]:match("are$") and "s for" or " for", what)
end

-- gen_mcmp: a 32-bit field under a mask. Under mask 0 libpcap's optimizer folds the test to
-- true and drops the load (so `net ::/0` reads nothing past the ethertype); without the
-- optimizer (protochain) the load stays.
local function mcmp32(off, mask, v)
   if mask == 0 and not E.unoptimized then return TRUE end
   local a = ld(4, off)
   if mask ~= 0xffffffff then a = {"op", "&", a, k(mask)} end
   return cmp("==", a, k(v))
end

local function hostop(addr, mask, dir, ethertype, src, dst, node)
   local function one(off)
      return function ()
         return AND(linktype(ethertype), mcmp32(E.linkpl + off, mask, addr))
      end
   end
   return dirop(dir, one(src), one(dst), node, "addresses other than 802.11 MAC addresses")
end

local HOST_NOT_IMPLEMENTED = {atalk = "AppleTalk", lat = "LAT", sca = "SCA", moprc = "MOPRC",
   mopdl = "MOPDL", aarp = "AARP", iso = "ISO", ipx = "IPX"}

-- gen_dnhostop: a DECnet address in the four routing header layouts (compared as libpcap
-- does on a little-endian machine, byte-swapped).
local function dnhostop(addr, dir, node)
   local a = ffi.abi("le") and bit.rshift(bit.bswap(addr), 16) or addr -- ntohs
   local le = ffi.abi("le")
   local function one(lh, sh)
      return function ()
         local pl = E.linkpl
         local function m16(v, mask) return eq({"op", "&", ld(2, pl + 2), k(mask)}, v) end
         local function m8(v) return eq({"op", "&", ld(1, pl + 2), k(7)}, v) end
         local long, short, mask = 0x0681, 0x0281, 0x07ff -- ntohs'ed, as libpcap does
         if le then long, short, mask = 0x8106, 0x8102, 0xff07 end
         local b1 = AND(m16(long, mask), eq(ld(2, pl + 2 + 1 + lh), a))
         b1 = OR(AND(m8(6), eq(ld(2, pl + 2 + lh), a)), b1)
         b1 = OR(AND(m16(short, mask), eq(ld(2, pl + 2 + 1 + sh), a)), b1)
         b1 = OR(AND(m8(2), eq(ld(2, pl + 2 + sh), a)), b1)
         return AND(linktype(0x6003), b1)
      end
   end
   return dirop(dir, one(15, 3), one(7, 1), node, "addresses other than 802.11 MAC addresses")
end

local host

function host(addr, mask, p, dir, kind, node)
   local typestr = kind == "net" and "net" or "host"
   if p == nil then
      local b0 = host(addr, mask, "ip", dir, kind, node)
      if E.mpls == 0 then
         local b1 = OR(b0, host(addr, mask, "arp", dir, kind, node))
         b0 = OR(b1, host(addr, mask, "rarp", dir, kind, node))
      end
      return b0
   elseif p == "ip" then return hostop(addr, mask, dir, IP, 12, 16, node)
   elseif p == "arp" then return hostop(addr, mask, dir, ARP, 14, 24, node)
   elseif p == "rarp" then return hostop(addr, mask, dir, RARP, 14, 24, node)
   elseif p == "link" then fail(node, "link-layer modifier applied to %s", typestr)
   elseif p == "ip6" then fail(node, "'ip6' modifier applied to ip host")
   elseif p == "decnet" then return dnhostop(addr, dir, node)
   elseif HOST_NOT_IMPLEMENTED[p] then
      fail(node, "%s host filtering not implemented", HOST_NOT_IMPLEMENTED[p])
   end
   fail(node, "'%s' modifier applied to %s", p, typestr)
end

local function host6(bytes, mbytes, p, dir, kind, node)
   local typestr = kind == "net" and "net" or "host"
   if p == nil or p == "ip6" then
      local function one(off)
         return function ()
            local b
            for w = 3, 0, -1 do
               local a, m = 0, 0
               for i = 1, 4 do
                  a = a * 256 + bytes[w * 4 + i]
                  m = m * 256 + mbytes[w * 4 + i]
               end
               local t = mcmp32(E.linkpl + off + w * 4, m, a)
               b = b and AND(t, b) or t
            end
            return AND(linktype(IP6), b)
         end
      end
      return dirop(dir, one(8), one(24), node, "addresses other than 802.11 MAC addresses")
   end
   local names = {link = "link-layer modifier", atalk = "AppleTalk modifier"}
   fail(node, "%s applied to ip6 %s", names[p] or ("'" .. p .. "' modifier"), typestr)
end

local function ehost(bytes, dir, node)
   local function one(off)
      return function ()
         local w = ((bytes[3] * 256 + bytes[4]) * 256 + bytes[5]) * 256 + bytes[6]
         return AND(eq(ld(4, off + 2), w), eq(ld(2, off), bytes[1] * 256 + bytes[2]))
      end
   end
   return dirop(dir, one(6), one(0), node, "ether")
end

---- Ports (gen_port, gen_port6, gen_portrange, gen_portrange6).

local function portatom(off, v, lo, hi)
   local x = ld(2, E.linkpl + off, iphl())
   if lo then return AND(cmp(">=", x, k(lo)), NOT(cmp(">", x, k(hi)))) end
   return eq(x, v)
end
local function portatom6(off, v, lo, hi)
   local x = ld(2, E.linkpl + 40 + off)
   if lo then return AND(cmp(">=", x, k(lo)), NOT(cmp(">", x, k(hi)))) end
   return eq(x, v)
end

local function portop(atom, v, lo, hi, dir, node, what)
   return dirop(dir, function () return atom(0, v, lo, hi) end,
      function () return atom(2, v, lo, hi) end, node, what)
end

local function ports(v, lo, hi, ipproto, dir, node)
   local what = lo and "port ranges" or "ports"
   if lo and lo > hi then lo, hi = hi, lo end
   local function v4(pr)
      return AND(AND(eq(ld(1, E.linkpl + 9), pr), ipfrag()),
         portop(portatom, v, lo, hi, dir, node, what))
   end
   local function v6(pr)
      return AND(eq(ld(1, E.linkpl + 6), pr), portop(portatom6, v, lo, hi, dir, node, what))
   end
   local function both(one)
      if ipproto then return one(ipproto) end
      return OR(one(132), OR(one(6), one(17)))
   end
   local b6 = AND(linktype(IP6), both(v6))
   local b4 = AND(linktype(IP), both(v4))
   return OR(b6, b4)
end

---- Primitives.

local PORT_PROTO = {tcp = 6, udp = 17, sctp = 132}
local PROTO_NAME = {[6] = "tcp", [17] = "udp", [132] = "sctp"}

local function port_proto(p, real, name, node, range)
   -- gen_scode: a name's protocol against the qualifier's.
   if p == nil then return real end
   local want = PORT_PROTO[p]
   if real and real ~= want then
      fail(node, "port%s '%s' is %s", range and " in range" or "", name, PROTO_NAME[real])
   end
   return want
end

local function atoin(text) -- __pcap_atoin: value and bit length, or nil
   local v, len = 0, 0
   for part in (text .. "."):gmatch("([^.]*)%.") do
      local n = tonumber(part) or 0
      if n > 255 then return nil end
      v, len = v * 256 + n, len + 8
   end
   return v, len
end

local function net_bits(node)
   -- A numeric value: ipv4 nodes carry value and bits; a bare number is 32 bits (a host) or,
   -- for a net, shifted up to its first non-zero byte.
   if node.tag == "ipv4" then
      if node.value == nil then fail(node, "invalid IPv4 address '%s'", node.text) end
      return node.value, node.bits, node.text
   end
   return node.value, nil, nil
end

local function mask6(len)
   local m = {}
   for i = 1, 16 do
      local bits = math.max(0, math.min(8, len - (i - 1) * 8))
      m[i] = 256 - 2 ^ (8 - bits)
   end
   return m
end

local function prim(node)
   local p, dir, kind, id = node.proto, node.dir, node.kind, node.id
   local t = id.tag
   if kind == "gateway" then
      if t == "name" then fail(node, "'gateway' not supported in this configuration") end
      fail(id, "'gateway' requires a name")
   end
   if kind == "protochain" then
      local v
      if t == "num" then v = id.value
      elseif t == "name" then
         if p == nil or p == "ip" or p == "ip6" then
            local pe = ffi.C.getprotobyname(id.name)
            if pe == nil then fail(id, "unknown ip proto '%s'", id.name) end
            v = pe.p_proto
         else
            fail(id, "unknown protocol: %s", id.name)
         end
      else
         fail(id, "'protochain' needs a protocol number or name")
      end
      local function chain(q)
         return AND(linktype(q == "ip6" and IP6 or IP), {"pchain", q == "ip6", v, E.linkpl})
      end
      if p == nil then return OR(chain("ip"), chain("ip6")) end
      if p == "ip" or p == "ip6" then return chain(p) end
      fail(node, "bad protocol applied for 'protochain'")
   end
   if t == "mac" then
      if (kind == nil or kind == "host") and p == "link" then return ehost(id.bytes, dir, node) end
      fail(id, "ethernet address used in non-ether expression")
   end
   if t == "ipv6" or t == "ipv6_cidr" then
      local a = t == "ipv6" and id or id.addr
      local len = t == "ipv6" and 128 or id.len
      if len > 128 then fail(id, "mask length must be <= 128") end
      local m = mask6(len)
      for i = 1, 16 do
         if bit.band(a.bytes[i], 255 - m[i]) ~= 0 then
            fail(id, "non-network bits set in \"%s/%d\"", a.text, len)
         end
      end
      if kind == nil or kind == "host" then
         if len ~= 128 then fail(id, "Mask syntax for networks only") end
      elseif kind ~= "net" then
         fail(id, "invalid qualifier against IPv6 address")
      end
      return host6(a.bytes, m, p, dir, kind, node)
   end
   if t == "ipv4_cidr" or t == "ipv4_mask" then
      local a = id.addr
      if a.value == nil then fail(a, "invalid IPv4 address '%s'", a.text) end
      local n = a.value * 2 ^ (32 - a.bits)
      local m
      if t == "ipv4_mask" then
         if id.mask.value == nil then fail(id.mask, "invalid IPv4 address '%s'", id.mask.text) end
         m = id.mask.value * 2 ^ (32 - id.mask.bits) % U32
         if bit.band(n, bit.bnot(m)) ~= 0 then
            fail(id, "non-network bits set in \"%s mask %s\"", a.text, id.mask.text)
         end
      else
         if id.len > 32 then fail(id, "mask length must be <= 32") end
         m = id.len == 0 and 0 or (U32 - 2 ^ (32 - id.len))
         if bit.band(n, bit.bnot(m)) ~= 0 then
            fail(id, "non-network bits set in \"%s/%d\"", a.text, id.len)
         end
      end
      if kind ~= "net" then fail(id, "Mask syntax for networks only") end
      return host(n % U32, m, p, dir, kind, node)
   end
   if t == "num" or t == "ipv4" then
      local v, bits = net_bits(id)
      if kind == nil or kind == "host" or kind == "net" then
         if p == "decnet" then
            if t == "ipv4" then
               local area, nd = id.text:match("^(%d+)%.(%d+)")
               if not area then fail(id, "malformed decnet address '%s'", id.text) end
               v = bit.bor(bit.band(bit.lshift(tonumber(area), 10), 0xfc00),
                  bit.band(tonumber(nd), 0x3ff))
            end
            return host(v, 0, p, dir, kind, node)
         end
         if p == "link" then fail(id, "illegal link layer address") end
         local mask = 0xffffffff
         if bits == nil and kind == "net" then
            while v ~= 0 and v < 0x1000000 do v, mask = v * 256, (mask * 256) % U32 end
         else
            bits = bits or 32
            v = (v * 2 ^ (32 - bits)) % U32
            mask = (mask * 2 ^ (32 - bits)) % U32
         end
         return host(v, mask, p, dir, kind, node)
      end
      if t == "ipv4" then v = atoin(id.text) or v end
      if kind == "port" or kind == "portrange" then
         if p ~= nil and not PORT_PROTO[p] then fail(node, "illegal qualifier of '%s'", kind) end
         if v > 65535 then fail(id, "illegal port number %d > 65535", v) end
         if kind == "port" then return ports(v, nil, nil, PORT_PROTO[p], dir, node) end
         return ports(nil, v, v, PORT_PROTO[p], dir, node)
      end
      if kind == "proto" then return proto(v, p, dir, node) end
   end
   if t == "name" then
      local name = id.name
      if kind == "net" then
         local ne = ffi.C.getnetbyname(name)
         local addr = ne ~= nil and ne.n_net or 0
         if addr == 0 then fail(id, "unknown network '%s'", name) end
         local mask = 0xffffffff
         while addr ~= 0 and addr < 0x1000000 do addr, mask = addr * 256, (mask * 256) % U32 end
         return host(addr, mask, p, dir, kind, node)
      elseif kind == nil or kind == "host" then
         if p == "link" then
            local e = ffi.new("uint8_t[6]")
            if ffi.C.ether_hostton(name, e) ~= 0 then fail(id, "unknown ether host '%s'", name) end
            return ehost({e[0], e[1], e[2], e[3], e[4], e[5]}, dir, node)
         elseif p == "decnet" then
            fail(id, "decnet name support not included, '%s' cannot be translated", name)
         end
         local res = addrinfo(name, nil, SOCK_STREAM, IPPROTO_TCP)
         if not res then fail(id, "unknown host '%s'", name) end
         local b
         for _, a in ipairs(res) do
            local tmp
            if a.family == AF_INET and p ~= "ip6" then
               tmp = host(a.addr, 0xffffffff, p, dir, kind, node)
            elseif a.family == AF_INET6 and p ~= "ip" then
               local full = {}
               for i = 1, 16 do full[i] = 255 end
               tmp = host6(a.bytes, full, p, dir, kind, node)
            end
            if tmp then b = b and OR(b, tmp) or tmp end
         end
         if not b then
            fail(id, "unknown host '%s'%s", name, p and " for specified address family" or "")
         end
         return b
      elseif kind == "port" then
         if p ~= nil and not PORT_PROTO[p] then fail(node, "illegal qualifier of 'port'") end
         local port, real = nametoport(name)
         if not port then fail(id, "unknown port '%s'", name) end
         real = port_proto(p, real, name, id)
         if port > 65535 then fail(id, "illegal port number %d > 65535", port) end
         return ports(port, nil, nil, real, dir, node)
      elseif kind == "portrange" then
         if p ~= nil and not PORT_PROTO[p] then fail(node, "illegal qualifier of 'portrange'") end
         local p1, p2, real
         local a, b = name:match("^%s*([+-]?%d+)%-([+-]?%d+)")
         if a then
            p1, p2 = tonumber(a), tonumber(b)
         else
            local s1, s2 = name:match("^([^-]*)%-(.*)$")
            if not s1 then fail(id, "unknown port in range '%s'", name) end
            local r1, r2
            p1, r1 = nametoport(s1)
            if p1 then p2, r2 = nametoport(s2) end
            if not (p1 and p2) then fail(id, "unknown port in range '%s'", name) end
            real = r1 == r2 and r1 or nil
         end
         real = port_proto(p, real, name, id, true)
         for _, x in ipairs({p1, p2}) do
            if x < 0 then fail(id, "illegal port number %d < 0", x) end
            if x > 65535 then fail(id, "illegal port number %d > 65535", x) end
         end
         return ports(nil, p1, p2, real, dir, node)
      elseif kind == "proto" then
         local v
         if p == nil or p == "ip" or p == "ip6" then
            local pe = ffi.C.getprotobyname(name)
            if pe == nil then fail(id, "unknown ip proto '%s'", name) end
            v = pe.p_proto
         elseif p == "link" then
            v = ETHERTYPE[name] or LLC[name]
            if not v then fail(id, "unknown ether proto '%s'", name) end
         elseif p == "iso" then
            v = ({esis = ISO_ESIS, isis = ISO_ISIS, clnp = ISO_CLNP})[name]
            if not v then fail(id, "unknown osi proto '%s'", name) end
         else
            fail(id, "unknown protocol: %s", name)
         end
         return proto(v, p, dir, node)
      end
   end
   fail(node, "unsupported primitive")
end

-- A value folded here that libpcap folds only in its last passes (opt_stmt alters statements
-- only once its jumps are final): x, a copy, remembers the operation it was (`unfolded`), the
-- value libpcap's jump threading knows it by (lib.pf.optimize's weak shapes).
-- An operand folded away takes its folding error with it (`0 * (0 % 0)`: libpcap computes the
-- modulus first, and refuses it).
local function folded(x, op)
   local c = {}
   for i, v in pairs(x) do c[i] = v end
   c.unfolded = op
   local function err(a)
      if type(a) ~= "table" then return nil end
      if a.err then return a.err end
      for i = 2, #a do
         local e = err(a[i])
         if e then return e end
      end
   end
   c.err = c.err or err(op)
   return c
end

local ZERO_NOP = {["+"] = true, ["|"] = true, ["^"] = true, ["<<"] = true, [">>"] = true}

-- The literal that the code of an arithmetic node starts with, if any (libpcap's a->s).
local function first_literal(node)
   local t = node.tag
   if t == "num" then return node.value
   elseif t == "load" then return first_literal(node.offset)
   elseif t == "binop" or t == "neg" then return first_literal(node.a) end
   return nil
end

---- Arithmetic: value and the protocol tests that guard it (struct arth's s and b).

local arith

local LOAD_NET = {ip = 1, arp = 1, rarp = 1, atalk = 1, decnet = 1, sca = 1, lat = 1, moprc = 1,
   mopdl = 1, ip6 = 1}
local LOAD_TRANSPORT = {sctp = 1, tcp = 1, udp = 1, icmp = 1, igmp = 1, igrp = 1, pim = 1,
   vrrp = 1, carp = 1}

local function load(node)
   local idx, checks = arith(node.offset)
   local size, p = node.size, node.proto
   if size ~= 1 and size ~= 2 and size ~= 4 then fail(node, "data size must be 1, 2, or 4") end
   local function at(base, x)
      -- Marked: libpcap loads it through X with a constant (lib.pf.optimize's key). Its
      -- optimizer makes that an absolute load at base + x mod 2^32 (`icmp6[0 - 1]` is
      -- ip6[39]); run unoptimized, the load through X is out of bounds.
      if x[1] == "k" then
         local off = base + x[2]
         if not E.unoptimized then off = off % U32 end
         return {"ld", size, nil, off, true}
      end
      return ld(size, base, x)
   end
   if p == "link" then
      return at(0, idx), checks
   elseif LOAD_NET[p] then
      return at(E.linkpl, idx), AND(checks, abbrev(p, node))
   elseif LOAD_TRANSPORT[p] then
      local x
      if idx[1] == "k" and (idx[2] + 60 < U32 or not E.unoptimized) then
         -- libpcap's peephole adds the constant to the load's offset, mod 2^32.
         x = ld(size, (E.linkpl + idx[2]) % U32, iphl())
      else
         x = ld(size, E.linkpl, {"op", "+", idx, iphl()})
      end
      local b = AND(abbrev(p, node), ipfrag())
      b = AND(checks, b)
      return x, AND(linktype(IP), b)
   elseif p == "icmp6" then
      local b = AND(checks, linktype(IP6))
      b = AND(b, eq(ld(1, E.linkpl + 6), 58))
      return at(E.linkpl + 40, idx), b
   elseif p == "radio" then
      fail(node, "radio information not present in capture")
   end
   fail(node, "unsupported index operation")
end

function arith(node)
   local t = node.tag
   if t == "num" then return k(node.value), nil
   elseif t == "len" then return {"len"}, nil
   elseif t == "load" then return load(node)
   elseif t == "neg" then
      local a, checks = arith(node.a)
      if a[1] == "k" then return folded(k((U32 - a[2]) % U32), {"neg", a}), checks end
      return {"neg", a}, checks
   elseif t == "binop" then
      local op = node.op
      local a, checks = arith(node.a)
      local b = arith(node.b) -- gen_arth keeps the left operand's protocol tests only
      -- gen_arth's checks look at the first instruction of the right operand's code only: a
      -- literal (`ip[0] / 0`, `len >> 32`, also `len >> 80 * len` or `x / ether[0]`).
      local first = first_literal(node.b)
      if first then
         if op == "/" and first == 0 then fail(node, "division by zero") end
         if op == "%" and first == 0 then fail(node, "modulus by zero") end
         if (op == "<<" or op == ">>") and first > 31 then
            fail(node, "shift by more than 31 bits")
         end
      end
      -- What libpcap's optimizer folds (opt_stmt, fold_op); a dropped operand's loads go too.
      -- Its errors come only if the code is still there once jumps are threaded: they travel
      -- with the value (err) and lib.pf.optimize raises them then.
      local function later(msg)
         return {"op", op, a, b, err = {col = node.col, message = msg}}, checks
      end
      -- Without the optimizer (an expression with protochain) the code runs as written.
      if E.unoptimized and not (a[1] == "k" and b[1] == "k" and b[2] ~= 0) then
         return {"op", op, a, b}, checks
      end
      if b[1] == "k" then
         if a[1] == "k" then
            if op == "/" and b[2] == 0 then return later("division by zero") end
            if op == "%" and b[2] == 0 then return later("modulus by zero") end
            return folded(k(fold(op, a[2], b[2])), {"op", op, a, b}), checks
         end
         if (op == "<<" or op == ">>") and b[2] > 31 then
            return later("shift by more than 31 bits")
         end
         if b[2] == 0 then
            if op == "/" then return later("division by zero") end
            if op == "%" then return later("modulus by zero") end
            if ZERO_NOP[op] then return folded(a, {"op", op, a, b}), checks end
            if op == "*" or op == "&" then return folded(k(0), {"op", op, a, b}), checks end
         end
      elseif a[1] == "k" and a[2] == 0 then
         if op == "+" or op == "|" or op == "^" then return folded(b, {"op", op, a, b}), checks end
         if op ~= "-" then -- * / % & << >>
            return folded(k(0), {"op", op, a, b}), checks
         end
      end
      return {"op", op, a, b}, checks
   end
   fail(node, "unsupported arithmetic")
end

local function relation(node)
   local a, ca = arith(node.a)
   local b, cb = arith(node.b)
   local op, r = node.op, nil
   if node.a.tag == "num" and node.b.tag == "num" then
      -- Two literals: libpcap decides the test at once (its value numbering sees constants).
      local x, y = a[2], b[2]
      local v = ({[">"] = x > y, [">="] = x >= y, ["="] = x == y, ["=="] = x == y,
         ["!="] = x ~= y, ["<"] = x < y, ["<="] = x <= y})[op]
      return AND(AND(ca, cb), v and TRUE or FALSE)
   end
   -- Other constants (`0 | 0 != 1`) are folded by libpcap only after its jumps are threaded:
   -- they stay tests there (lib.pf.optimize decides them later), so the tests before them
   -- keep their loads, as in libpcap's BPF.
   if op == ">" then r = cmp(">", a, b)
   elseif op == ">=" then r = cmp(">=", a, b)
   elseif op == "=" or op == "==" then r = cmp("==", a, b)
   elseif op == "!=" then r = NOT(cmp("==", a, b))
   elseif op == "<" then r = NOT(cmp(">=", a, b))
   elseif op == "<=" then r = NOT(cmp(">", a, b))
   else fail(node, "unknown relation %s", tostring(op)) end
   return AND(AND(ca, cb), r)
end

local LLC_S = {rr = 0x01, rnr = 0x05, rej = 0x09}
local LLC_U = {ui = 0x03, ua = 0x63, disc = 0x43, dm = 0x0f, sabme = 0x6f, test = 0xe3, xid = 0xaf,
   frmr = 0x87}

local function bool(node)
   E.node = node
   local t = node.tag
   if t == "true" then return TRUE
   elseif t == "and" or t == "or" then
      local a = bool(node.a)
      local b = bool(node.b)
      return t == "and" and AND(a, b) or OR(a, b)
   elseif t == "not" then return NOT(bool(node.a))
   elseif t == "prim" then
      if node.id.tag == "not" then return NOT(bool(node.id.a)) end
      return prim(node)
   elseif t == "abbrev" then return abbrev(node.proto, node)
   elseif t == "relation" then return relation(node)
   elseif t == "less" then return NOT(cmp(">", {"len"}, k(node.value)))
   elseif t == "greater" then return cmp(">=", {"len"}, k(node.value))
   elseif t == "broadcast" then
      local p = node.proto
      if p == nil or p == "link" then
         return AND(eq(ld(4, 2), 0xffffffff), eq(ld(2, 0), 0xffff))
      elseif p == "ip" then
         fail(node, "netmask not known, so 'ip broadcast' not supported")
      end
      fail(node, "only link-layer/IP broadcast filters supported")
   elseif t == "multicast" then
      local p = node.proto
      if p == nil or p == "link" then return cmp("&", ld(1, 0), k(1))
      elseif p == "ip" then return AND(linktype(IP), cmp(">=", ld(1, E.linkpl + 16), k(224)))
      elseif p == "ip6" then return AND(linktype(IP6), eq(ld(1, E.linkpl + 24), 255)) end
      fail(node, "link-layer multicast filters supported only on ethernet/FDDI/token ring/" ..
         "ARCNET/802.11/ATM LANE/Fibre Channel")
   elseif t == "byte" then
      local x, v, op = ld(1, node.offset), node.value, node.op
      if op == "=" then return eq(x, v)
      elseif op == "<" then return NOT(cmp(">=", x, k(v)))
      elseif op == ">" then return cmp(">", x, k(v)) end
      -- gencode.c's gen_byteop for & and | loads nothing: it tests BPF's accumulator, 0 when
      -- no load came before (the only case reproduced here).
      if op == "&" then return cmp("&", {"a0"}, k(v)) end
      if op == "|" then return NOT(cmp("==", {"op", "|", {"a0"}, k(v)}, k(0))) end
      fail(node, "'byte %s' is not supported by lib.pf", op)
   elseif t == "vlan" then
      if E.mpls > 0 then fail(node, "no VLAN match after MPLS") end
      local b = OR(OR(eq(linktype_ld(), 0x8100), eq(linktype_ld(), 0x88a8)),
         eq(linktype_ld(), 0x9100))
      if node.value then
         if node.value > 0x0fff then
            fail_value(node, "VLAN tag %u greater than maximum %u", node.value, 0x0fff)
         end
         b = AND(b, eq({"op", "&", ld(2, E.linkpl), k(0x0fff)}, node.value))
      end
      E.linkpl, E.linktype = E.linkpl + 4, E.linktype + 4
      return b
   elseif t == "mpls" then
      local b
      if E.mpls == 0 then b = eq(linktype_ld(), 0x8847)
      else b = eq({"op", "&", ld(1, E.linkpl - 2), k(1)}, 0) end
      if node.value then
         if node.value > 0xfffff then
            fail_value(node, "MPLS label %u greater than maximum %u", node.value, 0xfffff)
         end
         b = AND(b, eq({"op", "&", ld(4, E.linkpl), k(0xfffff000)}, node.value * 4096))
      end
      E.linkpl, E.mpls = E.linkpl + 4, E.mpls + 1
      return b
   elseif t == "pppoed" then return linktype(0x8863)
   elseif t == "llc" then
      -- gen_llc reads at off_linkpl, which mpls does not move (it moves off_nl only).
      local pl = E.linkpl - 4 * E.mpls
      local b = NOT(OR(cmp(">", linktype_ld(), k(ETHERMTU)), eq(ld(2, pl), 0xffff)))
      local sub = node.subtype and node.subtype:lower()
      if sub == nil then return b end
      local ctl = ld(1, pl + 2)
      local function m(v, mask) return eq({"op", "&", ctl, k(mask)}, v) end
      if sub == "i" then return AND(b, NOT(cmp("&", ctl, k(1))))
      elseif sub == "s" then return AND(b, m(1, 3))
      elseif sub == "u" then return AND(b, m(3, 3))
      elseif LLC_S[sub] then return AND(b, m(LLC_S[sub], 0x0f))
      elseif LLC_U[sub] then return AND(b, m(LLC_U[sub], 0xef)) end
      fail(node, "unknown LLC type name \"%s\"", node.subtype)
   elseif t == "inbound" or t == "outbound" then
      -- On a dead handle libpcap loads Linux's packet type (SKF_AD_PKTTYPE, offset 0xfffff004),
      -- a load past any packet: the filter rejects everything, as pcap_offline_filter does.
      local b = eq(ld(2, 0xfffff004), 4)
      return t == "inbound" and NOT(b) or b
   elseif t == "ifindex" then
      return eq(ld(4, 0xfffff008), node.value) -- SKF_AD_IFINDEX, as above
   end
   fail(node, "'%s' is not supported by lib.pf", t)
end

-- The tree of tests of a syntax tree, or nil and {col =, message =}. uses_len says whether it
-- reads the wire length.
function M.expand(ast)
   -- gen_protochain turns libpcap's optimizer off for the whole expression (its loop has a
   -- backward jump): tree.unoptimized tells lib.pf.optimize to do only what keeps the loads.
   local function has_protochain(n)
      if type(n) ~= "table" then return false end
      if n.tag == "prim" and n.kind == "protochain" then return true end
      for _, v in pairs(n) do
         if type(v) == "table" and has_protochain(v) then return true end
      end
      return false
   end
   E = {linktype = 12, linkpl = 14, mpls = 0, unoptimized = has_protochain(ast)}
   local unoptimized = E.unoptimized
   local ok, tree = pcall(bool, ast)
   E = nil
   if not ok then
      if type(tree) == "table" then return nil, tree end
      error(tree, 0)
   end
   if unoptimized then tree = {"and", TRUE, tree, unoptimized = true} end
   -- The first test a comparison of two numbers: libpcap's root is then its block, which
   -- loads nothing (lib.pf.optimize: the tests it skips keep no loads).
   local first = ast
   while first.tag == "and" or first.tag == "or" or first.tag == "not" do first = first.a end
   if first.tag == "relation" and first.a.tag == "num" and first.b.tag == "num" then
      if tree[1] == "true" or tree[1] == "false" then tree = {tree[1]} end
      tree.literal_root = true
   end
   return tree
end

M.nametoport = nametoport

function M.selftest()
   print("selftest: lib.pf.expand")
   assert(nametoport("http") == 80)
   assert(nametoport("domain") == 53)
   assert(select(2, nametoport("http")) == 6)
   assert(nametoport("no-such-service-here") == nil)
   local t = assert(M.expand({tag = "abbrev", proto = "ip"}))
   assert(t[1] == "cmp" and t[3][4] == 12 and t[4][2] == 0x800)
   local _, err = M.expand({tag = "vlan", value = 5000, col = 3})
   assert(err.col == 3 and err.value_of == "vlan", err.message)
   assert(err.message == "VLAN tag 5000 greater than maximum 4095", err.message)
   print("selftest: ok")
end

return M
