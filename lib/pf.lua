-- lib.pf: pcap-filter(7) expressions compiled to Lua that LuaJIT traces (lib/pf/README.md).
-- pf.compile(expr) returns match(ptr, caplen[, wirelen]) -> boolean over an Ethernet frame,
-- accepting exactly what libpcap 1.10.3 accepts; pf.source(expr) the Lua it is made of. The
-- stages: lib.pf.parse (text -> syntax tree), lib.pf.expand (-> tests over packet loads, with
-- libpcap's semantics), lib.pf.optimize (-> a decision graph, bounds tests hoisted, known tests
-- skipped), lib.pf.codegen (-> Lua source, loaded once). opts.bpf = true takes the other path:
-- libpcap's own BPF translated to Lua by lib.pf.bpf.

local parse = require("lib.pf.parse")
local expand = require("lib.pf.expand")
local optimize = require("lib.pf.optimize")
local codegen = require("lib.pf.codegen")

local M = {}

local function message(expr, col, msg)
   return ("'%s' at column %d: %s"):format(expr, col or 1, msg)
end

-- The BPF path (lib.pf.bpf)'s source or matcher, or nil and one line with a column: the syntax
-- checked by lib.pf.parse first; for what libpcap refuses after it, libpcap's text at the column
-- lib.pf's own path gives.
local function via_bpf(expr, what)
   local ast, msg, col = parse.parse(expr)
   if not ast then return nil, message(expr, col, msg) end
   local result, err = require("lib.pf.bpf")[what](expr)
   if result then return result end
   local text = err:sub(1, #expr + 4) == ("'%s': "):format(expr) and err:sub(#expr + 5) or err
   local _, ours = M.source(expr)
   return nil, message(expr, ours and tonumber(ours:match(" at column (%d+): ", #expr + 3)), text)
end

-- The Lua source of expr's matcher (a chunk returning the function), or nil and one line.
function M.source(expr, opts)
   if type(expr) ~= "string" then return nil, "filter expression must be a string" end
   if opts and opts.bpf then return via_bpf(expr, "source") end
   local ast, msg, col = parse.parse(expr)
   if not ast then return nil, message(expr, col, msg) end
   local tree, err = expand.expand(ast)
   if not tree then
      local at = err.col
      if err.value_of then -- the number after the keyword at col
         at = expr:find("[%d(]", at + #err.value_of) or at
      end
      return nil, message(expr, at, err.message)
   end
   local graph, gerr, gcol = optimize.graph(tree)
   if not graph then return nil, message(expr, gcol or 1, gerr) end
   if opts and opts.numeric then return codegen.numeric_source(graph, opts.region) end
   return codegen.source(graph)
end

-- match(ptr, caplen[, wirelen]) -> boolean, or nil and one line saying what is wrong.
-- opts.numeric: the verdict as 1 or 0, without branches where it can be (lib/pf/README.md), for
-- a caller that counts or sorts packets by it; ptr must then have codegen.REACH readable bytes.
function M.compile(expr, opts)
   if opts and opts.bpf then
      if type(expr) ~= "string" then return nil, "filter expression must be a string" end
      local match, err = via_bpf(expr, "compile")
      if not (match and opts.numeric) then return match, err end
      return function (P, caplen, wirelen)
         if match(P, caplen, wirelen) then return 1 end
         return 0
      end
   end
   local src, err = M.source(expr, opts)
   if not src then return nil, err end
   local chunk = assert(loadstring(src, "=pf: " .. expr:sub(1, 40)))
   return chunk()
end

-- A quick guard against libpcap on the captures in tests/data/pcap (the corpus test is in
-- tests/), and a check that a loop calling a matcher compiles to traces without aborts.
local EXPRESSIONS = {
   "", "ip", "ip6", "arp", "rarp", "tcp", "udp", "icmp", "icmp6", "sctp", "vlan", "vlan and ip",
   "vlan 10", "vlan and vlan and ip6", "tcp port 80", "port 53", "udp dst port 53",
   "ip and udp and dst port 53", "net 192.168.0.0/16", "net 10", "host 10.0.0.1",
   "src host 10.0.1.1 or dst net 10.0.0.0 mask 255.0.0.0", "tcp[tcpflags] & tcp-syn != 0",
   "tcp[13] & 2 != 0 and not tcp[13] & 16 != 0", "portrange 1-1024", "tcp src portrange 20-80",
   "ip[6:2] & 0x1fff != 0", "ip[2:2] > 576", "len > 100", "less 64", "greater 1000",
   "ether broadcast", "ether multicast", "ip multicast", "ip6 multicast",
   "ether src 00:01:02:03:04:05 or ether dst ff:ff:ff:ff:ff:ff", "ether proto 0x0806",
   "ip proto 17", "ip6 proto 58", "proto 6", "icmp[icmptype] = icmp-echo",
   "icmp6 and ip6[40] = 135", "host fe80::1 or net 2001:db8::/32", "ip6 and tcp",
   "ip[0] & 0xf > 5", "udp[4:2] - 8 > 100", "tcp[((tcp[12] & 0xf0) >> 2)] = 0x47",
   "ether[12:2] / 0 = 0 or ip", "ip[ip[0] % 4] = 69", "not ip and not ip6", "stp", "llc",
   "ip[1] * ip[2] * 65537 = 0", "len - 20 < 4294967295", "-len = 4294967236",
   "ip[0] << 30 = 0x40000000", "tcp[0:4] >> 16 = 80",
   -- Where libpcap's optimizer decides which loads a short packet meets (lib.pf.optimize):
   "host 10.0.0.1 or host 192.168.1.1 or host 1.2.3.4", "ip[6:2] & 0x1fff != 0 and not port 80",
   "icmp6 and ether proto 0x88cc or greater 1514", "ip[0] = 1 or 0 | 0 != 1",
   "icmp6[0 - 1:2] != 0", "ether[100] * 0 = 0", "net ::/0",
   -- protochain (unoptimised, as in libpcap), mpls, decnet, llc:
   "ip6 protochain 6", "protochain 17 or arp", "mpls and ip", "decnet host 1.2", "llc u",
}

local function captures()
   local files = {}
   local p = io.popen("find tests/data/pcap -name '*.pcap' | sort")
   for f in p:lines() do files[#files + 1] = f end
   p:close()
   return files
end

-- The records of a classic pcap file as {ptr, caplen, wirelen, data} (tests/pcap_records.lua
-- reads them; data keeps the bytes ptr points at alive), none for another link type than Ethernet.
local function records(file)
   local ffi = require("ffi")
   local recs, linktype = dofile("tests/pcap_records.lua")(file)
   local out = {}
   if linktype ~= 1 then return out end
   for i, r in ipairs(recs) do
      out[i] = {ffi.cast("const uint8_t *", r.data), r.caplen, r.len, r.data}
   end
   return out
end

function M.selftest()
   print("selftest: lib.pf")
   local libpcap = require("lib.pf.libpcap")
   local packets = {}
   for _, f in ipairs(captures()) do
      for _, r in ipairs(records(f)) do packets[#packets + 1] = r end
   end
   assert(#packets > 100, "too few packets in tests/data/pcap: " .. #packets)
   local checked, accepted = 0, 0
   for _, expr in ipairs(EXPRESSIONS) do
      local prog, perr = libpcap.compile(expr)
      local match, err = M.compile(expr)
      assert((prog == nil) == (match == nil),
         ("%s: libpcap %s, lib.pf %s"):format(expr, tostring(perr), tostring(err)))
      if match then
         for n, r in ipairs(packets) do
            local want = libpcap.match(prog, r[1], r[2], r[3])
            local got = match(r[1], r[2], r[3])
            if want ~= got then
               error(("'%s' on packet %d (caplen %d): libpcap %s, lib.pf %s\n%s"):format(
                  expr, n, r[2], tostring(want), tostring(got), M.source(expr)))
            end
            -- The same packet cut short: accesses past caplen make the filter false.
            for _, short in ipairs({math.floor(r[2] / 2), 20, 34, 54}) do
               if short < r[2] then
                  want = libpcap.match(prog, r[1], short, r[3])
                  got = match(r[1], short, r[3])
                  if want ~= got then
                     error(("'%s' on packet %d cut to %d: libpcap %s, lib.pf %s\n%s"):format(
                        expr, n, short, tostring(want), tostring(got), M.source(expr)))
                  end
                  checked = checked + 1
               end
            end
            checked = checked + 1
            if got then accepted = accepted + 1 end
         end
      end
   end
   print(("%d expressions, %d packets: %d matches agree with libpcap (%d accepted)"):format(
      #EXPRESSIONS, #packets, checked, accepted))
   -- Errors: one line with the column, also for what libpcap refuses beyond the syntax.
   for expr, want in pairs({
      ["tcp port"] = "'tcp port' at column 9: ",
      ["port 99999"] = "'port 99999' at column 6: illegal port number 99999 > 65535",
      ["tcp host 1.2.3.4"] = "'tcp host 1.2.3.4' at column 1: 'tcp' modifier applied to host",
      ["ip[0] / 0 = 1"] = "'ip[0] / 0 = 1' at column 7: division by zero",
      ["vlan 4096"] = "'vlan 4096' at column 6: VLAN tag 4096 greater than maximum 4095",
   }) do
      local match, err = M.compile(expr)
      assert(match == nil and err:sub(1, #want) == want, expr .. ": " .. tostring(err))
      assert(libpcap.compile(expr) == nil, expr)
   end
   -- The BPF path: the same columns, with libpcap's text after lib.pf.parse's syntax.
   for expr, want in pairs({
      ["tcp port"] = "'tcp port' at column 9: expected a port number or name",
      ["port 99999"] = "'port 99999' at column 6: illegal port number 99999 > 65535",
      ["ip[0] / 0 = 1"] = "'ip[0] / 0 = 1' at column 7: division by zero",
      ["ip and ip6"] = "'ip and ip6' at column 1: expression rejects all packets",
   }) do
      local match, err = M.compile(expr, {bpf = true})
      assert(match == nil and err == want, expr .. ": " .. tostring(err))
      match, err = M.source(expr, {bpf = true})
      assert(match == nil and err == want, expr .. ": " .. tostring(err))
   end
   -- In the trace: a loop over packets calling a matcher compiles with no abort in the matcher
   -- (the matchers are made first: compiling is not meant to be traced).
   local jit = require("jit")
   local matchers, numeric = {}, {}
   for _, expr in ipairs({"tcp port 80", "ip and udp and dst port 53", "vlan and ip6",
                          "net 192.168.0.0/16", "tcp[tcpflags] & tcp-syn != 0"}) do
      matchers[#matchers + 1] = assert(M.compile(expr))
      numeric[#matchers] = assert(M.compile(expr, {numeric = true, region = 1000}))
   end
   -- (The numeric matchers may read codegen.REACH bytes of each packet's buffer.)
   local ffi = require("ffi")
   local buffers = {}
   for i, r in ipairs(packets) do
      buffers[i] = ffi.new("uint8_t[?]", math.max(r[2], require("lib.pf.codegen").REACH))
      ffi.copy(buffers[i], r[1], r[2])
   end
   local is_matcher = {}
   for m = 1, #matchers do is_matcher[matchers[m]], is_matcher[numeric[m]] = true, true end
   local aborts, traces = {}, 0
   local function on_trace(what, tr, func, _, otr, oex)
      -- Aborts in the harness's own loops (LuaJIT's unroll limit) are not the matchers'.
      if what == "abort" and is_matcher[func] then
         local msg = require("jit.vmdef").traceerr[otr] or tostring(otr)
         if type(oex) == "number" then msg = msg:format(oex) end
         aborts[#aborts + 1] = ("trace %d: %s"):format(tr, msg)
      elseif what == "stop" then
         traces = traces + 1
      end
   end
   jit.flush()
   jit.attach(on_trace, "trace")
   local count, sum = 0, 0
   for m = 1, #matchers do
      local match, number = matchers[m], numeric[m]
      for _ = 1, 100 do
         for i = 1, #packets do
            local r = packets[i]
            if match(r[1], r[2], r[3]) then count = count + 1 end
         end
         for i = 1, #packets do
            local r = packets[i]
            sum = sum + number(buffers[i], r[2], r[3])
         end
      end
   end
   jit.attach(on_trace)
   assert(#aborts == 0, "trace aborts: " .. table.concat(aborts, "; "))
   assert(traces > 0 and count > 0 and sum == count, ("%d against %d"):format(sum, count))
   print(("%d traces, no aborts, over %d calls of %d matchers, boolean and numeric"):format(
      traces, 200 * #packets * #matchers, #matchers))
   print("selftest: ok")
end

return M
