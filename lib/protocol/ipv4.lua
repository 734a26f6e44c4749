-- lib.protocol.ipv4: the IPv4 header with its options (IHL > 5), Snabb's class and names. Fields
-- in host order; src()/dst() are the 4 address bytes in the header. new_from_mem refuses (nil) a
-- header that is not version 4, has an IHL under 5, more header than the bytes given, or a total
-- length shorter than its header; sizeof() is IHL * 4. ipv4.payload(ptr, len) is the bounds check
-- a packet loop needs without an object: the protocol, the offset of its header and its length,
-- or nil and why (truncated, malformed).
local ffi = require("ffi")
local lib = require("core.lib")
local header = require("lib.protocol.header")
local subClass = require("lib.lua.class").subClass
local C = ffi.C
local band, bor, bnot, lshift, rshift = bit.band, bit.bor, bit.bnot, bit.lshift, bit.rshift
local htons, ntohs = lib.htons, lib.ntohs
local ipsum = header.ipsum

local ipv4 = subClass(header)
ipv4._name = "ipv4"
ipv4._ulp = {
   method = "protocol",
   class_map = {
      [1] = "lib.protocol.icmp.header",
      [4] = "lib.protocol.ipv4",
      [6] = "lib.protocol.tcp",
      [17] = "lib.protocol.udp",
      [41] = "lib.protocol.ipv6",
      [47] = "lib.protocol.gre",
   },
}
ipv4:init({ffi.typeof([[struct {
   uint8_t  version_ihl;   // version:4, ihl:4
   uint8_t  tos;           // dscp:6, ecn:2
   uint16_t total_length;
   uint16_t id;
   uint16_t frag_off;      // flags:3 (reserved, DF, MF), fragment offset:13 (8-byte units)
   uint8_t  ttl;
   uint8_t  protocol;
   uint16_t checksum;
   uint8_t  src_ip[4];
   uint8_t  dst_ip[4];
} __attribute__((packed))]])})
local HEADER_SIZE = 20

local ptr_t = ffi.typeof("const uint8_t *")
local addr_t = ffi.typeof("uint8_t[4]")
local pseudo_t = ffi.typeof([[struct {
   uint8_t src_ip[4], dst_ip[4];
   uint8_t zero, protocol;
   uint16_t length;
} __attribute__((packed))]])

-- config: {src, dst (4-byte addresses), protocol (default 255), dscp, ecn, id, flags, frag_off,
-- ttl, total_length (default 20)}. The checksum is computed.
function ipv4:new (config)
   local o = ipv4:superClass().new(self)
   config = config or {}
   o:version(4)
   o:ihl(5)
   o:dscp(config.dscp or 0)
   o:ecn(config.ecn or 0)
   o:total_length(config.total_length or HEADER_SIZE)
   o:id(config.id or 0)
   o:flags(config.flags or 0)
   o:frag_off(config.frag_off or 0)
   o:ttl(config.ttl or 0)
   o:protocol(config.protocol or 0xff)
   if config.src then o:src(config.src) end
   if config.dst then o:dst(config.dst) end
   o:checksum()
   return o
end

function ipv4:new_from_mem (mem, size)
   if size < HEADER_SIZE then return nil end
   local b = ffi.cast(ptr_t, mem)
   local hlen = band(b[0], 0x0f) * 4
   if rshift(b[0], 4) ~= 4 or hlen < HEADER_SIZE or hlen > size
      or b[2] * 256 + b[3] < hlen then
      return nil
   end
   local o = ipv4:superClass().new_from_mem(self, mem, size)
   o._size = hlen
   return o
end

