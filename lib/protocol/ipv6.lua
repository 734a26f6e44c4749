-- lib.protocol.ipv6: the IPv6 header, Snabb's class and names, and its extension headers
-- (hop-by-hop options, routing, fragment, destination options, AH) as classes of their own so
-- that lib.protocol.datagram parses through them to the upper layer. ipv6.payload(ptr, len) walks
-- the extension headers without objects (the call a packet loop makes): the upper-layer protocol,
-- its offset from the IPv6 header and its length, or nil and why, never reading past len or past
-- the payload length.
local ffi = require("ffi")
local lib = require("core.lib")
local header = require("lib.protocol.header")
local subClass = require("lib.lua.class").subClass
local C = ffi.C
local band, bor, bnot, lshift, rshift = bit.band, bit.bor, bit.bnot, bit.lshift, bit.rshift
local htons, ntohs, htonl, ntohl = lib.htons, lib.ntohs, lib.htonl, lib.ntohl

local HEADER_SIZE = 40
local ptr_t = ffi.typeof("const uint8_t *")
local addr_t = ffi.typeof("uint8_t[16]")

-- Next-header values of the extension headers and what each takes: its length in bytes is
-- (byte 1 + 1) * 8, AH's (byte 1 + 2) * 4, the fragment header's 8.
local HOP_BY_HOP, ROUTING, FRAGMENT, AH, DEST_OPTS, NO_NEXT = 0, 43, 44, 51, 60, 59

local ipv6 = subClass(header)
ipv6._name = "ipv6"
ipv6:init({ffi.typeof([[struct {
   uint32_t v_tc_fl;        // version:4, traffic class:8, flow label:20
   uint16_t payload_length;
   uint8_t  next_header;
   uint8_t  hop_limit;
   uint8_t  src_ip[16];
   uint8_t  dst_ip[16];
} __attribute__((packed))]])})

-- The extension headers: a base with next_header() and a size from its length byte.
local ext = subClass(header)
ext._name = "ipv6 extension header"
ext:init({ffi.typeof("struct { uint8_t next_header; uint8_t length; } __attribute__((packed))")})
function ext:next_header (nh)
   local h = self._h[0]
   if nh ~= nil then h.next_header = nh end
   return h.next_header
end
-- Bytes of this header from its length byte (units of 8 bytes, not counting the first 8).
function ext:_length (b) return (b[1] + 1) * 8 end
function ext:new_from_mem (mem, size)
   if size < 8 then return nil end
   local n = self:_length(ffi.cast(ptr_t, mem))
   if n > size then return nil end
   local o = ext:superClass().new_from_mem(self, mem, size)
   o._size = n
   return o
end

local function ext_class (name, length)
   local class = subClass(ext)
   class._name = name
   class._t, class._size = ext._t, 8
   if length then class._length = length end
   return class
end
ipv6.hop_by_hop = ext_class("ipv6 hop-by-hop options")
ipv6.routing = ext_class("ipv6 routing")
ipv6.dest_opts = ext_class("ipv6 destination options")
ipv6.ah = ext_class("authentication header", function (_, b) return (b[1] + 2) * 4 end)
ipv6.fragment = ext_class("ipv6 fragment", function () return 8 end)
-- The fragment header: offset (8-byte units), more fragments, identification.
function ipv6.fragment:offset ()
   local b = ffi.cast(ptr_t, self._h[0])
   return rshift(b[2] * 256 + b[3], 3)
end
function ipv6.fragment:more ()
   return band(ffi.cast(ptr_t, self._h[0])[3], 1)
end
function ipv6.fragment:id ()
   return ntohl(ffi.cast("const uint32_t *", ffi.cast(ptr_t, self._h[0]) + 4)[0])
end

local class_map = {
   [4] = "lib.protocol.ipv4",
   [6] = "lib.protocol.tcp",
   [41] = "lib.protocol.ipv6",
   [17] = "lib.protocol.udp",
   [47] = "lib.protocol.gre",
   [58] = "lib.protocol.icmp.header",
   [HOP_BY_HOP] = ipv6.hop_by_hop,
   [ROUTING] = ipv6.routing,
   [FRAGMENT] = ipv6.fragment,
   [AH] = ipv6.ah,
   [DEST_OPTS] = ipv6.dest_opts,
}
ipv6._ulp = {method = "next_header", class_map = class_map}
for _, class in ipairs({ipv6.hop_by_hop, ipv6.routing, ipv6.fragment, ipv6.ah, ipv6.dest_opts}) do
   class._ulp = ipv6._ulp
   class._ulp_classes = {}
end
-- Past a fragment other than the first there is no upper-layer header.
function ipv6.fragment:upper_layer ()
   if self:offset() ~= 0 then return nil end
   return ext.upper_layer(self)
end

local pseudo_t = ffi.typeof([[struct {
   uint8_t src_ip[16], dst_ip[16];
   uint32_t length;
   uint8_t zero[3];
   uint8_t next_header;
} __attribute__((packed))]])

