-- tests/pf_oracle.lua: what tests/pf_oracle_test.lua and tests/pf_random_test.lua share: the
-- packets of every Ethernet capture under tests/data/pcap, and the comparison of one expression's
-- verdicts on them by lib.pf (its own code, boolean and numeric, and its BPF path opts.bpf) with
-- libpcap's (pcap_offline_filter, with each record's captured and wire lengths).
-- Each packet lies in two buffers, one followed by zero bytes and one by 0xff bytes: a matcher
-- that reads past the captured length (which must make it false, as in libpcap) gives different
-- verdicts on the two and is caught even when one of them happens to be libpcap's.
-- Loaded with dofile("tests/pf_oracle.lua") from the runfiles root or the repository.
local ffi = require("ffi")
local libpcap = require("lib.pf.libpcap")

local M = {}

M.pf = require("lib.pf")
M.parse = require("lib.pf.parse")

-- A numeric matcher (1 or 0) as a boolean one, checking that it returns nothing else.
local function as_boolean (match)
   return function (P, caplen, wirelen)
      local v = match(P, caplen, wirelen)
      if v == 1 then return true end
      assert(v == 0, "a numeric matcher returned " .. tostring(v))
      return false
   end
end

-- The paths compared with libpcap: lib.pf's own code, and its BPF path (lib.pf.bpf); lib.pf's
-- numeric matcher as compiled by default and with every part of the graph that can be computed
-- without branches so computed (regions of up to 1,000 tests), which checks each test's mask.
local function numeric (region)
   return function (e)
      local match, err = M.pf.compile(e, {numeric = true, region = region})
      if not match then return nil, err end
      return as_boolean(match)
   end
end
M.paths = {
   {name = "lib.pf", compile = function (e) return M.pf.compile(e) end},
   {name = "lib.pf bpf", compile = function (e) return M.pf.compile(e, {bpf = true}) end},
   {name = "lib.pf numeric", compile = numeric()},
   {name = "lib.pf numeric, all regions", compile = numeric(1000)},
}

-- Bytes after each packet, zero in one copy and 0xff in the other: as many as a numeric matcher
-- may read whatever the packet's length.
local PAD = require("lib.pf.codegen").REACH

