-- snabb tests/checksum_check.lua PCAP TSV [PCAP TSV...]: lib.checksum against tshark, packet by
-- packet. TSV is tshark's reading of PCAP (tests/checksum_test.sh): frame number, and the
-- ip/tcp/udp/icmp/icmpv6 checksum status (1 good, 0 bad, 2 unverified, 3 not present; the first
-- value is the outermost header's). For each frame's first IPv4 header (outer, or inside IPv6)
-- verify_ipv4_header must say what tshark says of it, and verify_l4_* what tshark says of its
-- TCP/UDP/ICMP(v6) checksum: true for good, false for bad, nil for unverified or not present --
-- except on a frame captured short (snapped), where ours is false (truncated: not checkable, a
-- packet to drop). Where tshark says good, zeroing the checksum and recomputing it (ipv4_header,
-- l4_ipv4/l4_ipv6) must give back the stored bytes; where bad, recomputing makes ours verify.
-- Prints what was compared per file; fails unless all of good, bad and unverified were seen.
local ffi = require("ffi")
local pcap_records = dofile(arg[0]:gsub("[^/]*$", "") .. "pcap_records.lua") -- beside this script
local checksum = require("lib.checksum")

local args = {...}
assert(#args >= 2 and #args % 2 == 0, "usage: checksum_check.lua PCAP TSV [PCAP TSV...]")

local failures = 0
local function fail (fmt, ...)
   failures = failures + 1
   print("FAIL: " .. fmt:format(...))
end

-- The frames of a pcap file: {data = uint8_t[], caplen, len, linktype}.
local function read_pcap (path)
   local records, linktype = pcap_records(path)
   for _, r in ipairs(records) do
      r.data, r.linktype = ffi.new("uint8_t[?]", r.caplen + 1, r.data), linktype
   end
   return records
end

-- tshark's statuses by frame: t[frame][field] = first value as a number, or nil.
local fields = {"ip", "tcp", "udp", "icmp", "icmpv6"}
local function read_tsv (path)
   local t = {}
   for line in io.lines(path) do
      local cols = {}
      for col in (line .. "\t"):gmatch("([^\t]*)\t") do cols[#cols + 1] = col end
      local row = {}
      for i, name in ipairs(fields) do row[name] = tonumber(cols[i + 1]:match("^[^,]*")) end
      t[tonumber(cols[1])] = row
   end
   return t
end

local function be16 (p, at) return p[at] * 256 + p[at + 1] end

-- The IP header's offset in a frame (Ethernet with VLAN tags, or Linux cooked SLL/SLL2).
local function ip_offset (frame)
   local p, at = frame.data, 12
   if frame.linktype == 113 then at = 14 end -- Linux cooked (SLL)
   if frame.linktype == 276 then -- SLL2: the protocol first, a 20-byte header
      if frame.caplen < 20 then return nil end
      local etype = be16(p, 0)
      if etype == 0x0800 or etype == 0x86dd then return 20 end
      return nil
   end
   if at + 2 > frame.caplen then return nil end
   local etype = be16(p, at)
   while (etype == 0x8100 or etype == 0x88a8) and at + 6 <= frame.caplen do
      at = at + 4
      etype = be16(p, at)
   end
   if etype == 0x0800 or etype == 0x86dd then return at + 2 end
end

local l4_field = {[6] = "tcp", [17] = "udp", [1] = "icmp", [58] = "icmpv6"}
local expect_of = {[1] = true, [0] = false}
local seen = {[true] = 0, [false] = 0, unverified = 0, recomputed = 0, malformed = 0}

local function show (v) return v == nil and "nil" or tostring(v) end

-- The L4 header of the IP packet at ip (no extension headers: the captures have them only on
-- fragments, which have nothing to recompute): its offset and protocol.
local function l4_at (ip)
   if bit.rshift(ip[0], 4) == 4 then return bit.band(ip[0], 0x0f) * 4, ip[9] end
   return 40, ip[6]
end

local function check_frame (name, n, frame, ts)
   local at = ip_offset(frame)
   if not at then return end
   local ip, len = frame.data + at, frame.caplen - at
   local snapped = frame.caplen < frame.len
   -- IPv4 in IPv6 (lwaftr's softwire): tshark's statuses are of the inner packet.
   if bit.rshift(ip[0], 4) == 6 and len >= 40 and ip[6] == 4 then ip, len = ip + 40, len - 40 end
   local v4 = bit.rshift(ip[0], 4) == 4
   if v4 then
      local ours, theirs = checksum.verify_ipv4_header(ip, len), expect_of[ts.ip]
      if ours ~= theirs then
         fail("%s frame %d: IPv4 header: ours %s, tshark %s", name, n, show(ours), show(ts.ip))
      elseif theirs then
         local stored = be16(ip, 10)
         if checksum.ipv4_header(ip) ~= stored or be16(ip, 10) ~= stored then
            fail("%s frame %d: IPv4 header recomputed %04x, stored %04x", name, n,
                 be16(ip, 10), stored)
         end
      end
   end
   local verify = v4 and checksum.verify_l4_ipv4 or checksum.verify_l4_ipv6
   local compute = v4 and checksum.l4_ipv4 or checksum.l4_ipv6
   local ours = verify(ip, len)
   local l4, proto = l4_at(ip)
   local field = l4_field[proto]
   local status = field and ts[field]
   local theirs = expect_of[status]
   if snapped and theirs == nil and status then theirs = false end
   if ours ~= theirs then
      fail("%s frame %d: %s: ours %s, tshark %s", name, n, field or ("protocol " .. proto),
           show(ours), show(status))
      return
   end
   if theirs == nil then
      seen.unverified = seen.unverified + 1
      return
   end
   seen[theirs] = seen[theirs] + 1
   if snapped then return end
   local c = l4 + ({tcp = 16, udp = 6, icmp = 2, icmpv6 = 2})[field]
   local stored = be16(ip, c)
   local computed = compute(ip, len)
   if computed == false and not theirs then
      -- Malformed (an IP total length past the frame's end, as telnet-cooked's frame 18): tshark
      -- calls its checksum bad, ours refuses it and computes nothing.
      seen.malformed = seen.malformed + 1
      return
   elseif theirs and (computed ~= stored or be16(ip, c) ~= stored) then
      fail("%s frame %d: %s recomputed %s, stored %04x", name, n, field, show(computed), stored)
   elseif not theirs and verify(ip, len) ~= true then
      fail("%s frame %d: %s recomputed %s does not verify", name, n, field, show(computed))
   end
   seen.recomputed = seen.recomputed + 1
end

for i = 1, #args, 2 do
   local pcap, tsv = args[i], args[i + 1]
   local name = pcap:match("[^/]*/?[^/]*$")
   local frames, statuses = read_pcap(pcap), read_tsv(tsv)
   local before = seen[true] + seen[false] + seen.unverified
   for n, frame in ipairs(frames) do
      local ts = statuses[n]
      if not ts then
         fail("%s: frame %d not in tshark's reading", name, n)
      else
         check_frame(name, n, frame, ts)
      end
   end
   print(("%s: %d frames, %d L4 checksums compared"):format(name, #frames,
         seen[true] + seen[false] + seen.unverified - before))
end
print(("agreed with tshark: %d good, %d bad (%d of them malformed), %d not verifiable; "
       .. "%d recomputed"):format(seen[true], seen[false], seen.malformed, seen.unverified,
                                  seen.recomputed))
if seen[true] == 0 or seen[false] == 0 or seen.unverified == 0 then
   fail("the captures did not give good, bad and unverifiable checksums")
end
if failures > 0 then
   print(("%d failures"):format(failures))
   os.exit(1)
end