-- config: {src, dst (16-byte addresses), traffic_class, flow_label, next_header (default 59, no
-- next header), hop_limit (default 64), payload_length}.
function ipv6:new (config)
   local o = ipv6:superClass().new(self)
   config = config or {}
   o:version(6)
   o:traffic_class(config.traffic_class or 0)
   o:flow_label(config.flow_label or 0)
   o:payload_length(config.payload_length or 0)
   o:next_header(config.next_header or NO_NEXT)
   o:hop_limit(config.hop_limit or 64)
   if config.src then o:src(config.src) end
   if config.dst then o:dst(config.dst) end
   return o
end

-- Refuses (nil) a header whose version is not 6 or that does not fit in size.
function ipv6:new_from_mem (mem, size)
   if size < HEADER_SIZE or rshift(ffi.cast(ptr_t, mem)[0], 4) ~= 6 then return nil end
   return ipv6:superClass().new_from_mem(self, mem, size)
end

-- The upper layer of the IPv6 packet at ptr with len bytes captured, after its extension
-- headers: protocol, offset of its header from ptr, its length (to the end of the payload
-- length), and the fragment offset in bytes (0 when not a fragment or the first one). A fragment
-- other than the first gives 44 (fragment) and the offset of its fragment header: what follows
-- is the middle of the upper layer. 59 (no next header) and 50 (ESP) end the walk as upper layers.
-- nil, "truncated": the header, the payload length or an extension header runs past len;
-- nil, "malformed": not version 6, or an extension header runs past the payload length; a
-- hop-by-hop header anywhere but first is malformed (RFC 8200 4.1). A payload length of 0 (a
-- jumbogram) counts as malformed: we do not take jumbograms.
function ipv6.payload (ptr, len)
   if len < HEADER_SIZE then return nil, "truncated" end
   local b = ffi.cast(ptr_t, ptr)
   if rshift(b[0], 4) ~= 6 then return nil, "malformed" end
   local plen = b[4] * 256 + b[5]
   local last = HEADER_SIZE + plen
   if plen == 0 then return nil, "malformed" end
   if last > len then return nil, "truncated" end
   local nh, off = b[6], HEADER_SIZE
   -- No extension header (the common case): return before the loop, so that a packet loop calling
   -- this compiles without an inner loop (which would be a trace of its own).
   if not (nh == HOP_BY_HOP or nh == ROUTING or nh == DEST_OPTS or nh == AH or nh == FRAGMENT) then
      return nh, off, plen, 0
   end
   -- Each step moves off forward by 8 bytes at least and stops at last: at most plen / 8 steps.
   while true do
      local n
      if nh == HOP_BY_HOP or nh == ROUTING or nh == DEST_OPTS or nh == AH or nh == FRAGMENT then
         if off + 8 > last then return nil, "malformed" end
         if nh == HOP_BY_HOP and off ~= HEADER_SIZE then return nil, "malformed" end
         if nh == FRAGMENT then
            local frag = band(b[off + 2] * 256 + b[off + 3], 0xfff8)
            if frag ~= 0 then return FRAGMENT, off, last - off, frag end
            n = 8
         elseif nh == AH then
            n = (b[off + 1] + 2) * 4
         else
            n = (b[off + 1] + 1) * 8
         end
         if off + n > last then return nil, "malformed" end
         nh, off = b[off], off + n
      else
         return nh, off, last - off, 0
      end
   end
end

-- "2001:db8::1" -> 16 bytes (cdata); errors on anything else.
function ipv6:pton (s)
   local addr = addr_t()
   if C.inet_pton(10, tostring(s), addr) ~= 1 then
      error(("not an IPv6 address: %q"):format(tostring(s)), 2)
   end
   return addr
end

function ipv6:ntop (addr)
   local buf = ffi.new("char[46]")
   return ffi.string(C.inet_ntop(10, addr, buf, 46))
end

function ipv6:pton_cidr (s)
   local addr, len = tostring(s):match("^([^/]+)/(%d+)$")
   len = tonumber(len)
   if not addr or len > 128 then error(("not an IPv6 prefix: %q"):format(tostring(s)), 2) end
   return ipv6:pton(addr), len
end

-- ff02::1:ffXX:XXXX for the last 3 bytes of ip (RFC 4291 2.7.1).
function ipv6:solicited_node_mcast (ip)
   local addr = ipv6:pton("ff02::1:ff00:0")
   ffi.copy(addr + 13, ffi.cast(ptr_t, ip) + 13, 3)
   return addr
end

local function word_field (shift, mask)
   local keep = bnot(lshift(mask, shift))
   return function (self, v)
      local h = self._h[0]
      if v ~= nil then
         h.v_tc_fl = htonl(bor(band(ntohl(h.v_tc_fl), keep), lshift(band(v, mask), shift)))
      end
      return band(rshift(ntohl(h.v_tc_fl), shift), mask)
   end
end
ipv6.version = word_field(28, 0xf)
ipv6.traffic_class = word_field(20, 0xff)
ipv6.dscp = word_field(22, 0x3f)
ipv6.ecn = word_field(20, 0x3)
ipv6.flow_label = word_field(0, 0xfffff)

