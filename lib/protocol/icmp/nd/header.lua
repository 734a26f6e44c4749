-- lib.protocol.icmp.nd.header: what Neighbor Solicitation and Advertisement share (RFC 4861):
-- options(mem, size), Snabb's call, returns the TLV options of the message's payload as
-- lib.protocol.icmp.nd.options.tlv objects (allocates a table: not per packet), or nil and
-- "malformed" when an option has length 0 or runs past size. For a packet loop,
-- nd_header.find_lladdr(mem, size, type) returns a pointer to the 6-byte address of the first
-- source (type 1) or target (type 2) link-layer address option, without allocating.
local ffi = require("ffi")
local header = require("lib.protocol.header")
local subClass = require("lib.lua.class").subClass

local nd_header = subClass(header)
nd_header._name = "nd"
nd_header._ulp = {}
local ptr_t = ffi.typeof("const uint8_t *")

function nd_header:options (mem, size)
   local tlv = require("lib.protocol.icmp.nd.options.tlv")
   local result = {}
   mem = ffi.cast(ptr_t, mem)
   while size > 0 do
      local o = tlv:new_from_mem(mem, size)
      if not o then return nil, "malformed" end
      result[#result + 1] = o
      local n = o:length() * 8
      mem, size = mem + n, size - n
   end
   return result
end

function nd_header.find_lladdr (mem, size, type)
   local b = ffi.cast(ptr_t, mem)
   local pos = 0
   while pos + 2 <= size do
      local n = b[pos + 1] * 8
      if n == 0 or pos + n > size then return nil end
      if b[pos] == type and n >= 8 then return b + pos + 2 end
      pos = pos + n
   end
   return nil
end

return nd_header