-- The upper layer of the IPv4 packet at ptr with len bytes captured: protocol, offset of its
-- header (the IHL), bytes of it (total length - IHL); nil, "truncated" when the header or the
-- total length runs past len; nil, "malformed" for a bad version, IHL or total length. A
-- fragment other than the first has no upper-layer header: its offset is returned as a 4th value
-- (in bytes), 0 for an unfragmented packet or a first fragment.
function ipv4.payload (ptr, len)
   if len < HEADER_SIZE then return nil, "truncated" end
   local b = ffi.cast(ptr_t, ptr)
   local hlen, total = band(b[0], 0x0f) * 4, b[2] * 256 + b[3]
   if rshift(b[0], 4) ~= 4 or hlen < HEADER_SIZE or total < hlen then return nil, "malformed" end
   if total > len then return nil, "truncated" end
   return b[9], hlen, total - hlen, band(b[6] * 256 + b[7], 0x1fff) * 8
end

-- A fragment other than the first carries the middle of its upper layer: no header to parse.
function ipv4:upper_layer ()
   if band(ntohs(self._h[0].frag_off), 0x1fff) ~= 0 then return nil end
   return ipv4:superClass().upper_layer(self)
end

-- "10.0.0.1" -> 4 bytes (cdata); errors on anything else.
function ipv4:pton (s)
   local addr = addr_t()
   if C.inet_pton(2, tostring(s), addr) ~= 1 then
      error(("not an IPv4 address: %q"):format(tostring(s)), 2)
   end
   return addr
end

function ipv4:ntop (addr)
   local buf = ffi.new("char[16]")
   return ffi.string(C.inet_ntop(2, addr, buf, 16))
end

-- "10.0.0.0/8" -> 4 bytes, 8.
function ipv4:pton_cidr (s)
   local addr, len = tostring(s):match("^([^/]+)/(%d+)$")
   len = tonumber(len)
   if not addr or len > 32 then error(("not an IPv4 prefix: %q"):format(tostring(s)), 2) end
   return ipv4:pton(addr), len
end

local function field8 (name, shift, mask)
   local keep = bnot(lshift(mask, shift))
   return function (self, v)
      local h = self._h[0]
      if v ~= nil then h[name] = bor(band(h[name], keep), lshift(band(v, mask), shift)) end
      return band(rshift(h[name], shift), mask)
   end
end
ipv4.version = field8("version_ihl", 4, 0xf)
ipv4.ihl = field8("version_ihl", 0, 0xf)
ipv4.dscp = field8("tos", 2, 0x3f)
ipv4.ecn = field8("tos", 0, 0x3)

local function field16 (name, shift, mask)
   local keep = bnot(lshift(mask, shift))
   return function (self, v)
      local h = self._h[0]
      if v ~= nil then
         h[name] = htons(bor(band(ntohs(h[name]), keep), lshift(band(v, mask), shift)))
      end
      return band(rshift(ntohs(h[name]), shift), mask)
   end
end
ipv4.total_length = field16("total_length", 0, 0xffff)
ipv4.id = field16("id", 0, 0xffff)
ipv4.flags = field16("frag_off", 13, 0x7)
ipv4.frag_off = field16("frag_off", 0, 0x1fff)

function ipv4:ttl (ttl)
   local h = self._h[0]
   if ttl ~= nil then h.ttl = ttl end
   return h.ttl
end

function ipv4:protocol (protocol)
   local h = self._h[0]
   if protocol ~= nil then h.protocol = protocol end
   return h.protocol
end

-- Computes and stores the header checksum (options included); returns it.
function ipv4:checksum ()
   local h = self._h[0]
   h.checksum = 0
   h.checksum = htons(ipsum(h, self:sizeof(), 0))
   return ntohs(h.checksum)
end

-- True when the stored header checksum is right.
function ipv4:checksum_ok ()
   return ipsum(self._h[0], self:sizeof(), 0) == 0
end

-- The options: pointer and length (0 without options).
function ipv4:options ()
   return ffi.cast(ptr_t, self._h[0]) + HEADER_SIZE, self:sizeof() - HEADER_SIZE
end

function ipv4:src (ip)
   local h = self._h[0]
   if ip ~= nil then ffi.copy(h.src_ip, ip, 4) end
   return h.src_ip
