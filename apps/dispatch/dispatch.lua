-- apps.dispatch.dispatch: Dispatch spreads flows over its outputs, for sources without RSS (a
-- capture, AF_PACKET without fanout, an interlink) in front of several workers. A packet from
-- `input` goes to output hash % #outputs (outputs of any names, in name order), the hash taken over
-- the flow: IPv4 or IPv6 addresses, protocol and TCP/UDP/SCTP ports; the MAC addresses for
-- anything else. The hash is symmetric (both directions of a connection go to the same output),
-- so a stateful function behind it sees whole connections. Counters: output_NAME per output,
-- dropped when no output is linked. Nothing is allocated per packet: the hash is Jenkins'
-- lookup3 in 32-bit integer arithmetic (add, xor, rotate), which LuaJIT compiles exactly.
local ffi = require("ffi")
local bit = require("bit")
local link = require("core.link")
local packet = require("core.packet")
local counter = require("core.counter")
local lib = require("core.lib")

local band, bor, bxor, lshift, rol, tobit = bit.band, bit.bor, bit.bxor, bit.lshift, bit.rol, bit.tobit
local receive, transmit, nreadable = link.receive, link.transmit, link.nreadable
local cast = ffi.cast
local u8_ptr_t = ffi.typeof("const uint8_t *")
local u16_ptr_t = ffi.typeof("const uint16_t *")
local u32_ptr_t = ffi.typeof("const uint32_t *")

local M = {}

-- Jenkins' lookup3 (public domain): mix and final, every sum brought back to 32 bits.
local function mix (a, b, c)
   a = bxor(tobit(a - c), rol(c, 4));  c = tobit(c + b)
   b = bxor(tobit(b - a), rol(a, 6));  a = tobit(a + c)
   c = bxor(tobit(c - b), rol(b, 8));  b = tobit(b + a)
   a = bxor(tobit(a - c), rol(c, 16)); c = tobit(c + b)
   b = bxor(tobit(b - a), rol(a, 19)); a = tobit(a + c)
   c = bxor(tobit(c - b), rol(b, 4));  b = tobit(b + a)
   return a, b, c
end

local function final (a, b, c)
   c = tobit(bxor(c, b) - rol(b, 14))
   a = tobit(bxor(a, c) - rol(c, 11))
   b = tobit(bxor(b, a) - rol(a, 25))
   c = tobit(bxor(c, b) - rol(b, 16))
   a = tobit(bxor(a, c) - rol(c, 4))
   b = tobit(bxor(b, a) - rol(a, 14))
   return tobit(bxor(c, b) - rol(b, 24))
end

local INIT = tobit(0xdeadbeef)
-- Two 16-bit values x, y (ports, the low halves of MACs) as one word that is the same either way
-- round.
local function pair16 (x, y) return bor(lshift(bxor(x, y), 16), band(x + y, 0xffff)) end

local ETH = 14
local IPV4, IPV6, VLAN, QINQ = 0x0008, 0xdd86, 0x0081, 0xa888 -- EtherTypes as memory reads them
local TCP, UDP, SCTP = 6, 17, 132

-- The upper-layer protocols whose first 4 bytes are the ports.
local function has_ports (proto) return proto == TCP or proto == UDP or proto == SCTP end