function ipv6:payload_length (length)
   local h = self._h[0]
   if length ~= nil then h.payload_length = htons(length) end
   return ntohs(h.payload_length)
end

function ipv6:next_header (nh)
   local h = self._h[0]
   if nh ~= nil then h.next_header = nh end
   return h.next_header
end

function ipv6:hop_limit (limit)
   local h = self._h[0]
   if limit ~= nil then h.hop_limit = limit end
   return h.hop_limit
end

function ipv6:src (ip)
   local h = self._h[0]
   if ip ~= nil then ffi.copy(h.src_ip, ip, 16) end
   return h.src_ip
end

function ipv6:dst (ip)
   local h = self._h[0]
   if ip ~= nil then ffi.copy(h.dst_ip, ip, 16) end
   return h.dst_ip
end

function ipv6:src_eq (ip) return C.memcmp(ip, self._h[0].src_ip, 16) == 0 end
function ipv6:dst_eq (ip) return C.memcmp(ip, self._h[0].dst_ip, 16) == 0 end

-- The pseudo-header for an upper layer of plen bytes with next header nh (those of the upper
-- layer, past any extension header). A struct kept by the object: valid until the next call.
function ipv6:pseudo_header (plen, nh)
   local ph = self._ph
   if not ph then ph = pseudo_t(); self._ph = ph end
   local h = self._h[0]
   ffi.copy(ph.src_ip, h.src_ip, 32)
   ph.length, ph.next_header = htonl(plen), nh
   ph.zero[0], ph.zero[1], ph.zero[2] = 0, 0, 0
   return ph
end

function ipv6.selftest ()
   print("selftest: lib.protocol.ipv6")
   for _, s in ipairs({"2001:620:0:c101::2", "::1", "fe80::1:2:3:4"}) do
      assert(ipv6:ntop(ipv6:pton(s)) == s, s)
   end
   assert(not pcall(ipv6.pton, ipv6, "2001:::1"))
   assert(ipv6:ntop(ipv6:solicited_node_mcast(ipv6:pton("2001:db8::12:3456")))
          == "ff02::1:ff12:3456")
   local h = ipv6:new({traffic_class = 0xb8, flow_label = 0x12345, next_header = 17,
                       hop_limit = 3, payload_length = 8})
   assert(h:version() == 6 and h:traffic_class() == 0xb8 and h:dscp() == 46 and h:ecn() == 0)
   assert(h:flow_label() == 0x12345 and h:next_header() == 17 and h:hop_limit() == 3)
   local b = ffi.cast("uint8_t *", h:header_ptr())
   assert(b[0] == 0x6b and b[1] == 0x81 and b[2] == 0x23 and b[3] == 0x45 and b[5] == 8)
   -- A packet with hop-by-hop (8), routing (24), fragment (8, first), destination options (16),
   -- AH (12: length byte 1) and UDP (8): the walk ends at UDP at 40 + 68.
   local buf = ffi.new("uint8_t[200]")
   ffi.copy(buf, h:header_ptr(), 40)
   local chain = {{HOP_BY_HOP, 8, 0}, {ROUTING, 24, 2}, {FRAGMENT, 8, 0}, {DEST_OPTS, 16, 1},
                  {AH, 12, 1}}
   buf[6] = HOP_BY_HOP
   local off = 40
   for i, e in ipairs(chain) do
      buf[off] = chain[i + 1] and chain[i + 1][1] or 17
      buf[off + 1] = e[3]
      off = off + e[2]
   end
   local plen = off - 40 + 8
   buf[4], buf[5] = 0, plen
   local nh, l4, l4len, frag = ipv6.payload(buf, 200)
   assert(nh == 17 and l4 == off and l4len == 8 and frag == 0, tostring(nh) .. " " .. tostring(l4))
   -- Every shorter capture is truncated; a payload length ending inside the chain is malformed.
   for len = 0, off + 7 do
      assert(select(2, ipv6.payload(buf, len)) == "truncated", len)
   end
   buf[5] = plen - 9
   assert(select(2, ipv6.payload(buf, 200)) == "malformed")
   buf[5] = plen
   -- A later fragment stops at its fragment header.
   buf[40 + 8 + 24 + 3] = 0x10 -- offset 2 (16 bytes)
   nh, l4, l4len, frag = ipv6.payload(buf, 200)
   assert(nh == FRAGMENT and l4 == 72 and frag == 16)
   buf[40 + 8 + 24 + 3] = 0
   -- Hop-by-hop after the first extension header is malformed.
   buf[40] = HOP_BY_HOP
   assert(select(2, ipv6.payload(buf, 200)) == "malformed")
   buf[40] = ROUTING
   -- The same chain through the classes.
   local ip = ipv6:new_from_mem(buf, 200)
   local class, at = ip:upper_layer(), 40
   local names = {}
   while class and class ~= require("lib.protocol.udp") do
      local e = class:new_from_mem(buf + at, 200 - at)
      names[#names + 1] = e:name()
      at = at + e:sizeof()
      class = e:upper_layer()
   end
   assert(#names == 5 and at == off and names[3] == "ipv6 fragment", table.concat(names, ","))
   print("selftest: ok")
end

return ipv6
