-- lib.protocol.icmp.header: the ICMP (IPv4) and ICMPv6 header (type, code, checksum), Snabb's
-- class and names; ICMPv6 types 135 and 136 carry Neighbor Solicitation and Advertisement
-- (lib.protocol.icmp.nd.ns / .na). checksum(payload, length, ipv6) includes the IPv6
-- pseudo-header when ipv6 (an ipv6 header object) is given, as ICMPv6 requires; ICMPv4 has none.
local ffi = require("ffi")
local lib = require("core.lib")
local header = require("lib.protocol.header")
local subClass = require("lib.lua.class").subClass
local bnot = bit.bnot
local htons, ntohs = lib.htons, lib.ntohs
local ipsum = header.ipsum

local icmp = subClass(header)
icmp._name = "icmp"
icmp._ulp = {
   method = "type",
   class_map = {[135] = "lib.protocol.icmp.nd.ns", [136] = "lib.protocol.icmp.nd.na"},
}
icmp:init({ffi.typeof([[struct {
   uint8_t type, code;
   uint16_t checksum;
} __attribute__((packed))]])})

function icmp:new (type, code)
   local o = icmp:superClass().new(self)
   o:type(type or 0)
   o:code(code or 0)
   return o
end

function icmp:type (t)
   local h = self._h[0]
   if t ~= nil then h.type = t end
   return h.type
end

function icmp:code (c)
   local h = self._h[0]
   if c ~= nil then h.code = c end
   return h.code
end

-- The sum over pseudo-header (ICMPv6), this header with a zero checksum, and payload.
local function sum (self, payload, length, ipv6)
   local h = self._h[0]
   local s = 0
   if ipv6 then
      local ph = ipv6:pseudo_header(length + 4, 58)
      s = ipsum(ph, ffi.sizeof(ph), 0)
   end
   local stored = h.checksum
   h.checksum = 0
   s = ipsum(h, 4, bnot(s))
   h.checksum = stored
   return ipsum(payload, length, bnot(s))
end

-- Computes and stores the checksum over length bytes of payload (what follows this header).
function icmp:checksum (payload, length, ipv6)
   local c = sum(self, payload, length, ipv6)
   self._h[0].checksum = htons(c)
   return c
end

function icmp:checksum_check (payload, length, ipv6)
   return sum(self, payload, length, ipv6) == ntohs(self._h[0].checksum)
end

function icmp.selftest ()
   print("selftest: lib.protocol.icmp.header")
   -- An echo request (type 8) with 4 bytes of payload: its checksum by hand is
   -- ~(0x0800 + 0x0001 + 0x0203) = ~0x0a04 = 0xf5fb.
   local h = icmp:new(8, 0)
   local payload = ffi.new("uint8_t[4]", 0, 1, 2, 3)
   assert(h:checksum(payload, 4) == 0xf5fb and h:checksum_check(payload, 4))
   payload[3] = 4
   assert(not h:checksum_check(payload, 4))
   assert(h:upper_layer() == nil)
   h:type(135)
   assert(h:upper_layer() == require("lib.protocol.icmp.nd.ns"))
   print("selftest: ok")
end

return icmp