-- The hash of a packet's flow (a signed 32-bit number). The EtherType after up to two VLAN tags
-- says IPv4 or IPv6. IPv4: addresses and protocol, and the ports unless the packet is a fragment
-- (all fragments of a datagram go together: only the first has ports). IPv6: addresses, and when
-- the next header is TCP/UDP/SCTP the protocol and ports (behind extension headers: the addresses
-- alone). Anything else, and IP cut short before its addresses: the MAC addresses.
local function flow_hash (data, length)
   local d16 = cast(u16_ptr_t, data)
   local l3 = ETH
   if length >= ETH then
      local ethertype = d16[6]
      if (ethertype == VLAN or ethertype == QINQ) and length >= ETH + 4 then
         ethertype, l3 = d16[8], ETH + 4
         if ethertype == VLAN and length >= ETH + 8 then ethertype, l3 = d16[10], ETH + 8 end
      end
      if ethertype == IPV4 and length >= l3 + 20 then
         local ip = data + l3
         local w = cast(u32_ptr_t, ip + 12)
         local s, d, proto = w[0], w[1], ip[9]
         local ports = 0
         local ihl = lshift(band(ip[0], 0x0f), 2) -- (a shift: LuaJIT narrows no multiplication)
         -- Not a fragment: MF clear and offset 0 (bits 0x3fff of the flags and offset).
         if has_ports(proto) and band(ip[6], 0x3f) == 0 and ip[7] == 0 and ihl >= 20
            and length >= l3 + ihl + 4 then
            local p16 = cast(u16_ptr_t, ip + ihl)
            ports = pair16(p16[0], p16[1])
         end
         return final(INIT + bxor(s, d), INIT + tobit(s + d), INIT + bxor(ports, proto))
      elseif ethertype == IPV6 and length >= l3 + 40 then
         local ip = data + l3
         local s, d = cast(u32_ptr_t, ip + 8), cast(u32_ptr_t, ip + 24)
         local proto, ports = ip[6], 0
         if has_ports(proto) and length >= l3 + 44 then
            local p16 = cast(u16_ptr_t, ip + 40)
            ports = bxor(pair16(p16[0], p16[1]), proto)
         end
         local a, b, c = mix(INIT + bxor(s[0], d[0]), INIT + bxor(s[1], d[1]),
                             INIT + bxor(s[2], d[2]))
         a, b, c = mix(a + bxor(s[3], d[3]), b + tobit(s[0] + d[0]), c + tobit(s[1] + d[1]))
         return final(a + tobit(s[2] + d[2]), b + tobit(s[3] + d[3]), c + ports)
      end
   end
   if length < 12 then return 0 end -- not even the addresses: all such runts go together
   local w = cast(u32_ptr_t, data)
   return final(INIT + bxor(w[0], cast(u32_ptr_t, data + 6)[0]),
                INIT + tobit(w[0] + cast(u32_ptr_t, data + 6)[0]),
                INIT + pair16(d16[2], d16[5]))
end
M.flow_hash = function (data, length) return flow_hash(cast(u8_ptr_t, data), length) end

-- Dispatch: input `input`, outputs of any names.
local Dispatch = {inputs = {"input"}, config = {}}
M.Dispatch = Dispatch

function Dispatch:new ()
   return setmetatable({outs = {}, names = {}, counters = {}, counts = {}, n = 0,
                        shm = {dropped = {counter}}}, {__index = Dispatch})
end

