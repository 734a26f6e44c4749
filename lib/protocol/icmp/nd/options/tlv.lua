-- lib.protocol.icmp.nd.options.tlv: one Neighbor Discovery option (type, length in units of 8
-- bytes, value), Snabb's class and names: new(type, data), name(), type(), length(), option() (the
-- lladdr object of a source/target link-layer address option). new_from_mem refuses (nil) a
-- length of 0 or an option that runs past size.
local ffi = require("ffi")
local header = require("lib.protocol.header")
local subClass = require("lib.lua.class").subClass

local tlv = subClass(header)
tlv._name = "tlv"
tlv._ulp = {}
tlv:init({ffi.typeof("struct { uint8_t type; uint8_t length; } __attribute__((packed))")})
local names = {[1] = "src_ll_addr", [2] = "tgt_ll_addr"}

-- data: an lladdr object (its 6 bytes follow type and length; the option is 8 bytes).
function tlv:new (type, data)
   local mem = ffi.new("uint8_t[8]")
   mem[0], mem[1] = type, 1
   if data then ffi.copy(mem + 2, data:addr(), 6) end
   local o = tlv:new_from_mem(mem, 8)
   o._keep = mem
   return o
end

function tlv:new_from_mem (mem, size)
   if size < 2 then return nil end
   local n = ffi.cast("const uint8_t *", mem)[1] * 8
   if n == 0 or n > size then return nil end
   local o = tlv:superClass().new_from_mem(self, mem, size)
   o._size = n
   return o
end

function tlv:name () return names[self:type()] end

function tlv:type (t)
   local h = self._h[0]
   if t ~= nil then h.type = t end
   return h.type
end

function tlv:length () return self._h[0].length end

-- The option's value as an object (lladdr for types 1 and 2), or nil.
function tlv:option ()
   if names[self:type()] and self:sizeof() >= 8 then
      local lladdr = require("lib.protocol.icmp.nd.options.lladdr")
      return lladdr:new_from_mem(ffi.cast("uint8_t *", self._h[0]) + 2, self:sizeof() - 2)
   end
end

return tlv
