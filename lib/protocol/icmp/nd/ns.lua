-- lib.protocol.icmp.nd.ns: the Neighbor Solicitation message after the ICMPv6 header (reserved,
-- target address), Snabb's class and names: new(target), target(), target_eq().
local ffi = require("ffi")
local nd_header = require("lib.protocol.icmp.nd.header")
local subClass = require("lib.lua.class").subClass
local C = ffi.C

local ns = subClass(nd_header)
ns._name = "neighbor solicitation"
ns._ulp = {}
ns:init({ffi.typeof("struct { uint32_t reserved; uint8_t target[16]; } __attribute__((packed))")})

function ns:new (target)
   local o = ns:superClass().new(self)
   if target then o:target(target) end
   return o
end

function ns:target (target)
   local h = self._h[0]
   if target ~= nil then ffi.copy(h.target, target, 16) end
   return h.target
end

function ns:target_eq (target) return C.memcmp(target, self._h[0].target, 16) == 0 end

return ns
