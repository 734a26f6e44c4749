-- lib.pf.parse: pcap-filter(7) expressions to a syntax tree (lib/pf/AST.md), by a hand-written
-- scanner and recursive descent that follow libpcap 1.10.3's scanner.l and grammar.y: the same
-- tokens (longest match, keywords case-sensitive), the same precedences (yacc's shift on the
-- undeclared `%` and `^` included) and the same qualifier inheritance, so the syntax libpcap
-- refuses is refused here, with what was expected and where. Names stay names (lib.pf resolves
-- them). parse(expr) -> tree, or nil, message, column; it never raises on any input.
local M = {}

-- Interpreted, not traced: a parse runs once per compile, and tracing its many branches took
-- 27,000 mprotect calls (most of the selftest's time) for nothing the hot path uses.
jit.off(true, true)

local band, bor, lshift = bit.band, bit.bor, bit.lshift
local byte, sub, find = string.byte, string.sub, string.find

-- Nesting (parentheses, `not`, unary minus, `^`/`%` chains) deeper than this is refused: the
-- recursion stays far from LuaJIT's stack limits on any input.
local max_depth = 200

-- Keywords (scanner.l's fixed strings), each a token type, or {type, value}.
local pnames = {
   link = "link", ether = "link", ppp = "link", slip = "link", fddi = "link", tr = "link",
   wlan = "link", arp = "arp", rarp = "rarp", ip = "ip", sctp = "sctp", tcp = "tcp",
   udp = "udp", icmp = "icmp", igmp = "igmp", igrp = "igrp", pim = "pim", vrrp = "vrrp",
   carp = "carp", radio = "radio", ip6 = "ip6", icmp6 = "icmp6", ah = "ah", esp = "esp",
   atalk = "atalk", aarp = "aarp", decnet = "decnet", lat = "lat", sca = "sca",
   moprc = "moprc", mopdl = "mopdl", iso = "iso", esis = "esis", ["es-is"] = "esis",
   isis = "isis", ["is-is"] = "isis", l1 = "l1", l2 = "l2", iih = "iih", lsp = "lsp",
   snp = "snp", csnp = "csnp", psnp = "psnp", clnp = "clnp", stp = "stp", ipx = "ipx",
   netbeui = "netbeui",
}
local keywords = {
   dst = "dst", src = "src", host = "host", net = "net", mask = "mask", port = "port",
   portrange = "portrange", proto = "proto", protochain = "protochain", gateway = "gateway",
   type = "wlan_type", subtype = "wlan_type", direction = "wlan_dir", dir = "wlan_dir",
   address1 = "addr1", addr1 = "addr1", address2 = "addr2", addr2 = "addr2",
   address3 = "addr3", addr3 = "addr3", address4 = "addr4", addr4 = "addr4", ra = "ra",
   ta = "ta", less = "less", greater = "greater", byte = "byte", broadcast = "broadcast",
   multicast = "multicast", ["and"] = "and", ["or"] = "or", ["not"] = "not", len = "len",
   length = "len", inbound = "inbound", outbound = "outbound", ifindex = "ifindex",
   vlan = "vlan", mpls = "mpls", pppoed = "pppoed", pppoes = "pppoes", geneve = "geneve",
   llc = "llc",
}
-- Keywords libpcap refuses on Ethernet, with its message.
local refused = {}
for _, k in ipairs{"lane", "metac", "bcc", "oam", "oamf4", "oamf4ec", "oamf4sc", "sc", "ilmic",
                   "vpi", "vci", "connectmsg", "metaconnect"} do
   refused[k] = ("'%s' supported only on raw ATM"):format(k)
end
for _, k in ipairs{"fisu", "lssu", "lsu", "msu", "hfisu", "hlssu", "hmsu"} do
   refused[k] = ("'%s' supported only on MTP2"):format(k == "lsu" and "lssu" or k)
end
for _, k in ipairs{"sio", "opc", "dpc", "sls", "hsio", "hopc", "hdpc", "hsls"} do
   refused[k] = ("'%s' supported only on SS7"):format(k)
end
for k, what in pairs{on = "ifname", ifname = "ifname", rset = "ruleset", ruleset = "ruleset",
                     srnr = "srnr", subrulenum = "srnr", reason = "reason", action = "action"} do
   refused[k] = what .. " supported only on PF linktype"
end
-- rnr is llc's subtype after `llc`, else pf's.
local named = {
   icmptype = 0, icmpcode = 1, ["icmp-echoreply"] = 0, ["icmp-unreach"] = 3,
   ["icmp-sourcequench"] = 4, ["icmp-redirect"] = 5, ["icmp-echo"] = 8,
   ["icmp-routeradvert"] = 9, ["icmp-routersolicit"] = 10, ["icmp-timxceed"] = 11,
   ["icmp-paramprob"] = 12, ["icmp-tstamp"] = 13, ["icmp-tstampreply"] = 14,
   ["icmp-ireq"] = 15, ["icmp-ireqreply"] = 16, ["icmp-maskreq"] = 17,
   ["icmp-maskreply"] = 18, icmp6type = 0, icmp6code = 1,
   ["icmp6-destinationunreach"] = 1, ["icmp6-packettoobig"] = 2,
   ["icmp6-timeexceeded"] = 3, ["icmp6-parameterproblem"] = 4, ["icmp6-echo"] = 128,
   ["icmp6-echoreply"] = 129, ["icmp6-multicastlistenerquery"] = 130,
   ["icmp6-multicastlistenerreportv1"] = 131, ["icmp6-multicastlistenerdone"] = 132,
   ["icmp6-routersolicit"] = 133, ["icmp6-routeradvert"] = 134,
   ["icmp6-neighborsolicit"] = 135, ["icmp6-neighboradvert"] = 136,
   ["icmp6-redirect"] = 137, ["icmp6-routerrenum"] = 138,
   ["icmp6-nodeinformationquery"] = 139, ["icmp6-nodeinformationresponse"] = 140,
   ["icmp6-ineighbordiscoverysolicit"] = 141, ["icmp6-ineighbordiscoveryadvert"] = 142,
   ["icmp6-multicastlistenerreportv2"] = 143, ["icmp6-homeagentdiscoveryrequest"] = 144,
   ["icmp6-homeagentdiscoveryreply"] = 145, ["icmp6-mobileprefixsolicit"] = 146,
   ["icmp6-mobileprefixadvert"] = 147, ["icmp6-certpathsolicit"] = 148,
   ["icmp6-certpathadvert"] = 149, ["icmp6-multicastrouteradvert"] = 151,
   ["icmp6-multicastroutersolicit"] = 152, ["icmp6-multicastrouterterm"] = 153,
   tcpflags = 13, ["tcp-fin"] = 0x01, ["tcp-syn"] = 0x02, ["tcp-rst"] = 0x04,
   ["tcp-push"] = 0x08, ["tcp-ack"] = 0x10, ["tcp-urg"] = 0x20, ["tcp-ece"] = 0x40,
   ["tcp-cwr"] = 0x80,
}
local llc_subtypes = {
   i = true, s = true, u = true, rr = true, rnr = true, rej = true, ui = true, ua = true,
   disc = true, dm = true, sabme = true, test = true, xid = true, frmr = true,
}

-- Scanner -------------------------------------------------------------------------------------

-- A scan error: raised as a table, caught by parse().
local function fail(message, col) error({message = message, col = col}, 0) end

local function is_hex(c) return c and (c >= 48 and c <= 57 or c >= 65 and c <= 70 or
                                      c >= 97 and c <= 102) end
local function is_digit(c) return c and c >= 48 and c <= 57 end

-- The ends (index after the last character) of scanner.l's N ([0-9]+ or 0x[0-9a-f]+) at i.
local function n_ends(s, i)
   local ends = {}
   local j = i
   while is_digit(byte(s, j)) do j = j + 1 end
   if j > i then ends[#ends + 1] = j end
   local c1 = byte(s, i + 1)
   if byte(s, i) == 48 and (c1 == 120 or c1 == 88) and is_hex(byte(s, i + 2)) then
      j = i + 2
      while is_hex(byte(s, j)) do j = j + 1 end
      ends[#ends + 1] = j
   end
   return ends
end

-- Length of the longest N.N, N.N.N or N.N.N.N (HID) at i, or 0.
local function hid_length(s, i)
   local best = 0
   local function walk(j, dots)
      for _, e in ipairs(n_ends(s, j)) do
         if dots > 0 and e - i > best then best = e - i end
         if dots < 3 and byte(s, e) == 46 then walk(e + 1, dots + 1) end
      end
   end
   walk(i, 0)
   return best
end

-- Length of the longest MAC (scanner.l's five forms) at i, or 0.
local function mac_length(s, i)
   local best = 0
   -- Groups of 1-2 hex digits (B) with a separator, six of them.
   local function groups(j, sep, n)
      if n == 6 then
         if j - i > best then best = j - i end
         return
      end
      if n > 0 then
         if byte(s, j) ~= sep then return end
         j = j + 1
      end
      if not is_hex(byte(s, j)) then return end
      groups(j + 1, sep, n + 1)
      if is_hex(byte(s, j + 1)) then groups(j + 2, sep, n + 1) end
   end
   for _, sep in ipairs{58, 45, 46} do groups(i, sep, 0) end
   local function hex4(j) for k = j, j + 3 do if not is_hex(byte(s, k)) then return false end end
      return true end
   if hex4(i) and byte(s, i + 4) == 46 and hex4(i + 5) and byte(s, i + 9) == 46 and hex4(i + 10)
   then best = math.max(best, 14) end
   if hex4(i) and hex4(i + 4) and hex4(i + 8) then best = math.max(best, 12) end
   return best
end

-- Length of the longest {B}:+({B}:+)+ (scanner.l's bogus ethernet address) at i, or 0.
local function bogus_length(s, i)
   local j, n = i, 0
   while true do
      local k = j
      if not is_hex(byte(s, k)) then break end
      k = k + (is_hex(byte(s, k + 1)) and 2 or 1)
      if byte(s, k) ~= 58 then break end
      while byte(s, k) == 58 do k = k + 1 end
      j, n = k, n + 1
   end
   return n >= 2 and j - i or 0
end

-- The 16 bytes of an IPv6 address in one of scanner.l's forms, or nil, "form" if the text is
-- none of them, or nil, "bogus" for a form getaddrinfo refuses (the dotted quad's numbers).
local function ipv6_bytes(text)
   local tail
   local head = text
   local q = text:match("[^:]*$")
   if q:find("%.") then
      -- N.N.N.N: decimal octets for getaddrinfo (scanner.l also lets hex through, refused later).
      local a, b, c, d = q:match("^([0-9xXa-fA-F]+)%.([0-9xXa-fA-F]+)%.([0-9xXa-fA-F]+)%."
                                 .. "([0-9xXa-fA-F]+)$")
      if not a then return nil, "form" end
      tail = {}
      for _, o in ipairs{a, b, c, d} do
         local bad = not o:match("^[0-9]+$") or #o > 1 and o:sub(1, 1) == "0"
                        or tonumber(o) > 255
         if not o:match("^[0-9]+$") and not o:match("^0[xX]%x+$") then return nil, "form" end
         if bad then tail = false elseif tail then tail[#tail + 1] = tonumber(o) end
      end
      head = text:sub(1, #text - #q)
      if head:sub(-2) ~= "::" then
         if head:sub(-1) ~= ":" then return nil, "form" end
         head = head:sub(1, -2)
      end
   end
   local left, right
   local dc = head:find("::", 1, true)
   if dc then
      left, right = head:sub(1, dc - 1), head:sub(dc + 2)
   else
      left = head
   end
   local function words(part)
      local w = {}
      if part == "" then return w end
      for g in (part .. ":"):gmatch("([^:]*):") do
         if not g:match("^%x%x?%x?%x?$") then return nil end
         w[#w + 1] = tonumber(g, 16)
      end
      return w
   end
   local lw, rw = words(left), {}
   if right then rw = words(right) end
   if not lw or not rw then return nil, "form" end
   local room = tail ~= nil and 6 or 8
   local n = #lw + #rw
   if dc then
      if n > room - 1 then return nil, "form" end
   elseif n ~= room then
      return nil, "form"
   end
   if tail == false then return nil, "bogus" end
   local w = {}
   for _, x in ipairs(lw) do w[#w + 1] = x end
   for _ = 1, room - n do w[#w + 1] = 0 end
   for _, x in ipairs(rw) do w[#w + 1] = x end
   local bytes = {}
   for _, x in ipairs(w) do
      bytes[#bytes + 1] = math.floor(x / 256)
      bytes[#bytes + 1] = x % 256
   end
   if tail then for _, o in ipairs(tail) do bytes[#bytes + 1] = o end end
   return bytes
end

-- Length of the longest IPv6 address (any of scanner.l's forms) at i, or 0.
local function v6_length(s, i)
   local j = i
   while j < i + 64 and find(s, "^[0-9A-Fa-f:.xX]", j) do j = j + 1 end
   for e = j - 1, i + 1, -1 do
      local text = sub(s, i, e)
      if text:find(":", 1, true) then
         local ok, why = ipv6_bytes(text)
         if ok or why == "bogus" then return e - i + 1 end
      end
   end
   return 0
end

-- scanner.l's stou: a number as libpcap reads it (hex, octal, decimal), 32 bits at most.
local function number(text, col)
   local n = 0
   if text:match("^0[xX]") then
      for k = 3, #text do
         if n > 0xFFFFFFF then fail(("number %s overflows 32 bits"):format(text), col) end
         n = n * 16 + tonumber(text:sub(k, k), 16)
      end
   elseif text:sub(1, 1) == "0" then
      for k = 2, #text do
         local d = byte(text, k) - 48
         if d > 7 then fail(("number %s contains non-octal digit"):format(text), col) end
         if n > 0x1FFFFFFF then fail(("number %s overflows 32 bits"):format(text), col) end
         n = n * 8 + d
      end
   else
      for k = 1, #text do
         local d = byte(text, k) - 48
         if n > 429496729 or n == 429496729 and d > 5 then
            fail(("number %s overflows 32 bits"):format(text), col)
         end
         n = n * 10 + d
      end
   end
   return n
end

-- libpcap's __pcap_atoin: the value and bit count of a dotted (possibly partial) IPv4 address,
-- nil for an octet over 255.
local function atoin(text)
   local addr, len, n = 0, 0, 0
   for k = 1, #text + 1 do
      local c = byte(text, k)
      if c == nil or c == 46 then
         if n > 255 then return nil end
         addr = bor(lshift(addr, 8), band(n, 0xff))
         len, n = len + 8, 0
      else
         if n > 25 then return nil end
         n = n * 10 + c - 48
      end
   end
   if addr < 0 then addr = addr + 2^32 end
   return addr, len
end

-- libpcap's pcap_ether_aton on the forms the scanner lets through.
local function mac_bytes(text)
   local bytes, k = {}, 1
   while k <= #text do
      local c = byte(text, k)
      if c == 58 or c == 46 or c == 45 then k = k + 1 end
      local d = tonumber(text:sub(k, k), 16)
      k = k + 1
      local e = byte(text, k)
      if is_hex(e) then
         d = d * 16 + tonumber(text:sub(k, k), 16)
         k = k + 1
      end
      bytes[#bytes + 1] = d
   end
   return bytes
end

local punct2 = {[">="] = ">=", ["<="] = "<=", ["!="] = "!=", ["=="] = "=", ["<<"] = "<<",
                [">>"] = ">>", ["&&"] = "and", ["||"] = "or"}
local punct1 = {}
for c in ("+-*/%:[]<>()&|^="):gmatch(".") do punct1[c] = c end
punct1["!"] = "not"

-- The tokens of s: {t = type, v = value, col = column, text = source text}, ending with "eof".
local function scan(s)
   local toks = {}
   local i, n = 1, #s
   while i <= n do
      local c = byte(s, i)
      if c == 32 or c == 9 or c == 10 or c == 13 then
         i = i + 1
      else
         local two = sub(s, i, i + 1)
         local tok
         if punct2[two] then
            tok = {t = punct2[two], len = 2}
         elseif c == 36 then -- $: an ARCnet address
            if not is_hex(byte(s, i + 1)) then fail("unexpected character '$'", i) end
            tok = {t = "aid", len = is_hex(byte(s, i + 2)) and 3 or 2}
         elseif c == 92 then -- \name: a name, even a keyword's
            local e = s:match("^\\[^ !()\n\t]+()", i)
            if not e then fail("expected a name after '\\'", i) end
            tok = {t = "id", v = sub(s, i + 1, e - 1), len = e - i}
         else
            -- Longest match; on a tie, scanner.l's rule order: keyword, MAC, N, HID, IPv6,
            -- bogus MAC, named constant, name.
            local best, kind = 0, nil
            local function try(len, k) if len > best then best, kind = len, k end end
            local idlen = 0
            if find(s, "^[A-Za-z0-9]", i) then
               local e = s:match("^[-_.A-Za-z0-9]*()", i + 1)
               while e > i + 1 and find(sub(s, e - 1, e - 1), "[-_]") do e = e - 1 end
               idlen = e - i
               local word = sub(s, i, e - 1)
               if keywords[word] or pnames[word] or refused[word] or word == "rnr"
                  or word == "rulenum" then
                  try(idlen, "keyword")
               end
            end
            if is_hex(c) then try(mac_length(s, i), "mac") end
            if is_digit(c) then
               local len = 0
               for _, e in ipairs(n_ends(s, i)) do len = math.max(len, e - i) end
               try(len, "num")
               try(hid_length(s, i), "hid")
            end
            if is_hex(c) or c == 58 then try(v6_length(s, i), "hid6") end
            if is_hex(c) then try(bogus_length(s, i), "bogus") end
            if idlen > 0 and named[sub(s, i, i + idlen - 1)] then try(idlen, "named") end
            try(idlen, "id")
            if best == 0 then
               local t = punct1[string.char(c)]
               if not t then
                  fail(c >= 32 and c < 127 and ("unexpected character '%s'"):format(string.char(c))
                          or ("unexpected byte 0x%02x"):format(c), i)
               end
               tok = {t = t, len = 1}
            else
               local text = sub(s, i, i + best - 1)
               if kind == "keyword" then
                  if pnames[text] then
                     tok = {t = "pname", v = pnames[text]}
                  elseif refused[text] then
                     tok = {t = "refused", v = refused[text]}
                  elseif text == "rnr" or text == "rulenum" then
                     tok = {t = "rnr"}
                  else
                     tok = {t = keywords[text]}
                  end
               elseif kind == "mac" then
                  tok = {t = "eid", v = mac_bytes(text)}
               elseif kind == "num" then
                  tok = {t = "num", v = number(text, i)}
               elseif kind == "hid" then
                  tok = {t = "hid"}
               elseif kind == "hid6" then
                  local bytes = ipv6_bytes(text)
                  if not bytes then fail(("bogus IPv6 address %s"):format(text), i) end
                  if byte(s, i + best) == 58 then
                     -- More colons than any form has (`:::`, `::1::`): scanner.l matches
                     -- the address, then a lone ':' the grammar refuses.
                     local run = s:match("^[0-9A-Fa-f:.]*", i)
                     fail(("invalid IPv6 address '%s'"):format(run), i)
                  end
                  tok = {t = "hid6", v = bytes}
               elseif kind == "bogus" then
                  fail(("bogus ethernet address %s"):format(text), i)
               elseif kind == "named" then
                  tok = {t = "num", v = named[text]}
               else
                  tok = {t = "id", v = text}
               end
               tok.len = best
            end
         end
         tok.col, tok.text = i, sub(s, i, i + tok.len - 1)
         toks[#toks + 1] = tok
         i = i + tok.len
      end
   end
   toks[#toks + 1] = {t = "eof", col = n + 1, text = ""}
   -- The matching ')' of every '(' (for deciding between an arithmetic and a boolean group).
   local stack = {}
   for k, tok in ipairs(toks) do
      if tok.t == "(" then
         stack[#stack + 1] = k
      elseif tok.t == ")" and #stack > 0 then
         toks[stack[#stack]].close = k
         stack[#stack] = nil
      end
   end
   return toks
end

-- Parser --------------------------------------------------------------------------------------

local relops = {[">"] = true, [">="] = true, ["="] = true, ["<="] = true, ["<"] = true,
                ["!="] = true}
local binprec = {["|"] = 1, ["&"] = 2, ["<<"] = 3, [">>"] = 3, ["+"] = 4, ["-"] = 4,
                 ["*"] = 5, ["/"] = 5}
-- Tokens after which a number or a group is arithmetic, not a value: grammar.y's operators.
local arith_next = {["+"] = true, ["-"] = true, ["*"] = true, ["/"] = true, ["%"] = true,
                    ["&"] = true, ["|"] = true, ["^"] = true, ["<<"] = true, [">>"] = true}
for k in pairs(relops) do arith_next[k] = true end
local value_tokens = {id = true, hid = true, hid6 = true, eid = true, aid = true}
local dquals = {src = true, dst = true, addr1 = true, addr2 = true, addr3 = true, addr4 = true,
                ra = true, ta = true}
local aquals = {host = true, net = true, port = true, portrange = true}
local expected_value = {
   host = "expected a host name or address",
   net = "expected a network (an address, address/len, address mask mask) or name",
   port = "expected a port number or name",
   portrange = "expected a port range (1-1024) or a port number or name",
   proto = "expected a protocol number or name",
   protochain = "expected a protocol number or name",
   gateway = "expected a host name",
}
local no_qualifier = "expected a qualifier (host, net, port, ...) before a bare value"
local term_start = "expected a primitive (host, net, port, ip, tcp, vlan, len, ...), 'not' or '('"
local arith_start = "expected a number, 'len', a packet access such as ip[0], '-' or '('"

local function parser(toks)
   local p, depth = 1, 0
   local function tok() return toks[p] end
   local function t() return toks[p].t end
   local function advance() p = p + 1; return toks[p - 1] end
   local function expect(tt, message)
      if t() ~= tt then fail(message, tok().col) end
      return advance()
   end
   local function enter()
      depth = depth + 1
      if depth > max_depth then fail("expression nested too deeply", tok().col) end
   end

   local parse_expr, parse_id

   -- Arithmetic ------------------------------------------------------------------------------
   local parse_arith
   local function parse_primary()
      local tk = tok()
      if tk.t == "num" then
         advance()
         return {tag = "num", col = tk.col, value = tk.v}
      elseif tk.t == "len" then
         advance()
         return {tag = "len", col = tk.col}
      elseif tk.t == "pname" and toks[p + 1].t == "[" then
         advance(); advance()
         local offset = parse_arith(1)
         local size = 1
         if t() == ":" then
            advance()
            local st = expect("num", "expected a data size (1, 2 or 4)")
            size = st.v
            if size ~= 1 and size ~= 2 and size ~= 4 then
               fail("data size must be 1, 2, or 4", st.col)
            end
            expect("]", "expected ']'")
         else
            expect("]", "expected ':' or ']'")
         end
         return {tag = "load", col = tk.col, proto = tk.v, offset = offset, size = size}
      elseif tk.t == "(" then
         advance()
         local x = parse_arith(1)
         expect(")", "expected an arithmetic operator or ')'")
         return x
      end
      fail(arith_start, tk.col)
   end
   local function parse_unary()
      enter()
      local tk, x = tok()
      if tk.t == "-" then
         advance()
         x = {tag = "neg", col = tk.col, a = parse_unary()}
      else
         x = parse_primary()
         -- grammar.y gives % and ^ no precedence: yacc shifts, so each takes everything after it.
         local op = tok()
         if op.t == "%" or op.t == "^" then
            advance()
            x = {tag = "binop", col = op.col, op = op.t, a = x, b = parse_arith(1)}
         end
      end
      depth = depth - 1
      return x
   end
   function parse_arith(min)
      local x = parse_unary()
      while true do
         local op = tok()
         local prec = binprec[op.t]
         if not prec or prec < min then return x end
         advance()
         x = {tag = "binop", col = op.col, op = op.t, a = x, b = parse_arith(prec + 1)}
      end
   end
   local function parse_relation()
      local a = parse_arith(1)
      local op = tok()
      if not relops[op.t] then
         fail("expected a comparison (=, !=, <, <=, >, >=) or an arithmetic operator", op.col)
      end
      advance()
      return {tag = "relation", col = op.col, op = op.t, a = a, b = parse_arith(1)}
   end

   -- Values with their qualifiers ------------------------------------------------------------
   -- A number or a parenthesised number (grammar.y's pnum) at token k: its value and the index
   -- after it, or nil.
   local function pnum_at(k)
      local opens = 0
      while toks[k].t == "(" do opens, k = opens + 1, k + 1 end
      if toks[k].t ~= "num" then return nil end
      local v = toks[k].v
      k = k + 1
      for _ = 1, opens do
         if toks[k].t ~= ")" then return nil end
         k = k + 1
      end
      return v, k
   end
   local function parse_pnum(message)
      local v, k = pnum_at(p)
      if v then
         p = k
         return v
      end
      while t() == "(" do advance() end
      expect("num", message)
      expect(")", "expected ')'")
   end
   -- One value (grammar.y's nid without `not`, or a pnum), as a prim with the qualifiers q.
   local function leaf(q, headcol)
      local tk = tok()
      if not q then fail(no_qualifier, tk.col) end
      local id
      if tk.t == "num" or tk.t == "(" then
         id = {tag = "num", col = tk.col, value = parse_pnum(expected_value[q.kind]
                                                             or "expected a number")}
      elseif tk.t == "id" then
         advance()
         id = {tag = "name", col = tk.col, name = tk.v}
      elseif tk.t == "hid" then
         advance()
         local value, bits = atoin(tk.text)
         id = {tag = "ipv4", col = tk.col, text = tk.text, value = value, bits = bits}
         if t() == "/" then
            advance()
            local len = expect("num", "expected a prefix length (a number)").v
            id = {tag = "ipv4_cidr", col = tk.col, addr = id, len = len}
         elseif t() == "mask" then
            advance()
            local mt = expect("hid", "expected a netmask (an IPv4 address)")
            local mv, mbits = atoin(mt.text)
            id = {tag = "ipv4_mask", col = tk.col, addr = id,
                  mask = {tag = "ipv4", col = mt.col, text = mt.text, value = mv, bits = mbits}}
         elseif q.kind == "port" or q.kind == "portrange" or q.kind == "proto"
                or q.kind == "protochain" then
            fail(("'%s' modifier applied to ip host"):format(q.kind), tk.col)
         end
      elseif tk.t == "hid6" then
         advance()
         id = {tag = "ipv6", col = tk.col, text = tk.text, bytes = tk.v}
         if t() == "/" then
            advance()
            local len = expect("num", "expected a prefix length (a number)").v
            id = {tag = "ipv6_cidr", col = tk.col, addr = id, len = len}
         end
      elseif tk.t == "eid" then
         advance()
         id = {tag = "mac", col = tk.col, text = tk.text, bytes = tk.v}
      elseif tk.t == "aid" then
         fail("aid supported only on ARCnet", tk.col)
      else
         fail(expected_value[q.kind] or "expected a host, network or port: an address, name "
                 .. "or number, or 'host', 'net', 'port', ...", tk.col)
      end
      return {tag = "prim", col = headcol or tk.col, proto = q.proto, dir = q.dir, kind = q.kind,
              id = id, inherited = headcol == nil}
   end
   -- grammar.y's pid: values joined by and/or inside parentheses.
   local function parse_pid(q)
      local x
      if t() == "not" then x = parse_id(q) else x = leaf(q) end
      while t() == "and" or t() == "or" do
         local op = advance()
         x = {tag = op.t, col = op.col, a = x, b = parse_id(q)}
      end
      return x
   end
   -- grammar.y's id: a value, `not` a value, or values in parentheses, with the qualifiers q.
   function parse_id(q, headcol)
      enter()
      local tk, x = tok()
      if tk.t == "not" then
         advance()
         x = {tag = "not", col = tk.col, a = parse_id(q)}
      elseif tk.t == "(" and not (toks[p + 1].t == "num" or toks[p + 1].t == "(") then
         if not q then fail(no_qualifier, toks[p + 1].col) end
         advance()
         x = parse_pid(q)
         expect(")", "expected 'and', 'or' or ')'")
      elseif tk.t == "(" then
         -- A parenthesised number, or values starting with one: "port 1 and ((2) or 3)".
         local v, k = pnum_at(p)
         if v and toks[k].t ~= "and" and toks[k].t ~= "or" then
            x = leaf(q, headcol)
         else
            advance()
            x = parse_pid(q)
            expect(")", "expected 'and', 'or' or ')'")
         end
      else
         x = leaf(q, headcol)
      end
      depth = depth - 1
      return x
   end
   -- After and/or: whether what follows is a bare value (inheriting the qualifiers) or a term,
   -- as yacc decides it by its lookahead.
   local function starts_id(k)
      while toks[k].t == "not" do k = k + 1 end
      local tk = toks[k]
      if value_tokens[tk.t] then return true end
      if tk.t == "num" then return not arith_next[toks[k + 1].t] end
      if tk.t == "(" then
         local close = tk.close
         if close and arith_next[toks[close + 1].t] then return false end
         local j = k + 1
         while toks[j].t == "(" or toks[j].t == "not" do j = j + 1 end
         if value_tokens[toks[j].t] then return true end
         if toks[j].t == "num" then
            j = j + 1
            while toks[j].t == ")" do j = j + 1 end
            return not arith_next[toks[j].t]
         end
      end
      return false
   end

   -- Terms -----------------------------------------------------------------------------------
   -- A term (grammar.y's term) after qualifiers ctx; returns it and the qualifiers a bare value
   -- after it inherits (false: none).
   local function parse_head(proto, col)
      local q = {proto = proto}
      local tk = tok()
      if dquals[tk.t] then
         advance()
         q.dir = tk.t
         if (tk.t == "src" or tk.t == "dst") and (t() == "and" or t() == "or") then
            local op = advance()
            local other = tk.t == "src" and "dst" or "src"
            expect(other, ("expected '%s'"):format(other))
            q.dir = "src " .. op.t .. " dst"
         end
         if aquals[t()] then q.kind = advance().t end
      elseif aquals[tk.t] or tk.t == "proto" or tk.t == "protochain" or tk.t == "gateway" then
         advance()
         q.kind = tk.t
      end
      return parse_id(q, col), q
   end
   local function parse_term(ctx)
      enter()
      local tk = tok()
      local tt = tk.t
      local x, q = nil, false
      if tt == "not" then
         advance()
         local a
         a, q = parse_term(ctx)
         x = {tag = "not", col = tk.col, a = a}
      elseif tt == "(" then
         local close = tk.close
         if close and arith_next[toks[close + 1].t] then
            x = parse_relation()
         else
            advance()
            x = parse_expr(ctx, true)
            q = ctx
         end
      elseif tt == "pname" then
         local nt = toks[p + 1].t
         if nt == "[" then
            x = parse_relation()
         elseif dquals[nt] or aquals[nt] or nt == "proto" or nt == "protochain"
                or nt == "gateway" then
            advance()
            x, q = parse_head(tk.v, tk.col)
         elseif nt == "broadcast" or nt == "multicast" then
            advance(); advance()
            x = {tag = nt, col = tk.col, proto = tk.v}
         elseif nt == "wlan_type" or nt == "wlan_dir" then
            fail("802.11 link-layer types supported only on 802.11", toks[p + 1].col)
         else
            advance()
            x = {tag = "abbrev", col = tk.col, proto = tk.v}
         end
      elseif dquals[tt] or aquals[tt] or tt == "proto" or tt == "protochain"
             or tt == "gateway" then
         x, q = parse_head(nil, tk.col)
      elseif tt == "broadcast" or tt == "multicast" then
         advance()
         x = {tag = tt, col = tk.col}
      elseif tt == "num" or tt == "len" or tt == "-" then
         x = parse_relation()
      elseif tt == "less" or tt == "greater" then
         advance()
         x = {tag = tt, col = tk.col, value = expect("num", "expected a length (a number)").v}
      elseif tt == "byte" then
         advance()
         local offset = expect("num", "expected a byte offset (a number)").v
         local op = tok()
         if not (op.t == "&" or op.t == "|" or op.t == "<" or op.t == ">" or op.t == "=") then
            fail("expected '&', '|', '<', '>' or '='", op.col)
         end
         advance()
         x = {tag = "byte", col = tk.col, offset = offset, op = op.t,
              value = expect("num", "expected a number").v}
      elseif tt == "vlan" or tt == "mpls" or tt == "pppoes" or tt == "geneve" then
         advance()
         x = {tag = tt, col = tk.col}
         if t() == "num" or t() == "(" then x.value = parse_pnum("expected a number") end
      elseif tt == "pppoed" or tt == "inbound" or tt == "outbound" then
         advance()
         x = {tag = tt, col = tk.col}
      elseif tt == "ifindex" then
         advance()
         x = {tag = tt, col = tk.col, value = expect("num", "expected an interface index").v}
      elseif tt == "llc" then
         advance()
         x = {tag = "llc", col = tk.col}
         if t() == "id" or t() == "rnr" then
            local st = advance()
            local name = st.t == "rnr" and "rnr" or st.v:lower()
            if not llc_subtypes[name] then
               fail(('unknown LLC type name "%s"'):format(st.v), st.col)
            end
            x.subtype = name
         end
      elseif tt == "refused" then
         fail(tk.v, tk.col)
      elseif tt == "rnr" then
         fail("rnr supported only on PF linktype", tk.col)
      elseif tt == "wlan_type" or tt == "wlan_dir" then
         fail("802.11 link-layer types supported only on 802.11", tk.col)
      elseif value_tokens[tt] then
         fail(no_qualifier, tk.col)
      else
         fail(term_start, tk.col)
      end
      depth = depth - 1
      return x, q
   end

   -- grammar.y's expr: terms and bare values joined by and/or, left to right. In parentheses
   -- (inner) it ends at ')', else at the end.
   function parse_expr(ctx, inner)
      local x, q = parse_term(ctx)
      while t() == "and" or t() == "or" do
         local op = advance()
         local y
         if starts_id(p) then
            y = parse_id(q)
         else
            y, q = parse_term(q)
         end
         x = {tag = op.t, col = op.col, a = x, b = y}
      end
      if inner then
         expect(")", "expected 'and', 'or' or ')'")
      elseif t() ~= "eof" then
         fail(t() == ")" and "unbalanced ')'" or "expected 'and', 'or' or the end of the expression",
              tok().col)
      end
      return x, q
   end

   return function()
      if t() == "eof" then return {tag = "true", col = 1} end
      return (parse_expr(false, false))
   end
end

-- The tree of expr (lib/pf/AST.md), or nil, a one-line message saying what was expected, and the
-- column where the offending token starts (#expr + 1 at the end).
function M.parse(expr)
   if type(expr) ~= "string" then return nil, "expected a filter expression (a string)", 1 end
   local ok, result = pcall(function() return parser(scan(expr))() end)
   if ok then return result end
   if type(result) == "table" and result.message then return nil, result.message, result.col end
   error(result, 0)
end
-- A one-line rendering of a tree, for tests and debugging: `and`/`or` in parentheses, `!` for
-- not, a prim as [proto,dir,kind]value (- for none, ^ when inherited), arithmetic infix.
function M.format (x)
   local f, t = M.format, x.tag
   if t == "and" or t == "or" then return ("(%s %s %s)"):format(f(x.a), t, f(x.b)) end
   if t == "not" then return "!" .. f(x.a) end
   if t == "prim" then
      return ("[%s,%s,%s]%s%s"):format(x.proto or "-", x.dir or "-", x.kind or "-", f(x.id),
                                       x.inherited and "^" or "")
   end
   if t == "num" then return tostring(x.value) end
   if t == "name" then return "'" .. x.name .. "'" end
   if t == "ipv4" then return ("%s<%s,%s>"):format(x.text, tostring(x.value), tostring(x.bits)) end
   if t == "ipv4_cidr" or t == "ipv6_cidr" then return f(x.addr) .. "/" .. x.len end
   if t == "ipv4_mask" then return f(x.addr) .. " mask " .. f(x.mask) end
   if t == "ipv6" or t == "mac" then return t .. ":" .. table.concat(x.bytes, ".") end
   if t == "binop" or t == "relation" then return ("(%s%s%s)"):format(f(x.a), x.op, f(x.b)) end
   if t == "neg" then return "-" .. f(x.a) end
   if t == "len" then return "len" end
   if t == "load" then return ("%s[%s:%d]"):format(x.proto, f(x.offset), x.size) end
   local s = t
   for _, k in ipairs{"proto", "value", "offset", "op", "subtype"} do
      if x[k] then s = s .. " " .. k .. "=" .. tostring(x[k]) end
   end
   return "{" .. s .. "}"
end

function M.selftest ()
   print("selftest: lib.pf.parse")
   -- Trees, in M.format's notation.
   local trees = {
      {"", "{true}"},
      {"tcp", "{abbrev proto=tcp}"},
      {"ether", "{abbrev proto=link}"},
      {"host 10.0.0.1", "[-,-,host]10.0.0.1<167772161,32>"},
      {"src net 10.1", "[-,src,net]10.1<2561,16>"},
      {"net 10.0.0.0/8", "[-,-,net]10.0.0.0<167772160,32>/8"},
      {"net 10.0.0.0 mask 255.0.0.0",
       "[-,-,net]10.0.0.0<167772160,32> mask 255.0.0.0<4278190080,32>"},
      {"host 1.2.3.300", "[-,-,host]1.2.3.300<nil,nil>"},
      {"tcp dst port 80", "[tcp,dst,port]80"},
      {"udp src port 0x35", "[udp,src,port]53"},
      {"port 017", "[-,-,port]15"},
      {"port ftp-data", "[-,-,port]'ftp-data'"},
      {"portrange 1-1024", "[-,-,portrange]'1-1024'"},
      {"ether src 1:2:3:4:5:6", "[link,src,-]mac:1.2.3.4.5.6"},
      {"ether host 0a-0b-0c-0d-0e-0f", "[link,-,host]mac:10.11.12.13.14.15"},
      {"ether host 0001.0203.0405", "[link,-,host]mac:0.1.2.3.4.5"},
      {"ether host 000102030405", "[link,-,host]mac:0.1.2.3.4.5"},
      {"ether host 1.2.3.4.5.6", "[link,-,host]mac:1.2.3.4.5.6"},
      {"ip6 host fe80::1", "[ip6,-,host]ipv6:254.128.0.0.0.0.0.0.0.0.0.0.0.0.0.1"},
      {"ip6 net fe80::/10", "[ip6,-,net]ipv6:254.128.0.0.0.0.0.0.0.0.0.0.0.0.0.0/10"},
      {"host ::ffff:1.2.3.4", "[-,-,host]ipv6:0.0.0.0.0.0.0.0.0.0.255.255.1.2.3.4"},
      {"host 1:2:3:4:5:6:7:8", "[-,-,host]ipv6:0.1.0.2.0.3.0.4.0.5.0.6.0.7.0.8"},
      {"ip proto 6", "[ip,-,proto]6"},
      {"ip proto \\tcp", "[ip,-,proto]'tcp'"},
      {"ether proto \\ip", "[link,-,proto]'ip'"},
      {"ip6 protochain 6", "[ip6,-,protochain]6"},
      {"gateway snup", "[-,-,gateway]'snup'"},
      {"src or dst host a", "[-,src or dst,host]'a'"},
      {"dst and src host a", "[-,src and dst,host]'a'"},
      {"src && dst b", "[-,src and dst,-]'b'"},
      {"host a or b", "([-,-,host]'a' or [-,-,host]'b'^)"},
      {"not host vs and ace", "(![-,-,host]'vs' and [-,-,host]'ace'^)"},
      {"tcp dst port ftp or ftp-data or domain",
       "(([tcp,dst,port]'ftp' or [tcp,dst,port]'ftp-data'^) or [tcp,dst,port]'domain'^)"},
      {"port 1 and (2 or 3)", "([-,-,port]1 and ([-,-,port]2^ or [-,-,port]3^))"},
      {"port 1 and (2)", "([-,-,port]1 and [-,-,port]2^)"},
      {"port 1 and ((2) or 3)", "([-,-,port]1 and ([-,-,port]2^ or [-,-,port]3^))"},
      {"port 1 and not 2", "([-,-,port]1 and ![-,-,port]2^)"},
      {"host (a or b)", "([-,-,host]'a'^ or [-,-,host]'b'^)"},
      {"port (1)", "[-,-,port]1"},
      -- libpcap's quirk: a parenthesised expression hands on the qualifiers before its '('.
      {"host a and (tcp) and b", "(([-,-,host]'a' and {abbrev proto=tcp}) and [-,-,host]'b'^)"},
      {"tcp and udp or icmp", "(({abbrev proto=tcp} and {abbrev proto=udp}) or {abbrev proto=icmp})"},
      {"tcp or udp and icmp", "(({abbrev proto=tcp} or {abbrev proto=udp}) and {abbrev proto=icmp})"},
      {"!tcp && (udp || icmp)",
       "(!{abbrev proto=tcp} and ({abbrev proto=udp} or {abbrev proto=icmp}))"},
      {"not not tcp", "!!{abbrev proto=tcp}"},
      {"ether broadcast or ip multicast or broadcast",
       "(({broadcast proto=link} or {multicast proto=ip}) or {broadcast})"},
      {"less 64 or greater 1000", "({less value=64} or {greater value=1000})"},
      {"byte 9 = 6", "{byte value=6 offset=9 op==}"},
      {"vlan 100 and vlan", "({vlan value=100} and {vlan})"},
      {"vlan (1)", "{vlan value=1}"},
      {"mpls and pppoes 3 and geneve 5 and pppoed",
       "((({mpls} and {pppoes value=3}) and {geneve value=5}) and {pppoed})"},
      {"llc and llc I and llc rnr", "(({llc} and {llc subtype=i}) and {llc subtype=rnr})"},
      {"tcp[tcpflags] & tcp-syn != 0", "((tcp[13:1]&2)!=0)"},
      {"icmp[icmptype] == icmp-echo", "(icmp[0:1]=8)"},
      {"ip[2:2] > 100", "(ip[2:2]>100)"},
      {"ether[12:4] = 0", "(link[12:4]=0)"},
      {"ip6[ip6[6]] = 1", "(ip6[ip6[6:1]:1]=1)"},
      {"len - 1 >= 0", "((len-1)>=0)"},
      {"length <= 1500", "(len<=1500)"},
      {"1 + 2 * 3 = 7", "((1+(2*3))=7)"},
      {"1 | 2 & 3 << 1 + 4 * 5 < 0", "((1|(2&(3<<(1+(4*5)))))<0)"},
      {"8 - 4 - 2 = 2", "(((8-4)-2)=2)"},
      {"- 2 + 3 = 1", "((-2+3)=1)"},
      -- % and ^ (no precedence in grammar.y): each takes what follows it.
      {"2 ^ 1 + 1 = 0", "((2^(1+1))=0)"},
      {"1 * 2 % 3 * 4 = 2", "((1*(2%(3*4)))=2)"},
      {"- 2 % 3 = 0", "(-(2%3)=0)"},
      {"(1) = 1", "(1=1)"},
      {"((1) + 1) = 2", "((1+1)=2)"},
      {"(ip[0]) = 1", "(ip[0:1]=1)"},
      {"(ip[0] = 69)", "(ip[0:1]=69)"},
      {"inbound or outbound or ifindex 2", "(({inbound} or {outbound}) or {ifindex value=2})"},
      {"4294967295 = 0xffffffff", "(4294967295=4294967295)"},
   }
   for _, case in ipairs(trees) do
      local tree, message, col = M.parse(case[1])
      assert(tree, ("%q: %s at column %s"):format(case[1], tostring(message), tostring(col)))
      local got = M.format(tree)
      assert(got == case[2], ("%q: %s, not %s"):format(case[1], got, case[2]))
   end
   -- Every node carries the column of its token.
   local tree = M.parse("tcp port 80 or  udp")
   assert(tree.col == 13 and tree.a.col == 1 and tree.a.id.col == 10 and tree.b.col == 17)
   tree = M.parse("host a or b")
   assert(tree.b.col == 11 and tree.b.id.col == 11)
   -- Refused, with the column and what was expected.
   local errors = {
      {"tcp port", 9, "expected a port number or name"},
      {"host", 5, "expected a host name or address"},
      {"src", 4, "expected a host, network or port"},
      {"src or foo", 8, "expected 'dst'"},
      {"10.0.0.1", 1, "expected a qualifier"},
      {"tcp and 80", 9, "expected a qualifier"},
      {"(port 1) and 2", 14, "expected a qualifier"},
      {"not (host a) and b", 18, "expected a qualifier"},
      {"host a and (tcp or b)", 20, "expected a qualifier"},
      {"len-1 > 0", 1, "expected a qualifier"},
      {"ip proto tcp", 10, "expected a protocol number or name"},
      {"tcp port 80 443", 13, "expected 'and', 'or' or the end of the expression"},
      {"(tcp", 5, "expected 'and', 'or' or ')'"},
      {"tcp)", 4, "unbalanced ')'"},
      {"ip and", 7, "expected a primitive"},
      {"ip and ()", 9, "expected a primitive"},
      {"ip[0", 5, "expected ':' or ']'"},
      {"ip[0:3] = 1", 6, "data size must be 1, 2, or 4"},
      {"ip[0] = 1 = 1", 11, "expected 'and', 'or' or the end"},
      {"ip[0] + 1", 10, "expected a comparison"},
      {"1 = ", 5, "expected a number, 'len'"},
      {"less", 5, "expected a length"},
      {"byte 1 ! 2", 8, "expected '&', '|', '<', '>' or '='"},
      {"net 10.0.0.0 mask", 18, "expected a netmask"},
      {"net 10.0.0.0/", 14, "expected a prefix length"},
      {"host 1.2.3.4 and ((1.2.3.5))", 20, "expected a host name or address"},
      {"port 1.2.3.4", 6, "'port' modifier applied to ip host"},
      {"a@b", 2, "unexpected character '@'"},
      {"tcp port 09", 10, "number 09 contains non-octal digit"},
      {"tcp port 4294967296", 10, "number 4294967296 overflows 32 bits"},
      {"tcp port 0x100000000", 10, "overflows 32 bits"},
      {"ether host 1:2:3", 12, "bogus ethernet address 1:2:"},
      {"host ::1.2.3.999", 6, "bogus IPv6 address ::1.2.3.999"},
      {"net :::/0", 5, "invalid IPv6 address ':::'"},
      {"host ::1::", 6, "invalid IPv6 address '::1::'"},
      {"host 1::2::3", 6, "bogus ethernet address 1::2::"},
      {"llc foo", 5, 'unknown LLC type name "foo"'},
      {"vpi 1", 1, "'vpi' supported only on raw ATM"},
      {"fisu", 1, "supported only on MTP2"},
      {"on eth0", 1, "ifname supported only on PF linktype"},
      {"wlan type mgt", 6, "supported only on 802.11"},
      {"ether host $12", 12, "aid supported only on ARCnet"},
      {"tcp port \\", 10, "expected a name after"},
      {"host \0", 6, "unexpected byte 0x00"},
      {("("):rep(300) .. "tcp" .. (")"):rep(300), 201, "nested too deeply"},
      {("not "):rep(300) .. "tcp", 801, "nested too deeply"},
      {("- "):rep(300) .. "1 = 1", 399, "nested too deeply"},
      {("1 ^ "):rep(300) .. "1 = 1", 797, "nested too deeply"},
   }
   for _, case in ipairs(errors) do
      local accepted, message, col = M.parse(case[1])
      assert(not accepted, ("%q accepted: %s"):format(case[1], accepted and M.format(accepted)))
      assert(col == case[2] and message:find(case[3], 1, true),
             ("%q: column %d: %s, not column %d: %s"):format(case[1], col, message, case[2],
                                                            case[3]))
   end
   assert(select(2, M.parse(nil)) == "expected a filter expression (a string)")
   -- Against libpcap's own parser on random strings of tokens: what libpcap accepts is accepted,
   -- (the one name is localhost: libpcap resolves a host name, and one not in /etc/hosts would be
   -- asked of DNS)
   -- what it refuses as syntax (its scanner's and grammar.y's messages) is refused; the rest it
   -- refuses for meaning (unknown names, 'tcp' modifier applied to host, ...), which is lib.pf's.
   local libpcap = require("lib.pf.libpcap")
   local syntax = {"syntax error", "bogus ethernet", "bogus IPv6", "non%-octal",
                   "overflows 32 bits", "data size", "^'port' modifier", "^'portrange' modifier",
                   "^'proto' modifier", "^'protochain' modifier", "LLC type name"}
   local words = {"tcp", "udp", "ip", "ip6", "arp", "icmp", "host", "net", "port", "portrange",
                  "src", "dst", "and", "or", "not", "!", "&&", "||", "(", ")", "(", ")",
                  "1.2.3.4", "10.1", "10", "80", "0x10", "1:2:3:4:5:6", "fe80::1", "localhost",
                  "ether", "proto", "vlan", "len", "less", "greater", "[", "]", ":", "2",
                  "4", "+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", "=", "!=", "<", "<=",
                  ">", ">=", "==", "mask", "255.0.0.0", "/", "8", "broadcast", "multicast",
                  "gateway", "byte", "tcpflags", "tcp-syn", "icmp-echo", "mpls", "llc",
                  "protochain", "sctp", "icmp6", "rarp"}
   -- And expressions drawn from the grammar: qualifiers and values, arithmetic, nesting.
   local R = math.random
   local function pick (t) return t[R(#t)] end
   local values = {"1.2.3.4", "10.1", "10", "80", "0x50", "010", "fe80::1", "::ffff:1.2.3.4",
                   "1:2:3:4:5:6", "0001.0203.0405", "localhost", "10.0.0.0/8",
                   "10.0.0.0 mask 255.0.0.0", "fe80::/10", "(53)"}
   local quals = {{"", "ip ", "ip6 ", "tcp ", "udp ", "ether ", "arp ", "sctp ", "icmp "},
                  {"", "src ", "dst ", "src or dst ", "src and dst ", "dst or src "},
                  {"", "host ", "net ", "port ", "portrange ", "proto ", "gateway ",
                   "protochain "}}
   local arith
   local function operand (d)
      local r = R(8)
      if r == 2 then return "len" end
      if r == 3 then
         return pick{"ip", "tcp", "udp", "ether", "ip6", "icmp"} .. "[" .. arith(d + 1)
                .. pick{"", ":1", ":2", ":4", ":3"} .. "]"
      end
      if r == 4 and d < 4 then return "(" .. arith(d + 1) .. ")" end
      if r == 5 and d < 4 then return "-" .. operand(d + 1) end
      if r == 6 then return pick{"tcpflags", "tcp-syn", "icmptype", "icmp-echo", "0x1f", "017"} end
      return tostring(R(0, 300))
   end
   function arith (d)
      local a = operand(d)
      for _ = 1, R(0, d < 3 and 3 or 0) do
         a = a .. " " .. pick{"+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"} .. " "
             .. operand(d + 1)
      end
      return a
   end
   local random_expr
   local function term (d)
      local r = R(10)
      if r == 1 then
         return pick{"tcp", "ip6", "arp", "icmp6", "vlan", "vlan 10", "mpls", "llc",
                     "ether broadcast", "ip multicast", "less 100", "greater 60", "byte 9 = 6"}
      end
      if r <= 4 then return pick(quals[1]) .. pick(quals[2]) .. pick(quals[3]) .. pick(values) end
      if r <= 6 then
         return arith(0) .. pick{" = ", " != ", " < ", " > ", " <= ", " >= ", " == "} .. arith(0)
      end
      if r == 7 and d < 4 then return "not " .. term(d + 1) end
      if r == 8 and d < 4 then return "(" .. random_expr(d + 1) .. ")" end
      return pick(quals[3]) .. pick(values)
   end
   function random_expr (d)
      local e = term(d)
      for _ = 1, R(0, 3) do
         local op = pick{" and ", " or ", " && ", " || "}
         e = e .. op .. (R(3) > 1 and term(d + 1) or pick{
            pick(values), "not " .. pick(values), "(" .. pick(values) .. " or " .. pick(values) .. ")"})
      end
      return e
   end
   math.randomseed(1)
   local both = 0
   for k = 1, 40000 do
      local expr
      if k <= 30000 then
         local t = {}
         for i = 1, R(1, 5) do t[i] = words[R(#words)] end
         expr = table.concat(t, " ")
      else
         expr = random_expr(0)
      end
      local prog, err = libpcap.compile(expr, false) -- (its optimiser, not its parser, is slow)
      local ours, message, col = M.parse(expr)
      if prog then
         if not ours then
            error(("%q: libpcap accepts it, refused at column %d: %s"):format(expr, col, message))
         end
         both = both + 1
      elseif ours then
         for _, pattern in ipairs(syntax) do
            assert(not err:find(pattern), ("%q: libpcap refuses it (%s)"):format(expr, err))
         end
      end
   end
   assert(both > 2000, "too few random expressions valid: " .. both)
   print("selftest: ok")
end

return M
