-- lib.protocol.icmp.nd.options.lladdr: the 6-byte link-layer address in a source/target
-- link-layer address option, Snabb's class and names: new(addr), name(), addr().
local ffi = require("ffi")
local header = require("lib.protocol.header")
local subClass = require("lib.lua.class").subClass

local lladdr = subClass(header)
lladdr._name = "ll_addr"
lladdr._ulp = {}
lladdr:init({ffi.typeof("struct { uint8_t addr[6]; } __attribute__((packed))")})

function lladdr:new (addr)
   local o = lladdr:superClass().new(self)
   if addr then o:addr(addr) end
   return o
end

function lladdr:addr (addr)
   local h = self._h[0]
   if addr ~= nil then ffi.copy(h.addr, addr, 6) end
   return h.addr
end

return lladdr
