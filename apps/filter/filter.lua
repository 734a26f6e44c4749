-- apps.filter.filter: PacketFilter{filter = "EXPR"} (Snabb's apps.packet_filter.pcap_filter's
-- name and use): passes from `input` to `output` the packets a pcap-filter(7) expression matches
-- and drops (frees) the others, counting both (`accepted`, `rejected`: shm counters). The
-- expression is compiled by lib.pf into Lua that LuaJIT traces into this app's loop (bpf = true:
-- libpcap's BPF translated to Lua instead); an invalid one fails the config in one line.
local ffi = require("ffi")
local link = require("core.link")
local packet = require("core.packet")
local counter = require("core.counter")
local pf = require("lib.pf")

local C = ffi.C
local receive, transmit, nreadable = link.receive, link.transmit, link.nreadable
local free = packet.free
local band = bit.band
local u8_ptr_t, u32_ptr_t = ffi.typeof("uint8_t *"), ffi.typeof("uint32_t *")
local SNAPPED, HEADROOM_MASK = C.PACKET_SNAPPED, C.PACKET_HEADROOM_MASK
local WIRE_LENGTH_OFFSET = C.PACKET_WIRE_LENGTH_OFFSET

local M = {}

local PacketFilter = {
   config = {
      filter = {required = true, type = "string"},
      bpf = {type = "boolean", default = false},
   },
   inputs = {"input"},
   outputs = {"output"},
}
M.PacketFilter = PacketFilter

-- The packets of one push, sorted by verdict: accepted first, rejected from the end.
local batch_t = ffi.typeof("struct packet *[$]", link.max)

function PacketFilter:new (conf)
   -- The numeric matcher (1 or 0, lib/pf/README.md): it may read lib.pf's REACH bytes of a
   -- packet's buffer whatever its length, and a packet's buffer holds packet.max_payload.
   local match, err = pf.compile(conf.filter, {bpf = conf.bpf, numeric = true})
   if not match then error("parameter 'filter': " .. err, 0) end
   return setmetatable({match = match, batch = batch_t(),
                        shm = {accepted = {counter}, rejected = {counter}}},
                       {__index = PacketFilter})
end

-- The length on the wire of p: a snapped capture record's (apps/pcap/README.md) while p still has
-- the length it was read with, else p.length. (`len`, `less`, `greater` test it, as libpcap.)
local function wire_length (p)
   local headroom, length = p.headroom, p.length
   if band(headroom, SNAPPED) == 0 then return length end
   local lengths = ffi.cast(u32_ptr_t, ffi.cast(u8_ptr_t, p) - band(headroom, HEADROOM_MASK)
                                          + WIRE_LENGTH_OFFSET)
   if lengths[1] ~= length then return length end
   return lengths[0]
end

-- A mix of packets makes a branch on each verdict mispredict often, so the verdicts sort the
-- packets without one (accepted ones from the start of the batch, rejected ones from its end),
-- then two loops transmit and free them.
function PacketFilter:push ()
   local i, o, match, batch = self.input.input, self.output.output, self.match, self.batch
   local n = nreadable(i)
   local accepted, last = 0, n - 1
   for _ = 1, n do
      local p = receive(i)
      local v = match(p.data, p.length, wire_length(p))
      batch[accepted], batch[last] = p, p
      accepted, last = accepted + v, last + v - 1
   end
   for k = 0, accepted - 1 do transmit(o, batch[k]) end
   for k = accepted, n - 1 do free(batch[k]) end
   local shm = self.shm
   counter.add(shm.accepted, accepted)
   counter.add(shm.rejected, n - accepted)
end

