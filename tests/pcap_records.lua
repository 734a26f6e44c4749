-- tests/pcap_records.lua: the records of a classic pcap file (either byte order, microsecond or
-- nanosecond timestamps), read in Lua for test scripts that need what apps/pcap's libpcap reader
-- does not give: any link type (SLL, SLL2), and each record's captured and wire lengths.
-- Test scripts load it with dofile by its path (beside them, or tests/pcap_records.lua from the
-- runfiles root); the function it returns gives a file's records, {data = string, caplen = n,
-- len = wire length}, and its link type.
local ffi = require("ffi")

return function (path)
   local f = assert(io.open(path, "rb"))
   local s = f:read("*a")
   f:close()
   local bytes = ffi.cast("const uint8_t *", s)
   local magic = #s >= 24 and ffi.cast("const uint32_t *", bytes)[0]
   local swap = magic == 0xd4c3b2a1 or magic == 0x4d3cb2a1
   assert(swap or magic == 0xa1b2c3d4 or magic == 0xa1b23c4d, path .. ": not a pcap file")
   local function u32 (at)
      local v = ffi.cast("const uint32_t *", bytes + at)[0]
      return tonumber(swap and ffi.cast("uint32_t", bit.bswap(v)) or v)
   end
   local records, at = {}, 24
   while at + 16 <= #s do
      local caplen = u32(at + 8)
      records[#records + 1] = {data = s:sub(at + 17, at + 16 + caplen), caplen = caplen,
                               len = u32(at + 12)}
      at = at + 16 + caplen
   end
   return records, u32(20)
end
