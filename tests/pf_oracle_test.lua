-- tests/pf_oracle_test.lua: every expression of tests/pf_expressions.txt against libpcap, the
-- oracle. For each expression libpcap takes, the packets lib.pf accepts (its own code, boolean and
-- numeric, and its BPF path opts.bpf: tests/pf_oracle.lua's paths) among every packet of every
-- Ethernet capture under tests/data/pcap (pf/, the generated ones, included) must be libpcap's
-- (pcap_offline_filter with the record's captured and wire lengths), packet by packet. Each
-- expression the corpus lists as refused must be refused by libpcap and by lib.pf, lib.pf's message
-- being `'EXPR' at column N: MESSAGE` as listed. Expressions marked `unoptimised:` meet a bug of
-- libpcap's optimiser: there the unoptimised program is lib.pf's oracle (the BPF path runs the
-- optimised program, bug and all). A mismatch prints the expression, file, packet number and both
-- verdicts; the end prints each path's counts. Exit status 1 on any mismatch.
-- Run: bazel test //tests:pf_oracle_test   (or from the repository: snabb tests/pf_oracle_test.lua)
local oracle = dofile("tests/pf_oracle.lua")

-- Machine code in LuaJIT's default 32 KB areas, not the 256 KB of observe/policy.lua: each of
-- the 12,000 traces this test compiles mprotects its area twice, and the test took 8.3 s of CPU
-- with 256 KB areas, 5.6 s with 32 KB (measured on the shared 2-core VM).
jit.opt.start("sizemcode=32")
local libpcap = require("lib.pf.libpcap")

local failures = 0
local function fail (fmt, ...)
   failures = failures + 1
   print("FAIL " .. fmt:format(...))
end

-- The corpus: valid expressions (plus the empty one, which matches everything) and refused ones.
local valid, invalid, unoptimised = {"", "  "}, {}, {}
for line in io.lines("tests/pf_expressions.txt") do
   local comment = line:match("^%s*$") or line:match("^#")
   if not comment and line:find("  =>  ", 1, true) then
      local expr, col, msg = line:match("^(.-)  =>  (%d+): (.*)$")
      assert(expr, "tests/pf_expressions.txt: bad refused line: " .. line)
      invalid[#invalid + 1] = {expr = expr, col = tonumber(col), msg = msg}
   elseif not comment then
      local bug = line:match("^unoptimised: (.*)$")
      valid[#valid + 1] = bug or line
      if bug then unoptimised[bug] = true end
   end
end

-- The corpus itself, against libpcap: it takes each valid expression and refuses each invalid.
for _, expr in ipairs(valid) do
   local prog, err = oracle.oracle(expr)
   if not prog then fail("corpus: libpcap refuses '%s': %s", expr, err) end
end
for _, e in ipairs(invalid) do
   if libpcap.compile(e.expr) then fail("corpus: libpcap takes '%s', listed as refused", e.expr) end
end

-- The parser alone: it takes every expression libpcap takes.
local parsed = 0
for _, expr in ipairs(valid) do
   local status, r = oracle.check_parse(expr)
   if status == "agree" then
      parsed = parsed + 1
   else
      fail("lib.pf.parse: '%s' %s: %s", expr, status, tostring(r.err))
   end
end
print(("lib.pf.parse takes %d of the %d expressions libpcap takes"):format(parsed, #valid))

local captures, skipped = oracle.captures("tests/data/pcap")
-- An expression marked `unoptimised:` shows a bug of libpcap's optimiser: its optimised program
-- must still differ from the unoptimised one somewhere, which is then the oracle.
for expr in pairs(unoptimised) do
   if oracle.optimiser_differs(expr, captures) == 0 then
      fail("corpus: libpcap's optimiser no longer changes the verdicts of '%s'", expr)
   end
end
local npackets = 0
for _, c in ipairs(captures) do npackets = npackets + #c.packets end
print(("%d expressions (%d refused) over %d packets of %d Ethernet captures"):format(
   #valid + #invalid, #invalid, npackets, #captures))
for _, s in ipairs(skipped) do print("not Ethernet, skipped: " .. s) end

local rows = {}
for _, path in ipairs(oracle.paths) do
   local agree, verdicts, differ, refused, accepted, crashed = 0, 0, 0, 0, 0, 0
   local function mismatch (fmt, p, expr, ...) fail(fmt, p.name, expr, ...) end
   for _, expr in ipairs(valid) do
      local status, r = oracle.check(path, expr, captures, 3, false,
                                     unoptimised[expr] and path.name ~= "lib.pf bpf")
      verdicts = verdicts + (r.compared or 0)
      if status == "agree" then
         agree = agree + 1
      elseif status == "differ" then
         differ = differ + 1
         mismatch("%s: '%s': %d packets differ", path, expr, #r.mismatches + (r.mismatches.more or 0))
         for _, m in ipairs(r.mismatches) do print("   " .. oracle.describe(m)) end
      elseif status == "refused" then
         refused = refused + 1
         mismatch("%s: '%s' refused, libpcap takes it: %s", path, expr, tostring(r.err))
      elseif status == "crashed" then
         crashed = crashed + 1
         mismatch("%s: '%s' raised: %s", path, expr, tostring(r.err))
      else
         mismatch("%s: '%s': %s", path, expr, status)
      end
   end
   -- Refused expressions: refused too, with the listed column and message (lib.pf's own path).
   local refused_ok = 0
   for _, e in ipairs(invalid) do
      local ok, match, err = pcall(path.compile, e.expr)
      local want = ("'%s' at column %d: %s"):format(e.expr, e.col, e.msg)
      if not ok then
         crashed = crashed + 1
         mismatch("%s: '%s' raised: %s", path, e.expr, tostring(match))
      elseif match then
         accepted = accepted + 1
         mismatch("%s: '%s' taken, libpcap refuses it", path, e.expr)
      elseif path.name == "lib.pf" and err ~= want then
         mismatch("%s: '%s': message\n   %s\n   expected\n   %s", path, e.expr, tostring(err), want)
      elseif type(err) ~= "string" or err:find("\n") then
         mismatch("%s: '%s': the message is not one line: %s", path, e.expr, tostring(err))
      else
         refused_ok = refused_ok + 1
      end
   end
   rows[#rows + 1] = {path.name, agree .. "/" .. #valid, verdicts, differ, refused, crashed,
                      refused_ok .. "/" .. #invalid, accepted}
end
io.write(lib.table_text({"path", "agree", "verdicts", "differ", "refused", "raised",
                         "refused as listed", "taken"}, rows,
                        {false, true, true, true, true, true, true, true}))
if failures > 0 then
   print(failures .. " failures")
   os.exit(1)
end
print("ok")
