-- tools/bench-protocol.lua: what reading a packet's 5-tuple costs, cycles per packet, three ways
-- over the same packets, alternating: raw FFI casts bounded by ipv4.payload/ipv6.payload (what
-- examples/firewall.lua does), lib.protocol.datagram parsing Ethernet, IP and TCP/UDP with the
-- accessors, and header classes chained with new_from_mem/free. Packets: every record of the
-- captures given (default tests/data/pcap/v4.pcap and v6.pcap), in memory; each method runs over
-- them ROUNDS times per trial (TSC cycles / packets), 9 trials, medians.
--   bazel-bin/programs/snabb tools/bench-protocol.lua [ROUNDS] [PCAP...]
local ffi = require("ffi")
local lib = require("core.lib")
local packet = require("core.packet")
local datagram = require("lib.protocol.datagram")
local ethernet = require("lib.protocol.ethernet")
local ipv4 = require("lib.protocol.ipv4")
local ipv6 = require("lib.protocol.ipv6")
local tcp = require("lib.protocol.tcp")
local udp = require("lib.protocol.udp")
local C = ffi.C
local ntohs = lib.ntohs
local u16_ptr_t = ffi.typeof("uint16_t *")

local args = {...}
local rounds = tonumber(args[1]) or 2000
local files = {}
for i = 2, #args do files[#files + 1] = args[i] end
if #files == 0 then files = {"tests/data/pcap/v4.pcap", "tests/data/pcap/v6.pcap"} end

-- The records of a pcap file (either byte order), as packets.
local packets = {}
for _, file in ipairs(files) do
   local data = assert(lib.readfile(file, "*a"), file)
   local swap = data:byte(1) == 0xa1
   local function u32 (pos)
      local b1, b2, b3, b4 = data:byte(pos + 1, pos + 4)
      if swap then return ((b1 * 256 + b2) * 256 + b3) * 256 + b4 end
      return ((b4 * 256 + b3) * 256 + b2) * 256 + b1
   end
   local pos = 24
   while pos + 16 <= #data do
      local caplen = u32(pos + 8)
      packets[#packets + 1] = packet.from_string(data:sub(pos + 17, pos + 16 + caplen))
      pos = pos + 16 + caplen
   end
end
local n = #packets
local array = ffi.new("struct packet *[?]", n)
for i = 1, n do array[i - 1] = packets[i] end

-- Each returns the sum of the ports read (so nothing is optimised away).
local function raw ()
   local sum = 0
   for r = 1, rounds do
      for i = 0, n - 1 do
         local p = array[i]
         local data, len = p.data, p.length
         if len >= 14 then
            local type = ntohs(ffi.cast(u16_ptr_t, data + 12)[0])
            local proto, l4, l4len, frag
            if type == 0x0800 then
               proto, l4, l4len, frag = ipv4.payload(data + 14, len - 14)
            elseif type == 0x86dd then
               proto, l4, l4len, frag = ipv6.payload(data + 14, len - 14)
            end
            if (proto == 6 or proto == 17) and frag == 0 and l4len >= 4 then
               local ports = ffi.cast(u16_ptr_t, data + 14 + l4)
               sum = sum + ntohs(ports[0]) + ntohs(ports[1])
            end
         end
      end
      sum = sum + r * 0
   end
   return sum
end

local dgram = datagram:new()
packet.free(dgram:packet())
local function with_datagram ()
   local sum = 0
   for _ = 1, rounds do
      for i = 0, n - 1 do
         dgram:new(array[i], ethernet)
         if dgram:parse() and dgram:parse() then
            local l4 = dgram:parse()
            if l4 then
               local class = l4:class()
               if class == tcp or class == udp then sum = sum + l4:src_port() + l4:dst_port() end
            end
         end
      end
   end
   return sum
end

local function with_headers ()
   local sum = 0
   for _ = 1, rounds do
      for i = 0, n - 1 do
         local p = array[i]
         local eth = ethernet:new_from_mem(p.data, p.length)
         if eth then
            local class = eth:upper_layer()
            eth:free()
            if class == ipv4 or class == ipv6 then
               local ip = class:new_from_mem(p.data + 14, p.length - 14)
               if ip then
                  local size, l4class = ip:sizeof(), ip:upper_layer()
                  ip:free()
                  if l4class == tcp or l4class == udp then
                     local h = l4class:new_from_mem(p.data + 14 + size, p.length - 14 - size)
                     if h then
                        sum = sum + h:src_port() + h:dst_port()
                        h:free()
                     end
                  end
               end
            end
         end
      end
   end
   return sum
end

local methods = {{"raw casts + ipv4/ipv6.payload", raw}, {"datagram + accessors", with_datagram},
                 {"header classes, new_from_mem/free", with_headers}}
local results = {}
for _, m in ipairs(methods) do results[m[1]] = {} end
local sums = {}
for _ = 1, 9 do
   for _, m in ipairs(methods) do
      local t0 = C.snabb_rdtsc()
      sums[m[1]] = m[2]()
      local t1 = C.snabb_rdtsc()
      table.insert(results[m[1]], tonumber(t1 - t0) / (rounds * n))
   end
end
local rows = {}
for _, m in ipairs(methods) do
   local r = results[m[1]]
   table.sort(r)
   rows[#rows + 1] = {m[1], ("%.1f"):format(r[5]), ("%.1f"):format(r[1]), ("%.1f"):format(r[9])}
end
print(("%d packets of %s, %d rounds a trial, 9 trials alternating"):format(n,
      table.concat(files, ", "), rounds))
io.write(lib.table_text({"method", "cycles/packet (median)", "min", "max"}, rows,
                        {false, true, true, true}))
-- The three read the same ports of the same packets (IPv4 fragments past the first aside: none
-- here carries a TCP/UDP header, and all three skip them).
local a = sums[methods[1][1]]
for _, m in ipairs(methods) do
   assert(sums[m[1]] == a, m[1] .. " read other ports than the raw casts")
end
for i = 1, n do packet.free(packets[i]) end
