-- lib.protocol.arp: the ARP packet for IPv4 over Ethernet (RFC 826: htype 1, ptype 0x0800, hlen
-- 6, plen 4), fields in host order: oper() (1 request, 2 reply), sha/spa/tha/tpa (sender and
-- target hardware and protocol addresses, pointers into the header). new_from_mem refuses (nil)
-- any other hardware or protocol type or address length.
local ffi = require("ffi")
local lib = require("core.lib")
local header = require("lib.protocol.header")
local subClass = require("lib.lua.class").subClass
local htons, ntohs = lib.htons, lib.ntohs

local arp = subClass(header)
arp._name = "arp"
arp._ulp = {}
arp.REQUEST, arp.REPLY = 1, 2
arp:init({ffi.typeof([[struct {
   uint16_t htype, ptype;
   uint8_t  hlen, plen;
   uint16_t oper;
   uint8_t  sha[6], spa[4], tha[6], tpa[4];
} __attribute__((packed))]])})

-- config: {oper, sha, spa, tha, tpa}.
function arp:new (config)
   local o = arp:superClass().new(self)
   config = config or {}
   local h = o._h[0]
   h.htype, h.ptype, h.hlen, h.plen = htons(1), htons(0x0800), 6, 4
   o:oper(config.oper or arp.REQUEST)
   for _, f in ipairs({"sha", "spa", "tha", "tpa"}) do
      if config[f] then ffi.copy(h[f], config[f], f:sub(2) == "ha" and 6 or 4) end
   end
   return o
end

function arp:new_from_mem (mem, size)
   local o = arp:superClass().new_from_mem(self, mem, size)
   if not o then return nil end
   local h = o._h[0]
   if ntohs(h.htype) ~= 1 or ntohs(h.ptype) ~= 0x0800 or h.hlen ~= 6 or h.plen ~= 4 then
      o:free()
      return nil
   end
   return o
end

function arp:oper (v)
   local h = self._h[0]
   if v ~= nil then h.oper = htons(v) end
   return ntohs(h.oper)
end

function arp:sha () return self._h[0].sha end
function arp:spa () return self._h[0].spa end
function arp:tha () return self._h[0].tha end
function arp:tpa () return self._h[0].tpa end

function arp.selftest ()
   print("selftest: lib.protocol.arp")
   local ethernet, ipv4 = require("lib.protocol.ethernet"), require("lib.protocol.ipv4")
   local a = arp:new({oper = arp.REPLY, sha = ethernet:pton("02:00:00:00:00:01"),
                      spa = ipv4:pton("10.0.0.1"), tpa = ipv4:pton("10.0.0.2")})
   assert(a:sizeof() == 28 and a:oper() == 2 and ipv4:ntop(a:spa()) == "10.0.0.1")
   assert(ethernet:ntop(a:sha()) == "02:00:00:00:00:01" and ipv4:ntop(a:tpa()) == "10.0.0.2")
   local b = arp:new_from_mem(a:header_ptr(), 28)
   assert(b and b:eq(a))
   ffi.cast("uint8_t *", a:header_ptr())[4] = 8 -- hlen 8
   assert(arp:new_from_mem(a:header_ptr(), 28) == nil)
   print("selftest: ok")
end

return arp
