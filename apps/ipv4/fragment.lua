-- apps.ipv4.fragment: Fragmenter (Snabb's name and config), which cuts IPv4 packets longer than
-- `mtu` into fragments as a router does (RFC 791): every fragment keeps the packet's
-- identification; the first carries all the options, the later ones only the options whose copy
-- flag is set; payloads but the last's are multiples of 8 bytes; each header's checksum is
-- recomputed. A packet that is already a fragment is cut again with offsets relative to the
-- original datagram and its MF flag kept on the last piece. Packets within the MTU and frames that
-- are not IPv4 pass untouched; a packet with Don't Fragment set that does not fit is dropped and
-- counted (no ICMP is sent). Frames are Ethernet, untagged or with one 802.1Q tag.
local ffi = require("ffi")
local bit = require("bit")
local packet = require("core.packet")
local link = require("core.link")
local counter = require("core.counter")
local header = require("apps.ipv4.header")

local band, bor = bit.band, bit.bor
local floor = math.floor
local receive, transmit = link.receive, link.transmit
local allocate, free, copy = packet.allocate, packet.free, ffi.copy
local l2_length, header_length = header.l2_length, header.header_length
local get16, set16 = header.get16, header.set16
local checksum = require("lib.checksum")
local checksum_ok, set_checksum = checksum.verify_ipv4_header, checksum.ipv4_header
local MF, DF, OFFSET_MASK = header.MF, header.DF, header.OFFSET_MASK

local M = {}

local Fragmenter = {
   -- RFC 791: every module must pass 68 bytes unfragmented (a 60-byte header and 8 of data).
   config = {
      mtu = {required = true, integer = true, min = 68, max = 65535, unit = "bytes"},
      icmp_source = {type = "string", allows = "an IPv4 address", check = function (v)
         return type(v) == "string" and ffi.C.inet_pton(2, v, ffi.new("uint8_t[4]")) == 1 and v
            or nil
      end},
   },
   shm = {
      ["out-ipv4-frag"] = {counter},       -- fragments sent
      ["out-ipv4-frag-not"] = {counter},   -- packets sent whole: within the MTU, or not IPv4
      ["ipv4-fragmented"] = {counter},     -- packets cut into fragments
      ["drop-ipv4-frag-df"] = {counter},   -- over the MTU with Don't Fragment set
      ["drop-ipv4-malformed"] = {counter}, -- header truncated or insane, bad options or checksum
      ["out-icmp-frag-needed"] = {counter}, -- ICMP "fragmentation needed" sent on `errors`
   },
}
M.Fragmenter = Fragmenter

function Fragmenter:new (conf)
   local source
   if conf.icmp_source then
      source = ffi.new("uint8_t[4]")
      ffi.C.inet_pton(2, conf.icmp_source, source)
   end
   return setmetatable({
      mtu = conf.mtu,
      icmp_source = source,
      -- The header of the fragments after the first (IPv4 header + copied options, <= 60 bytes).
      later = ffi.new("uint8_t[60]"),
   }, {__index = Fragmenter})
end

-- Writes into self.later the header of the fragments after the first: the fixed 20 bytes of ip
-- and the options whose copy flag (the type's high bit) is set, padded with End of Options to a
-- multiple of 4. Returns its length, or 0 when the options are malformed.
function Fragmenter:later_header (ip, ihl)
   local h = self.later
   copy(h, ip, 20)
   local i, n = 20, 20
   while i < ihl do
      local t = ip[i]
      if t == 0 then break end -- End of Options
      if t == 1 then           -- No Operation: one byte, not copied
         i = i + 1
      else
         if i + 1 >= ihl then return 0 end
         local len = ip[i + 1]
         if len < 2 or i + len > ihl then return 0 end
         if t >= 0x80 then
            copy(h + n, ip + i, len)
            n = n + len
         end
         i = i + len
      end
   end
   while band(n, 3) ~= 0 do h[n] = 0; n = n + 1 end
   h[0] = 0x40 + n / 4
   return n
end

-- Sends the fragments of the packet p (l2 bytes of link header, then the IPv4 header at ip of ihl
-- bytes and total length total). Returns false (nothing sent) when its options are malformed or
-- its offsets would pass 65535.
function Fragmenter:fragment (o, p, l2, ip, ihl, total)
   local later_ihl = self:later_header(ip, ihl)
   local word = get16(ip, 6)
   local base = band(word, OFFSET_MASK) * 8 -- where this packet's data sits in its datagram
   local payload = total - ihl
   if later_ihl == 0 or base + total > 65535 then return false end
   local last_mf = band(word, MF)   -- the last piece is a last fragment iff the packet was
   local keep = band(word, 0x8000)  -- the reserved bit, as received (DF is clear here)
   local mtu, d, later = self.mtu, p.data, self.later
   local hdr, hl, offset, sent = ip, ihl, 0, 0
   while true do
      local room = floor((mtu - hl) / 8) * 8
      local size, mf = payload - offset, last_mf
      if size > room then size, mf = room, MF end
      local f = allocate()
      local fd = f.data
      copy(fd, d, l2)
      copy(fd + l2, hdr, hl)
      copy(fd + l2 + hl, ip + ihl + offset, size)
      f.length = l2 + hl + size
      local fip = fd + l2
      set16(fip, 2, hl + size)
      set16(fip, 6, bor(keep, mf, (base + offset) / 8))
      set_checksum(fip)
      transmit(o, f)
      sent = sent + 1
      offset = offset + size
      if offset >= payload then break end
      hdr, hl = later, later_ihl
   end
   counter.add(self.shm["out-ipv4-frag"], sent)
   return true
end

-- Sends on `errors` an ICMP "fragmentation needed and DF set" (type 3 code 4, with the MTU as
-- RFC 1191's next-hop MTU) back to the source of the packet p: from icmp_source, the frame's
-- link header with its addresses swapped, the packet's IP header and first 8 bytes of data.
function Fragmenter:frag_needed (p, l2, ip, ihl)
   local quoted = ihl + 8
   local e = allocate()
   local d, ed = p.data, e.data
   copy(ed, d + 6, 6)
   copy(ed + 6, d, 6)
   copy(ed + 12, d + 12, l2 - 12)
   local eip = ed + l2
   local icmp = eip + 20
   ffi.fill(eip, 28)
   eip[0], eip[8], eip[9] = 0x45, 64, 1
   set16(eip, 2, 28 + quoted)
   copy(eip + 12, self.icmp_source, 4)
   copy(eip + 16, ip + 12, 4)
   set_checksum(eip)
   icmp[0], icmp[1] = 3, 4
   set16(icmp, 6, self.mtu)
   copy(icmp + 8, ip, quoted)
   set16(icmp, 2, checksum.ipsum(icmp, 8 + quoted, 0))
   e.length = l2 + 28 + quoted
   counter.add(self.shm["out-icmp-frag-needed"])
   transmit(self.output.errors, e)
end

function Fragmenter:push ()
   local i, o = self.input.input, self.output.output
   local shm, mtu = self.shm, self.mtu
   for _ = 1, link.nreadable(i) do
      local p = receive(i)
      local d, len = p.data, p.length
      local l2 = l2_length(d, len)
      if l2 == 0 then
         counter.add(shm["out-ipv4-frag-not"])
         transmit(o, p)
      else
         local ip = d + l2
         local ihl = header_length(ip, len - l2)
         local total = ihl > 0 and get16(ip, 2) or 0
         if ihl == 0 then
            counter.add(shm["drop-ipv4-malformed"])
            free(p)
         elseif total <= mtu then
            counter.add(shm["out-ipv4-frag-not"])
            transmit(o, p)
         elseif band(get16(ip, 6), DF) ~= 0 then
            counter.add(shm["drop-ipv4-frag-df"])
            if self.icmp_source and self.output.errors then self:frag_needed(p, l2, ip, ihl) end
            free(p)
         elseif checksum_ok(ip, ihl) and self:fragment(o, p, l2, ip, ihl, total) then
            counter.add(shm["ipv4-fragmented"])
            free(p)
         else
            counter.add(shm["drop-ipv4-malformed"])
            free(p)
         end
      end
   end
end

function M.selftest ()
   print("selftest: apps.ipv4.fragment")
   local lib = require("core.lib")
   local get = function (d, i) return d[i] * 256 + d[i + 1] end
   local bytes = function (p, from, n) return ffi.string(p.data + from, n) end
   local app = header.instance(Fragmenter, {mtu = 1500}, "fragment")
   local function count (name) return header.count(app, name) end
   local sent, fragmented = 0, 0

   -- Within the MTU, and not IPv4: the same packet out, untouched.
   local small = header.build{payload = 1480}
   local arp = packet.from_string(("\255"):rep(12) .. "\8\6" .. ("\0"):rep(28))
   local out = header.push(app, {small, arp})
   assert(#out == 2 and out[1] == small and out[2] == arp)
   assert(small.length == 14 + 1500 and count("out-ipv4-frag-not") == 2)
   free(small); free(arp)
   sent = sent + 2

   -- Options: a copied one (type 0x83, loose source route, 7 bytes), a NOP, a not copied one
   -- (0x07, record route, 7 bytes), a NOP and End: 20 bytes. Later fragments carry the first
   -- option alone, padded to 8 bytes.
   local opts = "\131\7\4\1\2\3\4" .. "\1" .. "\7\7\4\0\0\0\0" .. "\1\0\0\0\0"
   local copied = "\131\7\4\1\2\3\4\0"
   for _, vid in ipairs({false, 7}) do
      for _, options in ipairs({"", opts}) do
         for size = 0, 3000, 61 do
            for _, mtu in ipairs({68, 69, 100, 576, 1280, 1500}) do
               app.mtu = mtu
               local p = header.build{payload = size, options = options, vid = vid or nil,
                                      id = size, flags = 0x8000}
               local l2, ihl = vid and 18 or 14, 20 + #options
               local whole = bytes(p, 0, p.length)
               local frags = header.push(app, {p})
               sent = sent + 1
               if ihl + size <= mtu then
                  assert(#frags == 1 and frags[1] == p)
                  free(p)
               else
                  fragmented = fragmented + 1
                  local data, offset = {}, 0
                  for k, f in ipairs(frags) do
                     local ip = f.data + l2
                     local hl = band(ip[0], 15) * 4
                     local total, word = get(ip, 2), get(ip, 6)
                     assert(f.length == l2 + total and total <= mtu)
                     assert(bytes(f, 0, l2) == whole:sub(1, l2), "link header")
                     assert(get(ip, 4) == size, "identification kept")
                     assert(checksum_ok(ip, hl), "header checksum")
                     assert(band(word, OFFSET_MASK) * 8 == offset, "contiguous offsets")
                     assert(band(word, 0x8000) ~= 0, "reserved bit kept")
                     local last = k == #frags
                     assert((band(word, MF) ~= 0) == not last, "MF on all but the last")
                     if not last then assert((total - hl) % 8 == 0) end
                     -- The first carries all options, the others the copied ones.
                     local want = k == 1 and options or (options == "" and "" or copied)
                     assert(hl == 20 + #want and bytes(f, l2 + 20, #want) == want, "options")
                     assert(bytes(f, l2 + 8, 2) == whole:sub(l2 + 9, l2 + 10), "ttl, protocol")
                     assert(bytes(f, l2 + 12, 8) == whole:sub(l2 + 13, l2 + 20), "addresses")
                     data[#data + 1] = bytes(f, l2 + hl, total - hl)
                     offset = offset + total - hl
                     free(f)
                  end
                  assert(table.concat(data) == whole:sub(l2 + ihl + 1), "data")
               end
            end
         end
      end
   end
   assert(count("ipv4-fragmented") == fragmented)

   -- A fragment cut again: offsets from its datagram's start, MF kept on its last piece.
   app.mtu = 100
   local middle = header.build{payload = 400, flags = MF + 1000}
   local frags = header.push(app, {middle})
   sent, fragmented = sent + 1, fragmented + 1
   assert(#frags == 5)
   for k, f in ipairs(frags) do
      local word = get(f.data + 14, 6)
      assert(band(word, OFFSET_MASK) == 1000 + (k - 1) * 10 and band(word, MF) ~= 0)
      free(f)
   end
   -- Offsets that would pass 65535 (8189 * 8 + 400): malformed.
   assert(#header.push(app, {header.build{payload = 400, flags = 8189}}) == 0)

   -- Don't Fragment: dropped and counted, and with icmp_source an ICMP "fragmentation needed"
   -- on `errors`; malformed headers dropped and counted.
   assert(#header.push(app, {header.build{payload = 200, flags = 0x4000}}) == 0)
   assert(count("drop-ipv4-frag-df") == 1 and count("out-icmp-frag-needed") == 0)
   local icmp = header.instance(Fragmenter, {mtu = 100, icmp_source = "192.0.2.1"}, "icmp")
   icmp.output.errors = link.new("errors")
   local df = header.build{payload = 200, flags = 0x4000, vid = 9}
   local sent_df = packet.clone(df)
   assert(#header.push(icmp, {df}) == 0 and header.count(icmp, "out-icmp-frag-needed") == 1)
   local e = receive(icmp.output.errors)
   local ed = e.data
   local eip, icmph = ed + 18, ed + 38
   assert(e.length == 18 + 20 + 8 + 28 and bytes(e, 0, 6) == bytes(sent_df, 6, 6))
   assert(bytes(e, 6, 6) == bytes(sent_df, 0, 6) and bytes(e, 12, 6) == bytes(sent_df, 12, 6))
   assert(checksum_ok(eip, 20) and eip[9] == 1 and get(eip, 2) == 56)
   assert(bytes(e, 18 + 12, 4) == "\192\0\2\1" and bytes(e, 18 + 16, 4) == bytes(sent_df, 18 + 12, 4))
   assert(icmph[0] == 3 and icmph[1] == 4 and get(icmph, 6) == 100)
   assert(checksum.ipsum(icmph, 36, 0) == 0, "ICMP checksum")
   assert(bytes(e, 38 + 8, 28) == bytes(sent_df, 18, 28), "the packet's header and 8 bytes")
   free(e); free(sent_df)
   local ok, err = pcall(lib.parse, {mtu = 100, icmp_source = "192.0.2"}, Fragmenter.config)
   assert(not ok and err:match("icmp_source.*an IPv4 address"), err)
   local bad = {}
   local p = header.build{payload = 200}; p.length = 14 + 19 -- truncated header
   bad[#bad + 1] = p
   p = header.build{payload = 200}; p.length = p.length - 1 -- total length past the end
   bad[#bad + 1] = p
   p = header.build{payload = 200}; p.data[14] = 0x44 -- IHL 4
   bad[#bad + 1] = p
   p = header.build{payload = 200}; p.data[14 + 8] = 1 -- TTL changed: checksum wrong
   bad[#bad + 1] = p
   -- An option whose length runs past the header.
   bad[#bad + 1] = header.build{payload = 200, options = "\131\9\4\0"}
   assert(#header.push(app, bad) == 0)
   assert(count("drop-ipv4-malformed") == #bad + 1)
   sent = sent + #bad + 2

   -- Every packet in is accounted for.
   assert(count("out-ipv4-frag-not") + count("ipv4-fragmented") + count("drop-ipv4-frag-df")
          + count("drop-ipv4-malformed") == sent)
   assert(count("ipv4-fragmented") == fragmented)
   header.free_links()
   print("selftest: apps.ipv4.fragment ok")
end

return M
