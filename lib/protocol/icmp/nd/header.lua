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

function nd_header.selftest ()
   print("selftest: lib.protocol.icmp.nd")
   local ipv6 = require("lib.protocol.ipv6")
   local ethernet = require("lib.protocol.ethernet")
   local ns = require("lib.protocol.icmp.nd.ns")
   local na = require("lib.protocol.icmp.nd.na")
   local tlv = require("lib.protocol.icmp.nd.options.tlv")
   local lladdr = require("lib.protocol.icmp.nd.options.lladdr")
   local target = ipv6:pton("2001:db8::7")
   local s = ns:new(target)
   assert(s:sizeof() == 20 and s:target_eq(target) and ipv6:ntop(s:target()) == "2001:db8::7")
   local a = na:new(target, 1, 0, 1)
   assert(a:router() == 1 and a:solicited() == 0 and a:override() == 1)
   assert(ffi.cast("uint8_t *", a:header_ptr())[0] == 0xa0, "R and O are the top bits")
   a:solicited(true)
   assert(a:solicited() == 1 and ffi.cast("uint8_t *", a:header_ptr())[0] == 0xe0)
   -- Options: a nonce (type 14, 8 bytes) then a source link-layer address.
   local mac = ethernet:pton("02:00:00:00:00:09")
   local opt = tlv:new(1, lladdr:new(mac))
   assert(opt:name() == "src_ll_addr" and opt:length() == 1 and opt:type() == 1)
   local buf = ffi.new("uint8_t[16]", 14, 1)
   ffi.copy(buf + 8, opt:header_ptr(), 8)
   local list = s:options(buf, 16)
   assert(#list == 2 and list[1]:type() == 14 and list[1]:option() == nil)
   assert(ethernet:ntop(list[2]:option():addr()) == "02:00:00:00:00:09")
   assert(ethernet:ntop(nd_header.find_lladdr(buf, 16, 1)) == "02:00:00:00:00:09")
   assert(nd_header.find_lladdr(buf, 16, 2) == nil)
   -- A length of 0, or an option past the end, is malformed; never read past size.
   assert(nd_header.find_lladdr(buf, 15, 1) == nil and select(2, s:options(buf, 15)) == "malformed")
   buf[1] = 0
   assert(select(2, s:options(buf, 16)) == "malformed" and nd_header.find_lladdr(buf, 16, 1) == nil)
   print("selftest: ok")
end

return nd_header
