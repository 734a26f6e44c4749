-- lib.protocol.icmp.nd.na: the Neighbor Advertisement message after the ICMPv6 header (flags R, S,
-- O, target address), Snabb's class and names: new(target, router, solicited, override),
-- target(), router(), solicited(), override(), target_eq().
local ffi = require("ffi")
local nd_header = require("lib.protocol.icmp.nd.header")
local subClass = require("lib.lua.class").subClass
local C = ffi.C
local band, bor, bnot, lshift, rshift = bit.band, bit.bor, bit.bnot, bit.lshift, bit.rshift

local na = subClass(nd_header)
na._name = "neighbor advertisement"
na._ulp = {}
na:init({ffi.typeof([[struct {
   uint8_t flags;      // router:1, solicited:1, override:1, reserved:5
   uint8_t reserved[3];
   uint8_t target[16];
} __attribute__((packed))]])})

function na:new (target, router, solicited, override)
   local o = na:superClass().new(self)
   if target then o:target(target) end
   o:router(router or 0)
   o:solicited(solicited or 0)
   o:override(override or 0)
   return o
end

function na:target (target)
   local h = self._h[0]
   if target ~= nil then ffi.copy(h.target, target, 16) end
   return h.target
end

function na:target_eq (target) return C.memcmp(target, self._h[0].target, 16) == 0 end

local function flag (shift)
   return function (self, v)
      local h = self._h[0]
      if v ~= nil then
         if v == true then v = 1 elseif v == false then v = 0 end
         h.flags = bor(band(h.flags, bnot(lshift(1, shift))), lshift(band(v, 1), shift))
      end
      return band(rshift(h.flags, shift), 1)
   end
end
na.router = flag(7)
na.solicited = flag(6)
na.override = flag(5)

return na
