-- tests/pf_random_test.lua: expressions generated from pcap-filter(7)'s grammar (seeded, the seed
-- printed), compared with libpcap: lib.pf.parse must take what libpcap takes and refuse its
-- syntax errors; lib.pf (its own code and its BPF path) must take what libpcap takes and refuse
-- what it refuses (one-line message `'EXPR' at column N: ...`), and accept the same packets of
-- every Ethernet capture under tests/data/pcap and of 300 mutants of them. One expression in ten
-- is mangled (a word dropped, doubled or inserted, or a character dropped or inserted) to
-- exercise refusals. On a mismatch the expression is minimised (subtrees replaced by their
-- parts, or words dropped, while the mismatch stays) and printed with the seed that reproduces it.
-- Run: snabb tests/pf_random_test.lua [SEED [COUNT]]   (SEED defaults to the time; COUNT to 2000)
local oracle = dofile("tests/pf_oracle.lua")

-- Interpreted: 500 expressions took 8.2 s of CPU compiled (each new matcher's traces, and the
-- mprotect of their machine code) and 1.5 s interpreted. The verdicts are the generated Lua's
-- either way; pf_oracle_test runs its corpus compiled.
jit.off()

local seed = tonumber(main.parameters[1]) or os.time()
local count = tonumber(main.parameters[2]) or 2000
math.randomseed(seed)
print(("seed %d, %d expressions (reproduce: snabb tests/pf_random_test.lua %d %d)"):format(
   seed, count, seed, count))