-- The outputs in name order, and a counter for each (made in the app's shm frame, so the engine
-- removes it with the app).
function Dispatch:link ()
   local names = {}
   for name, l in pairs(self.output) do
      if type(name) == "string" and l then names[#names+1] = name end
   end
   table.sort(names)
   self.outs, self.names, self.counters, self.counts, self.n = {}, names, {}, {}, #names
   for i, name in ipairs(names) do
      local key = "output_" .. name
      if not self.shm[key] then
         self.shm[key] = counter.create(self.shm.path .. key .. ".counter")
         self.shm.specs[key] = {counter}
      end
      self.outs[i], self.counters[i], self.counts[i] = self.output[name], self.shm[key], 0
   end
end

function Dispatch:push ()
   local input, outs, counts, n = self.input.input, self.outs, self.counts, self.n
   if n == 0 then
      local dropped = nreadable(input)
      for _ = 1, dropped do packet.free(receive(input)) end
      if dropped > 0 then counter.add(self.shm.dropped, dropped) end
      return
   end
   for _ = 1, nreadable(input) do
      local p = receive(input)
      local i = band(flow_hash(p.data, p.length), 0x7fffffff) % n + 1
      transmit(outs[i], p)
      counts[i] = counts[i] + 1
   end
   local counters = self.counters
   for i = 1, n do
      if counts[i] > 0 then
         counter.add(counters[i], counts[i])
         counts[i] = 0
      end
   end
end

function Dispatch:report ()
   local rows = {}
   for i, name in ipairs(self.names) do
      rows[i] = {name, lib.comma_value(counter.read(self.counters[i]))}
   end
   if #rows > 0 then
      io.stdout:write(lib.table_text({"output", "packets"}, rows, {[2] = true}))
   end
end

-- The selftest's flow key, worked out apart from the hash: a string naming the flow (endpoints in
-- sorted order, so both directions have the same key), read byte by byte as text. Packets with
-- the same key must leave by the same output.
local function flow_key (p)
   local b, len = p.data, p.length
   local function hex (at, n)
      local t = {}
      for i = 0, n - 1 do t[#t+1] = ("%02x"):format(b[at + i]) end
      return table.concat(t)
   end
   local function sorted (x, y) if x < y then return x .. "|" .. y end return y .. "|" .. x end
   local function port_key (at, proto)
      if (proto == TCP or proto == UDP or proto == SCTP) and at + 4 <= len then
         return ("%d %d"):format(proto, b[at] * 256 + b[at + 1]),
                ("%d"):format(b[at + 2] * 256 + b[at + 3])
      end
   end
   local off, ethertype = ETH, len >= ETH and b[12] * 256 + b[13]
   for _ = 1, 2 do
      if (ethertype == 0x8100 or ethertype == 0x88a8) and len >= off + 4 then
         ethertype, off = b[off + 2] * 256 + b[off + 3], off + 4
      end
   end
   if ethertype == 0x0800 and len >= off + 20 then
      local s, d, proto = hex(off + 12, 4), hex(off + 16, 4), b[off + 9]
      local fragment = b[off + 6] % 64 ~= 0 or b[off + 7] ~= 0
      local l4 = b[off] % 16 * 4
      if not fragment and l4 >= 20 then
         local sp, dp = port_key(off + l4, proto)
         if sp then return "4 " .. sorted(s .. " " .. sp, d .. " " .. dp) end
      end
      return ("4 %s %d"):format(sorted(s, d), proto)
   elseif ethertype == 0x86dd and len >= off + 40 then
      local s, d = hex(off + 8, 16), hex(off + 24, 16)
      local sp, dp = port_key(off + 40, b[off + 6])
      if sp then return "6 " .. sorted(s .. " " .. sp, d .. " " .. dp) end
      -- Next headers other than TCP/UDP/SCTP (extension headers): the addresses alone.
      return "6 " .. sorted(s, d)
   end
   if len < 12 then return "runt" end
   return "mac " .. sorted(hex(0, 6), hex(6, 6))
end

function M.selftest ()
   print("selftest: apps.dispatch.dispatch")
   local config = require("core.config")
   local engine = require("core.engine")
   local basic = require("apps.basic.basic_apps")
   local pcap = require("apps.pcap.pcap")
   local data = "tests/data/pcap/"
   local captures = {"v4.pcap", "v6.pcap", "tftp_wrq.pcap", "telnet-cooked.pcap", "arp.pcap",
                     "tcp-ack-66-bytes.pcap", "v4-tcp-udp.pcap", "v6-tcp-udp.pcap",
                     "icmp-snapped.pcap", "pf/ip4.pcap", "pf/ip6ext.pcap", "pf/vlan.pcap",
                     "pf/l2.pcap", "pf/truncated.pcap"}
   for _, f in ipairs({"arp_request_recv.pcap", "incoming-icmpv4-echo-request.pcap",
                       "ndp_incoming_ns.pcap", "ping-v4.pcap", "ping-v6-reply.pcap",
                       "tcp-fromb4-ipv6.pcap", "tcp-frominet-bound-vlan.pcap",
                       "tcp-frominet-bound.pcap", "tcp-ipv4-toinet-2fragments.pcap",
                       "tcp-ipv6-2frags-bound.pcap"}) do
      captures[#captures+1] = "lwaftr/" .. f
   end
   -- The records in the files, counted by the reader's own C code.
   local records = 0
   for _, f in ipairs(captures) do
      local r = ffi.C.snabb_pcap_reader_open(data .. f)
      assert(r ~= nil, f)
      records = records + tonumber(ffi.C.snabb_pcap_reader_records(r))
      ffi.C.snabb_pcap_reader_close(r)
   end

   -- Receives from Dispatch: the key of each packet, and which output it came by.
   local seen, got = {}, {}
   local Record = {}
   function Record:new (name) return setmetatable({name = name}, {__index = Record}) end
   function Record:push ()
      local i = self.input.input
      for _ = 1, nreadable(i) do
         local p = receive(i)
         local key = flow_key(p)
         seen[key] = seen[key] or {}
         seen[key][self.name] = (seen[key][self.name] or 0) + 1
         got[self.name] = (got[self.name] or 0) + 1
         packet.free(p)
      end
   end

   for _, n in ipairs({2, 3, 5}) do
      seen, got = {}, {}
      engine.configure(config.new())
      local c = config.new()
      config.app(c, "join", basic.Join)
      for i, f in ipairs(captures) do
         config.app(c, "reader" .. i, pcap.PcapReader, data .. f)
         config.link(c, ("reader%d.output -> join.in%d"):format(i, i))
      end
      config.app(c, "dispatch", Dispatch)
      config.link(c, "join.output -> dispatch.input")
      local outs = {}
      for i = 1, n do
         outs[i] = "out" .. i
         config.app(c, outs[i], Record, outs[i])
         config.link(c, ("dispatch.%s -> %s.input"):format(outs[i], outs[i]))
      end
      engine.configure(c)
      local total = function ()
         local t = 0
         for _, v in pairs(got) do t = t + v end
         return t
      end
      engine.main({done = function () return total() == records end, duration = 10})
      -- Counts add up: every record came out once; each output's counter is what arrived there.
      assert(total() == records, ("%d outputs: %d of %d records"):format(n, total(), records))
      local d = engine.app_table.dispatch
      local flows_per_output, flows = {}, 0
      for i, name in ipairs(outs) do
         local counted = tonumber(counter.read(d.shm["output_" .. name]))
         assert(counted == (got[name] or 0), ("%s: counter %d, received %d"):format(
            name, counted, got[name] or 0))
         flows_per_output[i] = 0
      end
      assert(tonumber(counter.read(d.shm.dropped)) == 0)
      -- Flows never split: every key reached one output only.
      for key, by in pairs(seen) do
         local where = {}
         for name in pairs(by) do where[#where+1] = name end
         assert(#where == 1, ("flow %s split over %s"):format(key, table.concat(where, ", ")))
         flows = flows + 1
         for i, name in ipairs(outs) do
            if name == where[1] then flows_per_output[i] = flows_per_output[i] + 1 end
         end
      end
      -- And spread: each output has some of the flows.
      for i = 1, n do assert(flows_per_output[i] > 0, ("%s has no flow"):format(outs[i])) end
      print(("  %d outputs: %d records, %d flows: %s flows per output"):format(
         n, records, flows, table.concat(flows_per_output, " ")))
   end

   -- Symmetric, and the fields that are not the flow's do not count: a UDP/IPv4 packet and its
   -- reply hash alike; a change of port changes the hash.
   local p = packet.from_string(
      "\0\1\2\3\4\5\6\7\8\9\10\11\8\0" ..
      "\69\0\0\28\0\0\0\0\64\17\0\0\10\0\0\1\10\0\0\2" ..
      "\4\210\0\53\0\8\0\0")
   local h = M.flow_hash(p.data, p.length)
   local q = packet.clone(p)
   ffi.copy(q.data, p.data + 6, 6); ffi.copy(q.data + 6, p.data, 6)          -- MACs
   ffi.copy(q.data + 26, p.data + 30, 4); ffi.copy(q.data + 30, p.data + 26, 4) -- addresses
   ffi.copy(q.data + 34, p.data + 36, 2); ffi.copy(q.data + 36, p.data + 34, 2) -- ports
   q.data[22] = 1 -- TTL
   assert(M.flow_hash(q.data, q.length) == h)
   q.data[35] = 54
   assert(M.flow_hash(q.data, q.length) ~= h)
   packet.free(p); packet.free(q)

   -- No output: dropped and counted.
   engine.configure(config.new())
   local c = config.new()
   config.app(c, "reader", pcap.PcapReader, data .. "v4.pcap")
   config.app(c, "dispatch", Dispatch)
   config.link(c, "reader.output -> dispatch.input")
   engine.configure(c)
   engine.main({done = function () return engine.app_table.reader.done end, duration = 10})
   engine.main({duration = 0.01})
   assert(tonumber(counter.read(engine.app_table.dispatch.shm.dropped)) == 43)
   engine.configure(config.new())
   print("selftest: ok")
end

return M
