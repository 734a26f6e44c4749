-- snabb gen-pcap OUT.pcap [--size BYTES | --imix] [--flows N] [--packets N] [--seed S]: writes a
-- synthetic capture of Ethernet II / IPv4 / UDP frames with valid checksums. The same arguments
-- give the same bytes, timestamps included: the first packet is at 2026-01-01T00:00:00Z and each
-- next one follows when the previous has left a 10 Gbit/s wire.
local ffi = require("ffi")
local argparse = require("argparse")
local cli = require("programs.cli")
require("core.cdefs")
require("apps.pcap.cdefs")
local packet = require("core.packet")
local lib = require("core.lib")
local pcap = require("apps.pcap.pcap")
local C = ffi.C
local band, rshift, floor = bit.band, bit.rshift, math.floor

local M = {}

local ETH, IP, UDP, FCS = 14, 20, 8, 4
local HEADERS = ETH + IP + UDP
local MIN_SIZE, MAX_SIZE = 64, 1518       -- frame sizes with FCS, as RFC 2544 counts them
local MAX_FLOWS = 2^24
-- Simple IMIX 7:4:1, interleaved so that any 12 consecutive packets hold the exact ratio.
local IMIX = {64, 570, 64, 64, 570, 64, 64, 570, 64, 64, 570, 1518}
local EPOCH_NS = 1767225600ULL * 1000000000ULL -- 2026-01-01T00:00:00Z
local WIRE_BPNS = 10                           -- 10 Gbit/s: bits per nanosecond
-- Flow f: 10.0.0.0/16 (from 10.0.0.1) port 1024+ -> 10.1.0.1 port 9 (discard), between locally
-- administered MACs. Address and port wrap at different periods, so 5-tuples stay distinct.
local SRC_IP, SRC_HOSTS, DST_IP = 0x0a000001, 65534, 0x0a010001
local SRC_PORT, SRC_PORTS, DST_PORT = 1024, 64512, 9
local MACS = "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" -- dst, src, IPv4

local ERRLEN = 1024
local errbuf = ffi.new("char[?]", ERRLEN)

local function put16 (p, v) p[0], p[1] = rshift(v, 8), band(v, 0xff) end
local function put32 (p, v) put16(p, rshift(v, 16)); put16(p + 2, band(v, 0xffff)) end
local function get16 (p) return p[0] * 256 + p[1] end

-- RFC 1071 ones' complement sum of n bytes, added to sum and folded to 16 bits.
local function csum (p, n, sum)
   for k = 0, n - 2, 2 do sum = sum + p[k] * 256 + p[k + 1] end
   if n % 2 == 1 then sum = sum + p[n - 1] * 256 end
   while sum > 0xffff do sum = band(sum, 0xffff) + rshift(sum, 16) end
   return sum
end

-- UDP's sum over the pseudo-header (addresses, protocol, UDP length) and the datagram.
local function udp_sum (ip)
   local ulen = get16(ip + 2) - IP
   return csum(ip + IP, ulen, csum(ip + 12, 8, 17 + ulen))
end

-- Writes one frame of `size` bytes on the wire (the capture holds it without FCS) into p.
local function build (p, size, flow, seq, seed, payload)
   local d, len = p.data, size - FCS
   ffi.copy(d, MACS, ETH)
   local ip = d + ETH
   ip[0], ip[1] = 0x45, 0
   put16(ip + 2, len - ETH)
   put16(ip + 4, (seed + seq) % 65536)       -- identification
   put16(ip + 6, 0x4000)                     -- don't fragment
   ip[8], ip[9] = 64, 17                     -- TTL, UDP
   put16(ip + 10, 0)
   put32(ip + 12, SRC_IP + flow % SRC_HOSTS)
   put32(ip + 16, DST_IP)
   put16(ip + 10, 0xffff - csum(ip, IP, 0))
   local udp = ip + IP
   put16(udp, SRC_PORT + flow % SRC_PORTS)
   put16(udp + 2, DST_PORT)
   put16(udp + 4, len - ETH - IP)
   put16(udp + 6, 0)
   ffi.copy(udp + UDP, payload, len - HEADERS)
   local sum = 0xffff - udp_sum(ip)
   put16(udp + 6, sum == 0 and 0xffff or sum) -- 0 would mean "no checksum"
   p.length = len
