-- lib.protocol.udp: the UDP header, Snabb's class and names (src_port, dst_port, length,
-- checksum), fields in host order.
local ffi = require("ffi")
local lib = require("core.lib")
local header = require("lib.protocol.header")
local subClass = require("lib.lua.class").subClass
local bnot = bit.bnot
local htons, ntohs = lib.htons, lib.ntohs
local ipsum = header.ipsum

local udp = subClass(header)
udp._name = "udp"
udp._ulp = {}
udp:init({ffi.typeof([[struct {
   uint16_t src_port, dst_port, len, checksum;
} __attribute__((packed))]])})

-- config: {src_port, dst_port, length (default 8), checksum}.
function udp:new (config)
   local o = udp:superClass().new(self)
   config = config or {}
   o:src_port(config.src_port or 0)
   o:dst_port(config.dst_port or 0)
   o:length(config.length or 8)
   o._h[0].checksum = htons(config.checksum or 0)
   return o
end

local function field (name)
   return function (self, v)
      local h = self._h[0]
      if v ~= nil then h[name] = htons(v) end
      return ntohs(h[name])
   end
end
udp.src_port = field("src_port")
udp.dst_port = field("dst_port")
udp.length = field("len")

-- With payload: computes and stores the checksum over the header, length bytes of payload and,
-- when ip (an ipv4 or ipv6 header object) is given, its pseudo-header. Returns the checksum.
function udp:checksum (payload, length, ip)
   local h = self._h[0]
   if payload then
      local sum = 0
      if ip then
         local ph = ip:pseudo_header(length + 8, 17)
         sum = ipsum(ph, ffi.sizeof(ph), 0)
      end
      h.checksum = 0
      sum = ipsum(h, 8, bnot(sum))
      local c = ipsum(payload, length, bnot(sum))
      h.checksum = htons(c == 0 and 0xffff or c) -- 0 means "none" in UDP (RFC 768)
   end
   return ntohs(h.checksum)
end

function udp:eq (other)
   return self:src_port() == other:src_port() and self:dst_port() == other:dst_port()
      and self:length() == other:length()
end

function udp.selftest ()
   print("selftest: lib.protocol.udp")
   local u = udp:new({src_port = 53, dst_port = 40000, length = 12})
   local b = ffi.cast("uint8_t *", u:header_ptr())
   assert(b[1] == 53 and b[2] == 0x9c and b[3] == 0x40 and u:length() == 12)
   assert(u:dst_port() == 40000 and u:src_port() == 53)
   -- Over IPv4 10.0.0.1 -> 10.0.0.2 with 4 payload bytes: the sum with the checksum in is 0.
   local ipv4 = require("lib.protocol.ipv4")
   local ip = ipv4:new({src = ipv4:pton("10.0.0.1"), dst = ipv4:pton("10.0.0.2"), protocol = 17})
   local payload = ffi.new("uint8_t[4]", 1, 2, 3, 4)
   u:checksum(payload, 4, ip)
   local ph = ip:pseudo_header(12, 17)
   local s = ipsum(ph, ffi.sizeof(ph), 0)
   s = ipsum(u:header_ptr(), 8, bnot(s))
   assert(ipsum(payload, 4, bnot(s)) == 0)
   print("selftest: ok")
end

return udp