-- A packet as the comparisons take it: {ptr0, ptr1, caplen, len, data}, the bytes of data
-- followed by zeros at ptr0 and by 0xff at ptr1.
function M.packet (data, len)
   local b0 = ffi.new("uint8_t[?]", #data + PAD)
   local b1 = ffi.new("uint8_t[?]", #data + PAD)
   ffi.copy(b0, data, #data)
   ffi.copy(b1, data, #data)
   ffi.fill(b1 + #data, PAD, 0xff)
   return {b0, b1, #data, len, data}
end

-- Every Ethernet capture under dir (sorted; others, such as LINUX_SLL2, are listed as skipped),
-- as {name, packets = {M.packet(...), ...}}.
function M.captures (dir)
   local records_of = dofile("tests/pcap_records.lua")
   local captures, skipped = {}, {}
   local find = assert(io.popen("find " .. dir .. " -name '*.pcap' | LC_ALL=C sort"))
   for file in find:lines() do
      local records, linktype = records_of(file)
      if linktype ~= 1 then
         skipped[#skipped + 1] = file .. " (link type " .. linktype .. ")"
      else
         local packets = {}
         for i, r in ipairs(records) do packets[i] = M.packet(r.data, r.len) end
         captures[#captures + 1] = {name = file, packets = packets}
      end
   end
   find:close()
   assert(#captures > 0, "no captures under " .. dir)
   return captures, skipped
end

-- libpcap's program for expr, or nil and its message. libpcap's optimiser refuses what it proves
-- rejects every packet ("expression rejects all packets", e.g. "ip and ip6"): then the
-- unoptimised program is the oracle and `empty` is true. So is it (`empty` false) where the
-- optimised program reads a scratch word or X it never set (libpcap's bug: bpf_filter reads its
-- uninitialised stack, or an X of 0; lib.pf.bpf's reads_unset).
function M.oracle (expr)
   local prog, err = libpcap.compile(expr)
   if prog and require("lib.pf.bpf").reads_unset(libpcap.instructions(prog)) then
      return assert(libpcap.compile(expr, false))
   end
   if prog then return prog end
   if err == "expression rejects all packets" then
      return assert(libpcap.compile(expr, false)), nil, true
   end
   return nil, err
end

-- The packets on which libpcap's optimised and unoptimised programs of expr disagree.
function M.optimiser_differs (expr, captures)
   local opt, unopt = assert(libpcap.compile(expr)), assert(libpcap.compile(expr, false))
   local n = 0
   for _, cap in ipairs(captures) do
      for _, p in ipairs(cap.packets) do
         if libpcap.match(opt, p[1], p[3], p[4]) ~= libpcap.match(unopt, p[1], p[3], p[4]) then
            n = n + 1
         end
      end
   end
   return n
end

-- Compares one path's matcher with libpcap's program on every packet. Returns the number of
-- verdicts compared and a list of mismatches {file, n, want, got0, got1}: the first `limit` of
-- them (and how many more), or when `stop`, the first `limit` and no more comparing.
function M.compare (prog, match, captures, limit, stop)
   local compared, mismatches = 0, {}
   for _, cap in ipairs(captures) do
      for n, p in ipairs(cap.packets) do
         local want = libpcap.match(prog, p[1], p[3], p[4])
         local got0 = match(p[1], p[3], p[4])
         local got1 = match(p[2], p[3], p[4])
         compared = compared + 1
         if got0 ~= want or got1 ~= want then
            if #mismatches < (limit or math.huge) then
               mismatches[#mismatches + 1] = {file = cap.name, n = n, want = want,
                                              got0 = got0, got1 = got1, packet = p}
            else
               mismatches.more = (mismatches.more or 0) + 1
            end
            if stop and #mismatches >= limit then return compared, mismatches end
         end
      end
   end
   return compared, mismatches
end

function M.describe (m)
   local got = tostring(m.got0)
   if m.got0 ~= m.got1 then
      got = got .. " (" .. tostring(m.got1) .. " with 0xff after the captured bytes)"
   end
   local s = ("%s packet %d: libpcap %s, ours %s"):format(m.file, m.n, tostring(m.want), got)
   if m.file:match("^mutants") then -- not in a file: its bytes
      s = s .. ("\n   (%d bytes of %d: %s)"):format(m.packet[3], m.packet[4],
                                                   m.packet[5]:gsub(".", function (c)
                                                      return ("%02x"):format(c:byte())
                                                   end))
   end
   return s
end

-- The whole verdict of path on expr: "agree" (same packets), "refused" (ours refused what
-- libpcap took: err), "accepted" (ours took what libpcap refused: err = libpcap's), "differ"
-- (mismatches), with the counts. An expression libpcap's optimiser proves empty may be refused
-- with libpcap's message or compiled to reject every packet. With `unoptimised`, libpcap's
-- unoptimised program is the oracle.
function M.check (path, expr, captures, limit, stop, unoptimised)
   local prog, lerr, empty = M.oracle(expr)
   if unoptimised then prog = assert(libpcap.compile(expr, false)) end
   local ok, match, err = pcall(path.compile, expr)
   if not ok then return "crashed", {err = match} end
   if not prog then
      if match then return "accepted", {err = lerr} end
      return "both refused", {err = err, lerr = lerr}
   end
   if not match then
      if empty and err and err:match("rejects all packets") then return "agree", {compared = 0} end
      return "refused", {err = err}
   end
   local cok, compared, mismatches = pcall(M.compare, prog, match, captures, limit, stop)
   if not cok then return "crashed", {err = compared} end
   if #mismatches > 0 then return "differ", {compared = compared, mismatches = mismatches} end
   return "agree", {compared = compared}
end

-- The parser alone (lib.pf.parse) against libpcap: what libpcap takes must parse; what it refuses
-- as a syntax error (or a number's) must not. libpcap's other refusals are semantic (lib.pf's
-- to make): the parser may take them. Returns "agree", "refused" (err = the parser's message and
-- column) or "accepted" (err = libpcap's), or "crashed".
local SYNTAX = {"syntax error", "contains non%-octal digit", "overflows 32 bits",
                "data size must be"}
function M.check_parse (expr)
   local _, lerr = M.oracle(expr)
   local ok, ast, err, col = pcall(M.parse.parse, expr)
   if not ok then return "crashed", {err = ast} end
   if not lerr then
      if ast then return "agree", {} end
      return "refused", {err = ("column %s: %s"):format(tostring(col), tostring(err))}
   end
   for _, pattern in ipairs(SYNTAX) do
      if lerr:match(pattern) and ast then return "accepted", {err = lerr} end
   end
   return "agree", {}
end

return M