end

function ipv4:dst (ip)
   local h = self._h[0]
   if ip ~= nil then ffi.copy(h.dst_ip, ip, 4) end
   return h.dst_ip
end

function ipv4:src_eq (ip) return C.memcmp(ip, self._h[0].src_ip, 4) == 0 end
function ipv4:dst_eq (ip) return C.memcmp(ip, self._h[0].dst_ip, 4) == 0 end

function ipv4:eq (other)
   return self:ihl() == other:ihl() and self:id() == other:id()
      and self:protocol() == other:protocol() and self:src_eq(other:src())
      and self:dst_eq(other:dst())
end

-- The TCP/UDP pseudo-header for an upper layer of ulplen bytes of protocol proto (a struct kept
-- by the object: valid until the next call).
function ipv4:pseudo_header (ulplen, proto)
   local ph = self._ph
   if not ph then ph = pseudo_t(); self._ph = ph end
   local h = self._h[0]
   ffi.copy(ph.src_ip, h.src_ip, 8)
   ph.zero, ph.protocol, ph.length = 0, proto, htons(ulplen)
   return ph
end

function ipv4.selftest ()
   print("selftest: lib.protocol.ipv4")
   assert(ipv4:ntop(ipv4:pton("192.168.1.1")) == "192.168.1.1")
   assert(not pcall(ipv4.pton, ipv4, "192.168.1"))
   local a, n = ipv4:pton_cidr("10.1.0.0/16")
   assert(ipv4:ntop(a) == "10.1.0.0" and n == 16)
   -- A TCP SYN from a real capture: its stored checksum is 0xb08e (tshark: "correct").
   local bytes = ffi.new("uint8_t[52]")
   ffi.copy(bytes, lib.hexundump("45 00 00 34 59 1a 40 00 40 06 b0 8e c0 a8 14 a9 6b 15 f0 b4"), 20)
   local ip = ipv4:new_from_mem(bytes, 52)
   assert(ip:checksum_ok() and ip:ihl() == 5 and ip:sizeof() == 20)
   assert(ip:total_length() == 52 and ip:ttl() == 64 and ip:protocol() == 6)
   assert(ip:flags() == 2 and ip:frag_off() == 0 and ip:id() == 0x591a)
   assert(ipv4:ntop(ip:src()) == "192.168.20.169" and ipv4:ntop(ip:dst()) == "107.21.240.180")
   assert(ip:checksum() == 0xb08e)
   local proto, off, l4len = ipv4.payload(bytes, 52)
   assert(proto == 6 and off == 20 and l4len == 32)
   assert(select(2, ipv4.payload(bytes, 51)) == "truncated")
   assert(select(2, ipv4.payload(bytes, 19)) == "truncated")
   -- Options: IHL 6 needs 24 bytes.
   local opt = ffi.new("uint8_t[24]", 0x46, 0, 0, 24)
   assert(ipv4:new_from_mem(opt, 23) == nil)
   local o = ipv4:new_from_mem(opt, 24)
   assert(o:sizeof() == 24 and select(2, o:options()) == 4)
   opt[0] = 0x44 -- IHL 4
   assert(ipv4:new_from_mem(opt, 24) == nil and select(2, ipv4.payload(opt, 24)) == "malformed")
   local n4 = ipv4:new({src = ipv4:pton("10.0.0.1"), dst = ipv4:pton("10.0.0.2"), ttl = 64,
                        protocol = 17, flags = 2, frag_off = 100, dscp = 46, ecn = 1})
   assert(n4:checksum_ok() and n4:dscp() == 46 and n4:ecn() == 1 and n4:flags() == 2)
   assert(n4:frag_off() == 100 and n4:version() == 4 and n4:ihl() == 5)
   n4:ttl(63)
   assert(not n4:checksum_ok())
   n4:checksum()
   assert(n4:checksum_ok())
   print("selftest: ok")
end

return ipv4
