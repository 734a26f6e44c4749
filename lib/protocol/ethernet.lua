-- lib.protocol.ethernet: the Ethernet II header (dst, src, type), Snabb's class and names.
-- Addresses are 6-byte cdata (pton makes one, ntop prints one); type() is host order. Upper
-- layers: IPv4, IPv6, ARP, 802.1Q/802.1ad (lib.protocol.dot1q).
local ffi = require("ffi")
local lib = require("core.lib")
local header = require("lib.protocol.header")
local subClass = require("lib.lua.class").subClass
local C = ffi.C
local htons, ntohs = lib.htons, lib.ntohs

local ethernet = subClass(header)
ethernet._name = "ethernet"
ethernet._ulp = {
   method = "type",
   class_map = {
      [0x0800] = "lib.protocol.ipv4",
      [0x86dd] = "lib.protocol.ipv6",
      [0x0806] = "lib.protocol.arp",
      [0x8100] = "lib.protocol.dot1q",
      [0x88a8] = "lib.protocol.dot1q",
   },
}
ethernet:init({ffi.typeof([[struct {
   uint8_t  ether_dhost[6];
   uint8_t  ether_shost[6];
   uint16_t ether_type;
} __attribute__((packed))]])})

local mac_t = ffi.typeof("uint8_t[6]")

-- config: {src = mac, dst = mac, type = number}, absent fields zero.
function ethernet:new (config)
   local o = ethernet:superClass().new(self)
   config = config or {}
   if config.src then o:src(config.src) end
   if config.dst then o:dst(config.dst) end
   o:type(config.type or 0)
   return o
end

-- "00:11:22:aa:bb:cc" -> 6 bytes (cdata); errors on anything else.
function ethernet:pton (s)
   local mac = mac_t()
   local i = 0
   for byte in tostring(s):gmatch("[^:%-]+") do
      local v = tonumber(byte, 16)
      if not v or v > 255 or #byte > 2 or i >= 6 then i = -1; break end
      mac[i] = v
      i = i + 1
   end
   if i ~= 6 then error(("not a MAC address: %q"):format(tostring(s)), 2) end
   return mac
end

-- 6 bytes -> "00:11:22:aa:bb:cc".
function ethernet:ntop (mac)
   mac = ffi.cast("const uint8_t *", mac)
   return ("%02x:%02x:%02x:%02x:%02x:%02x"):format(mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])
end

-- The multicast MAC of an IPv6 multicast address (RFC 2464 section 7): 33:33 + its last 4 bytes.
function ethernet:ipv6_mcast (ip)
   local mac = mac_t(0x33, 0x33)
   ffi.copy(mac + 2, ffi.cast("const uint8_t *", ip) + 12, 4)
   return mac
end

function ethernet:is_mcast (mac)
   return bit.band(ffi.cast("const uint8_t *", mac)[0], 1) ~= 0
end

local bcast = mac_t(0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
function ethernet:is_bcast (mac)
   return C.memcmp(mac, bcast, 6) == 0
end

function ethernet:src (mac)
   local h = self._h[0]
   if mac ~= nil then ffi.copy(h.ether_shost, mac, 6) end
   return h.ether_shost
end

function ethernet:dst (mac)
   local h = self._h[0]
   if mac ~= nil then ffi.copy(h.ether_dhost, mac, 6) end
   return h.ether_dhost
end

function ethernet:src_eq (mac) return C.memcmp(mac, self._h[0].ether_shost, 6) == 0 end
function ethernet:dst_eq (mac) return C.memcmp(mac, self._h[0].ether_dhost, 6) == 0 end

function ethernet:swap ()
   local h = self._h[0]
   local tmp = mac_t()
   ffi.copy(tmp, h.ether_dhost, 6)
   ffi.copy(h.ether_dhost, h.ether_shost, 6)
   ffi.copy(h.ether_shost, tmp, 6)
end

function ethernet:type (t)
   local h = self._h[0]
   if t ~= nil then h.ether_type = htons(t) end
   return ntohs(h.ether_type)
end

function ethernet.selftest ()
   print("selftest: lib.protocol.ethernet")
   local a = ethernet:pton("54:52:00:01:00:0a")
   assert(ethernet:ntop(a) == "54:52:00:01:00:0a")
   assert(not pcall(ethernet.pton, ethernet, "54:52:00:01:00"))
   assert(not pcall(ethernet.pton, ethernet, "54:52:00:01:00:100"))
   local e = ethernet:new({src = a, dst = ethernet:pton("ff:ff:ff:ff:ff:ff"), type = 0x86dd})
   assert(e:type() == 0x86dd and e:src_eq(a) and ethernet:is_bcast(e:dst()))
   assert(ethernet:is_mcast(e:dst()) and not ethernet:is_mcast(a) and not ethernet:is_bcast(a))
   -- In network order in memory.
   local bytes = ffi.cast("uint8_t *", e:header_ptr())
   assert(bytes[12] == 0x86 and bytes[13] == 0xdd and bytes[6] == 0x54 and bytes[0] == 0xff)
   e:swap()
   assert(e:dst_eq(a) and ethernet:is_bcast(e:src()))
   assert(e:upper_layer() == require("lib.protocol.ipv6"))
   e:type(0x1234)
   assert(e:upper_layer() == nil)
   local ip6 = ffi.new("uint8_t[16]", 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 1)
   assert(ethernet:ntop(ethernet:ipv6_mcast(ip6)) == "33:33:ff:00:00:01")
   print("selftest: ok")
end

return ethernet
