-- lib.protocol.dot1q: the 4 bytes of an 802.1Q (TPID 0x8100) or 802.1ad (0x88a8) VLAN tag after the
-- MACs, Snabb's class: id() is the whole TCI (PCP, DEI, VID) as Snabb has it, vid()/pcp()/dei() its
-- parts, type() the EtherType that follows (host order). Upper layers as Ethernet's, so Q-in-Q
-- parses as two dot1q headers.
local ffi = require("ffi")
local lib = require("core.lib")
local header = require("lib.protocol.header")
local subClass = require("lib.lua.class").subClass
local band, bor, lshift, rshift = bit.band, bit.bor, bit.lshift, bit.rshift
local htons, ntohs = lib.htons, lib.ntohs

local dot1q = subClass(header)
dot1q._name = "dot1q"
dot1q.TPID = 0x8100 -- 802.1Q (customer tag)
dot1q.TPID_8021AD = 0x88a8 -- 802.1ad (service tag, the outer one of Q-in-Q)
dot1q._ulp = {
   method = "type",
   class_map = {
      [0x0800] = "lib.protocol.ipv4",
      [0x86dd] = "lib.protocol.ipv6",
      [0x0806] = "lib.protocol.arp",
      [0x8100] = "lib.protocol.dot1q",
      [0x88a8] = "lib.protocol.dot1q",
   },
}
dot1q:init({ffi.typeof([[struct {
   uint16_t tci;
   uint16_t type;
} __attribute__((packed))]])})

-- config: {id = TCI, type = EtherType} (or vid/pcp instead of id).
function dot1q:new (config)
   local o = dot1q:superClass().new(self)
   config = config or {}
   o:id(config.id or 0)
   if config.vid then o:vid(config.vid) end
   if config.pcp then o:pcp(config.pcp) end
   o:type(config.type or 0)
   return o
end

function dot1q:id (id)
   local h = self._h[0]
   if id ~= nil then h.tci = htons(id) end
   return ntohs(h.tci)
end

function dot1q:vid (vid)
   if vid ~= nil then self:id(bor(band(self:id(), 0xf000), band(vid, 0x0fff))) end
   return band(self:id(), 0x0fff)
end

function dot1q:pcp (pcp)
   if pcp ~= nil then self:id(bor(band(self:id(), 0x1fff), lshift(band(pcp, 7), 13))) end
   return rshift(self:id(), 13)
end

function dot1q:dei () return band(rshift(self:id(), 12), 1) end

function dot1q:type (t)
   local h = self._h[0]
   if t ~= nil then h.type = htons(t) end
   return ntohs(h.type)
end

function dot1q.selftest ()
   print("selftest: lib.protocol.dot1q")
   local q = dot1q:new({vid = 100, pcp = 5, type = 0x0800})
   assert(q:id() == 0xa064 and q:vid() == 100 and q:pcp() == 5 and q:dei() == 0)
   local b = ffi.cast("uint8_t *", q:header_ptr())
   assert(b[0] == 0xa0 and b[1] == 0x64 and b[2] == 0x08 and b[3] == 0)
   q:vid(4095)
   assert(q:vid() == 4095 and q:pcp() == 5)
   assert(q:upper_layer() == require("lib.protocol.ipv4"))
   q:type(0x8100)
   assert(q:upper_layer() == dot1q)
   print("selftest: ok")
end

return dot1q
