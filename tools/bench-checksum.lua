-- tools/bench-checksum.lua (run by tools/bench-checksum, or `snabb tools/bench-checksum.lua
-- [ROUNDS]`): what lib.checksum costs from Lua, JIT-compiled, per call: ipsum over 20/64/576/1500
-- bytes (the C++ sum through the FFI), the IPv4 header and a 1500-byte TCP/IPv4 packet's L4
-- checksum computed and verified, and an RFC 1624 update; median ns of ROUNDS (default 9).
local ffi = require("ffi")
local checksum = require("lib.checksum")
local lib = require("core.lib")
local now = require("snabb.runtime").now

local rounds = tonumber((...)) or 9
local calls = 2000000
local buf = ffi.new("uint8_t[1600]")
for i = 0, 1599 do buf[i] = i * 7 % 251 end
-- A TCP/IPv4 packet of 1500 bytes: version/IHL, total length, protocol, addresses.
buf[0], buf[2], buf[3], buf[9] = 0x45, 1500 / 256, 1500 % 256, 6
buf[6], buf[7] = 0, 0
checksum.ipv4_header(buf)
checksum.l4_ipv4(buf, 1500)

local median = lib.median

local cases = {}
for _, n in ipairs({20, 64, 576, 1500}) do
   cases[#cases + 1] = {("ipsum, %d bytes"):format(n), function (k)
      local acc = 0
      for i = 1, k do acc = acc + checksum.ipsum(buf, n, i % 65536) end
      return acc
   end}
end
cases[#cases + 1] = {"verify_ipv4_header", function (k)
   local acc = 0
   for _ = 1, k do if checksum.verify_ipv4_header(buf, 1500) then acc = acc + 1 end end
   return acc
end}
cases[#cases + 1] = {"ipv4_header", function (k)
   local acc = 0
   for _ = 1, k do acc = acc + checksum.ipv4_header(buf) end
   return acc
end}
cases[#cases + 1] = {"verify_l4_ipv4, 1500 bytes", function (k)
   local acc = 0
   for _ = 1, k do if checksum.verify_l4_ipv4(buf, 1500) then acc = acc + 1 end end
   return acc
end}
cases[#cases + 1] = {"l4_ipv4, 1500 bytes", function (k)
   local acc = 0
   for _ = 1, k do acc = acc + checksum.l4_ipv4(buf, 1500) end
   return acc
end}
cases[#cases + 1] = {"incremental16", function (k)
   local c = 0x1234
   for i = 1, k do c = checksum.incremental16(c, i % 65536, (i * 3) % 65536) end
   return c
end}

local rows = {}
for _, case in ipairs(cases) do
   local ns = {}
   case[2](1000) -- compiled before it is timed
   for r = 1, rounds do
      local t0 = now()
      case[2](calls)
      ns[r] = (now() - t0) / calls * 1e9
   end
   rows[#rows + 1] = {case[1], ("%.2f"):format(median(ns))}
end
print(("lib.checksum from Lua (AVX2 path in use: %s), median of %d rounds of %d calls"):format(
   checksum.avx2 and "yes" or "no", rounds, calls))
io.write(lib.table_text({"call", "ns"}, rows, {[2] = true}))