local random = math.random
local function pick (t) return t[random(#t)] end
local function chance (p) return random() < p end

-- Values the captures hold (tests/pf_captures.lua), and a few they do not.
local V4 = {"192.168.1.1", "192.168.1.2", "10.0.0.1", "10.0.0.2", "8.8.8.8", "172.16.0.1",
            "224.0.0.251", "255.255.255.255", "0.0.0.0", "127.0.0.1", "10.1.2.3", "1.2.3.4"}
local V6 = {"2001:db8::1", "2001:db8::2", "fe80::1", "ff02::1", "::1", "::",
            "fe80::211:22ff:fe33:4455", "2001:db8::99"}
local NET4 = {"10", "192.168", "192.168.1", "10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12",
              "192.168.1.0/24", "0.0.0.0/0", "224.0.0.0/4", "10.0.0.1/32", "10.0.0.0/31",
              "192.168.0.0 mask 255.255.0.0", "10.0.0.0 mask 255.0.255.0", "192.168.1.1/24",
              "10.0.0.0/33"}
local NET6 = {"2001:db8::/32", "fe80::/10", "ff00::/8", "::/0", "2001:db8::1/128",
              "ff02::/16", "2001:db8::/129"}
local MACS = {"00:11:22:33:44:55", "66:77:88:99:aa:bb", "ff:ff:ff:ff:ff:ff", "33:33:00:00:00:01",
              "01:80:c2:00:00:00", "00-11-22-33-44-55", "0011.2233.4455"}
local PORTS = {"0", "53", "80", "1234", "65535", "67", "5353", "99999", "0x50"}
local RANGES = {"1-1024", "0-0", "65535-65535", "8080-80", "50-60", "1000-2000"}
local ETHERTYPES = {"0x0800", "0x86dd", "0x0806", "0x8035", "0x8100", "0x88cc", "\\ip", "\\ip6",
                    "\\arp", "\\rarp", "70000"}
local PROTOS = {"0", "1", "2", "6", "17", "43", "44", "47", "50", "51", "58", "60", "132", "255",
                "300", "\\tcp", "\\udp", "\\icmp"}
local VLANS = {"0", "1", "5", "10", "100", "200", "300", "4095", "4096"}
local ABBREVS = {"ip", "ip6", "arp", "rarp", "tcp", "udp", "icmp", "icmp6", "sctp", "igmp"}
local LOADS = {"ether", "link", "ip", "ip6", "tcp", "udp", "icmp", "icmp6", "arp", "rarp", "sctp",
               "igmp"}
local CONSTS = {"tcpflags", "tcp-syn", "tcp-ack", "tcp-fin", "tcp-rst", "tcp-push", "tcp-urg",
                "icmptype", "icmpcode", "icmp-echo", "icmp-echoreply", "icmp-unreach",
                "icmp6type", "icmp6-echo", "icmp6-neighborsolicit"}
local RELOPS = {"=", "==", "!=", "<", "<=", ">", ">="}
local BINOPS = {"+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"}

local function dir ()
   return chance(0.5) and "" or pick({"src ", "dst ", "src or dst ", "src and dst "})
end

-- Leaf primitives, as text.
local prims = {
   function ()
      if chance(0.25) then return pick({"", "ip ", "arp ", "rarp "}) .. dir() .. "host " .. pick(V6) end
      return pick({"", "", "ip ", "arp ", "rarp ", "ip6 "}) .. dir() .. pick({"host ", ""}) .. pick(V4)
   end,
   function ()
      if chance(0.3) then return pick({"", "ip6 "}) .. dir() .. "net " .. pick(NET6) end
      return pick({"", "", "ip ", "arp "}) .. dir() .. "net " .. pick(NET4)
   end,
   function ()
      return pick({"", "", "tcp ", "udp ", "sctp ", "ip ", "ip6 "}) .. dir() .. "port " .. pick(PORTS)
   end,
   function () return pick({"", "tcp ", "udp "}) .. dir() .. "portrange " .. pick(RANGES) end,
   function () return "ether " .. pick({"host ", "src ", "dst ", "src or dst "}) .. pick(MACS) end,
   function ()
      return pick({"ether broadcast", "ether multicast", "broadcast", "multicast", "ip multicast",
                   "ip6 multicast"})
   end,
   function () return "ether proto " .. pick(ETHERTYPES) end,
   function () return chance(0.4) and "vlan" or "vlan " .. pick(VLANS) end,
   function () return pick(ABBREVS) end,
   function () return pick({"ip ", "ip6 ", ""}) .. "proto " .. pick(PROTOS) end,
   function () return pick({"less ", "greater "}) .. pick({"0", "54", "60", "100", "1000", "1514"}) end,
   -- A bare value: inherits the qualifiers of the primitive before it, or is refused.
   function () return pick({pick(V4), pick(V6), pick(PORTS), pick(MACS), pick(NET4)}) end,
   function ()
      return pick({"stp", "ipx", "netbeui", "iso", "atalk", "decnet", "llc", "llc i", "mpls",
                   "mpls 100", "ether proto \\stp", "ether proto \\ipx", "decnet host 1.2",
                   "byte 9 = 6", "byte 23 < 20", "ether proto 38",
                   pick({"ip ", "ip6 ", ""}) .. "protochain " .. pick(PROTOS)})
   end,
}

-- Arithmetic trees: {k = "num"|"len"|"load"|"bin"|"neg"|"paren", ...}.
local arith
local function num ()
   local v = pick({0, 1, 2, 3, 4, 6, 8, 12, 13, 14, 16, 17, 20, 31, 32, 64, 80, 0xff, 0x1fff,
                   0xffff, 0xffffffff, random(0, 255), random(0, 70)})
   local form = random(10)
   if form == 1 then return {k = "num", text = ("0x%x"):format(v)} end
   if form == 2 and v > 0 then return {k = "num", text = ("0%o"):format(v)} end
   if form == 3 then return {k = "num", text = pick(CONSTS)} end
   return {k = "num", text = tostring(v)}
end
function arith (depth)
   local r = random(depth > 2 and 3 or 10)
   if r <= 2 then return num() end
   if r == 3 then return {k = "len"} end
   if r <= 6 then
      local off = chance(0.8) and {k = "num", text = tostring(random(0, 60))} or arith(depth + 1)
      return {k = "load", proto = pick(LOADS), off = off,
              size = pick({0, 0, 1, 2, 4, chance(0.05) and 3 or 2})}
   end
   if r <= 9 then return {k = "bin", op = pick(BINOPS), a = arith(depth + 1), b = arith(depth + 1)} end
   if chance(0.5) then return {k = "neg", a = arith(depth + 1)} end
   return {k = "paren", a = arith(depth + 1)}
end

-- Boolean trees: {k = "prim"|"rel"|"and"|"or"|"not"|"group", ...}.
local function expr (depth)
   local r = random(depth > 3 and 4 or 10)
   if r <= 3 then return {k = "prim", text = pick(prims)()} end
   if r == 4 then
      return {k = "rel", op = pick(RELOPS), a = arith(1), b = arith(2)}
   end
   if r <= 8 then
      return {k = pick({"and", "or"}), word = chance(0.2), a = expr(depth + 1), b = expr(depth + 1)}
   end
   if r == 9 then return {k = "not", word = chance(0.7), a = expr(depth + 1)} end
   return {k = "group", a = expr(depth + 1)}
end

local render
local function render_arith (n)
   if n.k == "num" then return n.text end
   if n.k == "len" then return "len" end
   if n.k == "load" then
      return n.proto .. "[" .. render_arith(n.off) .. (n.size > 0 and ":" .. n.size or "") .. "]"
   end
   if n.k == "bin" then return render_arith(n.a) .. " " .. n.op .. " " .. render_arith(n.b) end
   if n.k == "neg" then return "-" .. render_arith(n.a) end
   return "(" .. render_arith(n.a) .. ")"
end
function render (n)
   if n.k == "prim" then return n.text end
   if n.k == "rel" then return render_arith(n.a) .. " " .. n.op .. " " .. render_arith(n.b) end
   if n.k == "and" then return render(n.a) .. (n.word and " && " or " and ") .. render(n.b) end
   if n.k == "or" then return render(n.a) .. (n.word and " || " or " or ") .. render(n.b) end
   if n.k == "not" then return (n.word and "not " or "!") .. render(n.a) end
   return "(" .. render(n.a) .. ")"
end

-- Every tree one step simpler than n: a node replaced by one of its parts or by a constant.
local function simpler (n)
   local out = {}
   local function add (t) out[#out + 1] = t end
   local function copy (t, field, v)
      local c = {}
      for key, val in pairs(t) do c[key] = val end
      c[field] = v
      return c
   end
   if n.k == "and" or n.k == "or" then add(n.a); add(n.b) end
   if n.k == "not" or n.k == "group" or n.k == "paren" or n.k == "neg" then add(n.a) end
   if n.k == "bin" then add(n.a); add(n.b) end
   if n.k == "load" and n.off.k ~= "num" then add(copy(n, "off", {k = "num", text = "0"})) end
   if n.k == "num" and n.text ~= "0" and n.text ~= "1" then
      add({k = "num", text = "0"}); add({k = "num", text = "1"})
   end
   for _, field in ipairs({"a", "b", "off"}) do
      if type(n[field]) == "table" then
         for _, s in ipairs(simpler(n[field])) do add(copy(n, field, s)) end
      end
   end
   return out
end

-- The words of a mangled expression, and their simplifications (one word fewer).
local JUNK = {"and", "or", "not", "(", ")", "[", "]", "=", "port", "host", "/", "-", ":", "&&", "tcp",
              "1", "0x", "\\", "!"}
local CHARS = {"(", ")", "[", "]", ":", "-", "/", "!", "&", "|", "=", "<", ">", "0", "x", "\\", ".",
               " ", "a"}
local function mangle (text)
   local r = random(5)
   if r >= 4 then -- a character dropped or inserted
      local at = random(#text)
      text = text:sub(1, at - 1) .. (r == 4 and "" or pick(CHARS)) .. text:sub(at + (r == 4 and 1 or 0))
   end
   local words = {}
   for w in text:gmatch("%S+") do words[#words + 1] = w end
   local at = random(#words)
   if r == 1 and #words > 1 then table.remove(words, at)
   elseif r == 2 then table.insert(words, at, words[at])
   elseif r == 3 then table.insert(words, at, pick(JUNK)) end
   return words
end

local captures = oracle.captures("tests/data/pcap")

-- Mutants: 300 frames of the captures with one to three header bytes changed (more often those
-- that decide: types, IHL, flags and offset, protocol, VLAN tags, ports) and one in four cut
-- shorter than its wire length, as one more capture.
local KEY = {12, 13, 14, 16, 17, 18, 20, 21, 23, 34, 35, 36, 37, 47, 54, 55, 56, 57, 58}
local mutants, records = {}, {}
for _, c in ipairs(captures) do
   for _, p in ipairs(c.packets) do
      if p[3] > 0 then records[#records + 1] = p end
   end
end
for i = 1, 300 do
   local p = pick(records)
   local bytes = {}
   for j = 0, p[3] - 1 do bytes[j + 1] = p[1][j] end
   for _ = 1, random(3) do
      local at = chance(0.6) and pick(KEY) or random(0, math.min(p[3], 80) - 1)
      if at < p[3] then
         bytes[at + 1] = pick({0, 0xff, 0x81, 0x86, 0x88, 0x08, 0x06, 0x11, 0x2c, 0x45, 0x4f,
                               0x20, 0x3a, random(0, 255)})
      end
   end
   local data = string.char(unpack(bytes))
   if chance(0.25) then data = data:sub(1, random(0, #data)) end
   mutants[i] = oracle.packet(data, p[4])
end
captures[#captures + 1] = {name = ("mutants of seed %d:"):format(seed), packets = mutants}
-- The parser alone first (oracle.check_parse), then lib.pf's two paths.
local paths = {{name = "lib.pf.parse", parse_only = true}}
for _, path in ipairs(oracle.paths) do paths[#paths + 1] = path end

-- libpcap and lib.pf resolve a name in a host's place with getaddrinfo, which asks the DNS
-- server outside this machine for any name not in /etc/hosts ("host 10.0.0.1 or http" asks for
-- "http"). Bazel runs this test without a network (tags "block-network"); run by hand it skips
-- every expression with a word that could be such a name: one not a keyword, a number or an
-- address, and not "localhost" (in /etc/hosts), nor a \name after proto or protochain.
local KEYWORDS = {}
for w in ([[dst src host gateway net mask port portrange proto protochain ip ip6 arp rarp tcp udp
   icmp icmp6 igmp igrp pim vrrp carp sctp ah esp atalk aarp decnet lat sca moprc mopdl iso esis
   isis clnp stp ipx netbeui ether link broadcast multicast less greater len length and or not
   vlan mpls pppoes pppoed geneve llc inbound outbound ifindex byte i s u rr rnr rej ui localhost
   tcpflags icmptype icmpcode icmp6type icmp6code tcp-fin tcp-syn tcp-rst tcp-push tcp-ack tcp-urg
   tcp-ece tcp-cwr icmp-echoreply icmp-unreach icmp-sourcequench icmp-redirect icmp-echo
   icmp-routeradvert icmp-routersolicit icmp-timxceed icmp-paramprob icmp-tstamp icmp-tstampreply
   icmp-ireq icmp-ireqreply icmp-maskreq icmp-maskreply icmp6-echo icmp6-echoreply
   icmp6-neighborsolicit]]):gmatch("%S+") do
   KEYWORDS[w] = true
end
local function plain (word, before)
   if KEYWORDS[word] or word:match("^%d+$") or word:match("^0[xX]%x+$") or word:match("^[%d%.]+$")
      or (word:find(":") and word:match("^[%x:%.]+$"))
      or word:match("^%x%x?%-%x%x?%-%x%x?%-%x%x?%-%x%x?%-%x%x?$")
      or word:match("^%x%x%x%x%.%x%x%x%x%.%x%x%x%x$") or (word:match("^%x+$") and #word == 12)
      or word:match("^%d+%-%d+$")
      or (word:match("^\\") and (before == "proto" or before == "protochain")) then
      return true
   end
   if word:match("^%-") then return plain(word:sub(2), before) end -- unary minus
   if word:find(":") then -- an offset and size, tcp[tcpflags:1]
      for part in word:gmatch("[^:]+") do
         if not plain(part, before) then return false end
      end
      return true
   end
   return word == ""
end
local function local_only (text)
   local before
   for word in text:gsub("[%(%)%[%]!&|=<>+*/%%^,]", " "):gmatch("%S+") do
      if not plain(word, before) then return false end
      before = word
   end
   return true
end

-- The outcome of path on text: "agree" or the class of mismatch and its details.
local function outcome (path, text)
   if not local_only(text) then return "agree", {} end
   if path.parse_only then return oracle.check_parse(text) end
   local status, r = oracle.check(path, text, captures, 1, true)
   if status == "both refused" then
      status = "agree"
      if path.name == "lib.pf" then
         local col = type(r.err) == "string" and tonumber(r.err:match("^'.*' at column (%d+): .+$"))
         if not (col and col >= 1 and col <= #text + 1) or r.err:find("\n") then
            status = "bad message"
         end
      end
   end
   return status, r
end

local function minimise_tree (path, tree, status)
   local improved = true
   while improved do
      improved = false
      for _, s in ipairs(simpler(tree)) do
         if outcome(path, render(s)) == status then
            tree, improved = s, true
            break
         end
      end
   end
   return render(tree)
end
local function minimise_words (path, words, status)
   local improved = true
   while improved do
      improved = false
      for i = 1, #words do
         local fewer = {unpack(words)}
         table.remove(fewer, i)
         if outcome(path, table.concat(fewer, " ")) == status then
            words, improved = fewer, true
            break
         end
      end
   end
   return table.concat(words, " ")
end

local failures, rows = 0, {}
local texts = {}
for i = 1, count do
   local tree = expr(1)
   if chance(0.1) then
      texts[i] = {words = mangle(render(tree))}
      texts[i].text = table.concat(texts[i].words, " ")
   else
      texts[i] = {tree = tree, text = render(tree)}
   end
end
local checked, skipped = {}, 0
for _, t in ipairs(texts) do
   if local_only(t.text) then checked[#checked + 1] = t else skipped = skipped + 1 end
end
for _, path in ipairs(paths) do
   local agree, classes = 0, {}
   for _, t in ipairs(checked) do
      local status = outcome(path, t.text)
      if status == "agree" then
         agree = agree + 1
      else
         failures = failures + 1
         local class = classes[status] or {n = 0}
         classes[status] = class
         class.n = class.n + 1
         if class.n <= 3 then
            local small = t.tree and minimise_tree(path, t.tree, status)
               or minimise_words(path, t.words, status)
            local _, mr = outcome(path, small)
            local detail = mr.mismatches and oracle.describe(mr.mismatches[1])
               or tostring(mr.err)
            print(("FAIL %s %s: '%s'\n   minimised: '%s'\n   %s"):format(
               path.name, status, t.text, small, detail))
         end
      end
   end
   local summary = {}
   for status, class in pairs(classes) do summary[#summary + 1] = status .. " " .. class.n end
   table.sort(summary)
   rows[#rows + 1] = {path.name, agree .. "/" .. #checked, table.concat(summary, ", ")}
end
local taken = 0
for _, t in ipairs(checked) do
   if oracle.oracle(t.text) then taken = taken + 1 end
end
print(("libpcap takes %d of the %d expressions compared (%d skipped: a word libpcap could ask the DNS for)"):format(
   taken, #checked, skipped))
io.write(lib.table_text({"path", "agree", "mismatches"}, rows, {false, true, false}))
if failures > 0 then
   print(("%d mismatches (seed %d)"):format(failures, seed))
   os.exit(1)
end
print("ok")