end

-- Writes the capture; opts: file, size or imix, flows, packets, seed. Returns the bytes captured.
-- Errors (e.g. the file cannot be created) are raised as one message naming the file.
function M.generate (opts)
   local sizes = opts.imix and IMIX or {opts.size or MIN_SIZE}
   local flows, seed = opts.flows or 1, opts.seed or 1
   -- Payload: byte k is (k + seed) mod 256, the same for every packet.
   local payload = ffi.new("uint8_t[?]", MAX_SIZE)
   for k = 0, MAX_SIZE - 1 do payload[k] = (k + seed) % 256 end
   local w = C.snabb_pcap_writer_open(opts.file, 0, 0, errbuf, ERRLEN)
   if w == nil then error(ffi.string(errbuf), 0) end
   local bytes, bits = 0, 0
   for seq = 0, opts.packets - 1 do
      local size = sizes[seq % #sizes + 1]
      local p = packet.allocate()
      build(p, size, seq % flows, seq, seed, payload)
      packet.set_timestamp(p, EPOCH_NS + floor(bits / WIRE_BPNS))
      C.snabb_pcap_writer_write(w, p, 0)
      bytes, bits = bytes + p.length, bits + pcap.wire_bits(p.length)
      packet.free(p)
   end
   if C.snabb_pcap_writer_close(w, errbuf, ERRLEN) ~= 0 then error(ffi.string(errbuf), 0) end
   return bytes
end

local function parser ()
   local p = argparse("snabb gen-pcap",
      "Write a synthetic capture of Ethernet/IPv4/UDP frames (the same arguments give the same file).")
      :add_help("-h --help")
   p:argument("output", "pcap file to write")
   local size = p:option("--size", "frame size on the wire with FCS, as RFC 2544 counts it (64..1518; default 64)")
      :convert(cli.whole("--size", MIN_SIZE, MAX_SIZE, "a frame size with FCS"))
   local imix = p:flag("--imix", "simple IMIX: 64, 570 and 1518-byte frames, 7:4:1, interleaved")
   p:mutex(size, imix)
   p:option("--flows", "distinct UDP flows, sent round-robin"):default("1")
      :convert(cli.whole("--flows", 1, MAX_FLOWS))
   p:option("--packets", "packets to write; 1e6 style allowed"):default("1000")
      :convert(cli.whole("--packets", 1, 2^40))
   p:option("--seed", "varies the payload pattern and IP identifications"):default("1")
      :convert(cli.whole("--seed", 0, 65535))
   return p
end

function M.run (args)
   local p = parser()
   local opts = cli.parse(p, args)
   if not opts then return 2 end
   opts.file = opts.output
   local ok, bytes = pcall(M.generate, opts)
   if not ok then
      io.stderr:write(("snabb gen-pcap: %s\n"):format(bytes))
      return 1
   end
   local comma = lib.comma_value
   print(("wrote %s packets (%s, %s flow%s, %s bytes captured) to %s"):format(
      comma(opts.packets), opts.imix and "IMIX 7:4:1" or (opts.size or MIN_SIZE) .. "-byte frames",
      comma(opts.flows), opts.flows == 1 and "" or "s", comma(bytes), opts.file))
   return 0
end

function M.selftest ()
   print("selftest: programs.gen_pcap.gen_pcap")
   local file = os.tmpname()
   -- Reads file back: frame lengths in order, timestamps, and the set of source ip.port pairs,
   -- checking each frame's headers, lengths and both checksums on the way.
   local function read_back ()
      local r = C.snabb_pcap_reader_open(file, errbuf, ERRLEN)
      assert(r ~= nil, ffi.string(errbuf))
      local p = packet.allocate()
      local lengths, stamps, flows, nflows = {}, {}, {}, 0
      while C.snabb_pcap_reader_next(r, p, errbuf, ERRLEN) == 1 do
         local d, len = p.data, p.length
         local ip = d + ETH
         assert(get16(d + 12) == 0x0800 and ip[0] == 0x45 and ip[9] == 17)
         assert(get16(ip + 2) == len - ETH and get16(ip + IP + 4) == len - ETH - IP, "lengths")
         assert(csum(ip, IP, 0) == 0xffff, "IPv4 header checksum")
         assert(get16(ip + IP + 6) ~= 0 and udp_sum(ip) == 0xffff, "UDP checksum")
         local flow = ("%d.%d.%d.%d:%d"):format(ip[12], ip[13], ip[14], ip[15], get16(ip + IP))
         if not flows[flow] then flows[flow], nflows = true, nflows + 1 end
         lengths[#lengths + 1], stamps[#stamps + 1] = len, packet.timestamp(p)
      end
      packet.free(p)
      C.snabb_pcap_reader_close(r)
      return lengths, stamps, nflows
   end
   local function contents ()
      local f = assert(io.open(file, "rb"))
      local s = f:read("*a")
      f:close()
      return s
   end

   -- IMIX: exact 7:4:1 in every window of 12, flows round-robin, timestamps from the epoch.
   assert(M.generate({file = file, imix = true, flows = 5, packets = 40, seed = 7}) ==
          3 * (7 * 60 + 4 * 566 + 1514) + 60 + 566 + 60 + 60)
   local lengths, stamps, nflows = read_back()
   assert(#lengths == 40 and nflows == 5)
   for start = 1, #lengths - 11 do
      local count = {}
      for k = start, start + 11 do count[lengths[k]] = (count[lengths[k]] or 0) + 1 end
      assert(count[60] == 7 and count[566] == 4 and count[1514] == 1, "7:4:1 window at " .. start)
   end
   assert(stamps[1] == EPOCH_NS, "first timestamp")
   local bits = 0
   for k = 2, #stamps do
      bits = bits + pcap.wire_bits(lengths[k - 1])
      -- microsecond pcap: the wire time, truncated to whole microseconds
      assert(stamps[k] == EPOCH_NS + floor(floor(bits / WIRE_BPNS) / 1000) * 1000, "timestamp " .. k)
   end
   -- The same arguments give the same bytes; another seed does not.
   local first = contents()
   M.generate({file = file, imix = true, flows = 5, packets = 40, seed = 7})
   assert(contents() == first, "not deterministic")
   M.generate({file = file, imix = true, flows = 5, packets = 40, seed = 8})
   assert(contents() ~= first, "seed ignored")

   -- Fixed sizes: the capture holds the frame without FCS; more flows than packets.
   for _, size in ipairs({64, 65, 1518}) do
      M.generate({file = file, size = size, flows = 100, packets = 30})
      lengths, _, nflows = read_back()
      assert(#lengths == 30 and nflows == 30)
      for _, len in ipairs(lengths) do assert(len == size - FCS) end
   end
   -- Flow numbers past the address and port periods still make distinct ip.port pairs.
   M.generate({file = file, flows = 70000, packets = 70000})
   assert(select(3, read_back()) == 70000, "flows not distinct")

   -- Options are checked; an unwritable file is one message naming it.
   local p = parser()
   assert(p:pparse({"x.pcap", "--imix", "--flows", "16", "--packets", "1e6"}))
   for _, bad in ipairs({{"x", "--size", "63"}, {"x", "--size", "1519"}, {"x", "--size", "64", "--imix"},
                         {"x", "--flows", "0"}, {"x", "--packets", "1.5"}, {"x", "--seed", "-1"}}) do
      assert(not p:pparse(bad), table.concat(bad, " "))
   end
   local ok, err = pcall(M.generate, {file = "/nonexistent/x.pcap", packets = 1})
   assert(not ok and err == "/nonexistent/x.pcap: No such file or directory", err)
   os.remove(file)
   print("selftest: programs.gen_pcap.gen_pcap ok")
end

return M