-- Self-test: real captures through PcapReader -> PacketFilter -> PcapWriter, the accepted count
-- against tcpdump's (`tcpdump -r FILE EXPR | wc -l`, libpcap's own filter) and the packets
-- written against `tcpdump -w`'s, in order, on both paths; counters that add up to the records;
-- refusals in one line.
function M.selftest ()
   print("selftest: apps.filter.filter")
   local config = require("core.config")
   local engine = require("core.engine")
   local pcap = require("apps.pcap.pcap")
   local data = "tests/data/pcap/"
   -- As root, tcpdump switches to its own user once the file is open, which Bazel's sandbox
   -- forbids; it runs as nobody in a user namespace instead (as tests/tcpdump.sh).
   local id = io.popen("id -u")
   local root = id:read("*l") == "0"
   id:close()
   local function tcpdump (file, expr)
      local p = io.popen(("%stcpdump -nr %s '%s' 2>&1 >/dev/null; echo $?"):format(
         root and "unshare --user --map-user=65534 --map-group=65534 " or "", file, expr))
      local out = p:read("*a")
      p:close()
      assert(out:match("\n0\n$"), out)
      p = io.popen(("%stcpdump -nr %s '%s' 2>/dev/null | wc -l"):format(
         root and "unshare --user --map-user=65534 --map-group=65534 " or "", file, expr))
      local n = tonumber(p:read("*a"))
      p:close()
      return n
   end
   local function records (file)
      return tcpdump(file, "")
   end
   -- The bytes of the packets of a capture, in order: what the filter wrote against tcpdump's.
   local read_records = dofile("tests/pcap_records.lua")
   local function packets (file)
      local out = {}
      for i, r in ipairs(read_records(file)) do out[i] = r.data end
      return out
   end
   local function tcpdump_packets (file, expr, out)
      local p = io.popen(("%stcpdump -r %s -w - '%s' 2>/dev/null > %s; echo $?"):format(
         root and "unshare --user --map-user=65534 --map-group=65534 " or "", file, expr, out))
      assert(p:read("*a") == "0\n", "tcpdump -w failed")
      p:close()
      return packets(out)
   end
   local tmp = os.tmpname()
   local cases = {
      {"v4.pcap", "tcp port 80"}, {"v4.pcap", "tcp[tcpflags] & tcp-syn != 0"},
      {"v6.pcap", "icmp6"}, {"v6.pcap", "ip6 and udp"}, {"v6.pcap", "not ip6 or tcp"},
      {"tftp_wrq.pcap", "udp and greater 500"}, {"tftp_wrq.pcap", "len < 100"},
      {"telnet-cooked.pcap", "tcp src port 23"}, {"arp.pcap", "arp"},
      {"icmp-snapped.pcap", "greater 1000"}, {"icmp-snapped.pcap", "icmp[icmptype] = icmp-echo"},
      {"lwaftr/tcp-frominet-bound-vlan.pcap", "vlan and tcp"},
      {"lwaftr/tcp-ipv4-toinet-2fragments.pcap", "tcp port 80"},
   }
   for n, case in ipairs(cases) do
      local file = data .. case[1]
      for _, bpf in ipairs{false, true} do
         -- (A PcapWriter adds to a file another one wrote in the process: one file each.)
         local written = ("%s.%d%s"):format(tmp, n, bpf and "b" or "")
         local c = config.new()
         config.app(c, "reader", pcap.PcapReader, file)
         config.app(c, "filter", PacketFilter, {filter = case[2], bpf = bpf})
         config.app(c, "sink", pcap.PcapWriter, written)
         config.link(c, "reader.output -> filter.input")
         config.link(c, "filter.output -> sink.input")
         engine.configure(c)
         engine.main({done = function () return engine.app_table.reader.done end, duration = 10,
                      no_report = true})
         engine.main({duration = 0.01, no_report = true})
         local shm = engine.app_table.filter.shm
         local accepted, rejected = tonumber(counter.read(shm.accepted)),
                                    tonumber(counter.read(shm.rejected))
         local want, total = tcpdump(file, case[2]), records(file)
         assert(accepted == want and accepted + rejected == total,
                ("%s '%s'%s: accepted %d, rejected %d; tcpdump: %d of %d"):format(
                   file, case[2], bpf and " (bpf)" or "", accepted, rejected, want, total))
         engine.configure(config.new())
         -- The packets themselves, in their order (the app sorts each batch by verdict).
         local got, expected = packets(written), tcpdump_packets(file, case[2], written .. ".want")
         assert(#got == #expected, ("%s '%s': %d written, tcpdump %d"):format(
                   file, case[2], #got, #expected))
         for k = 1, #got do
            assert(got[k] == expected[k], ("%s '%s': packet %d of %d is not tcpdump's"):format(
                      file, case[2], k, #got))
         end
         os.remove(written)
         os.remove(written .. ".want")
      end
   end
   os.remove(tmp)
   -- Refused: the message names the parameter; the engine adds the config line and the app.
   local ok, err = pcall(PacketFilter.new, PacketFilter, {filter = "tcp port"})
   assert(not ok and err == "parameter 'filter': 'tcp port' at column 9: expected a port number "
                            .. "or name", err)
   ok, err = pcall(PacketFilter.new, PacketFilter, {filter = "tcp port 09", bpf = true})
   assert(not ok and err == "parameter 'filter': 'tcp port 09' at column 10: number 09 contains "
                            .. "non-octal digit", err)
   local c = config.new()
   ok, err = pcall(config.app, c, "f", PacketFilter, {filter = 80})
   assert(not ok and err:match("app 'f': parameter 'filter' must be a string, got 80"), err)
   print("selftest: ok")
end

return M
