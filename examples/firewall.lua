-- A NAT-less firewall between two ports, written from apps/README.md: it accepts or drops IPv4 and
-- IPv6 packets by 5-tuple rules (protocol, source and destination prefix, source and destination
-- port or port range), the first rule that matches deciding, and counts per rule what it accepted
-- and dropped. Other packets (ARP, ...) pass, counted as non_ip; IP packets cut short or with bad
-- lengths are dropped, counted as malformed.
--
--   snabb run examples/firewall.lua IN.pcap OUT.pcap [RULES.lua] --report
--   snabb bench examples/firewall.lua --pcap FILE        (the rules below, the firewall alone)
--
-- RULES.lua returns {rules = {...}, default = "accept"|"drop"}; without it, the rules below. A rule:
--   {action = "drop"|"accept", proto = "tcp"|"udp"|"icmp"|"icmpv6"|number,
--    src = "10.0.0.0/8"|"2001:db8::/32"|address, dst = ..., src_port = 53|"1024-65535", dst_port = ...}
-- Every field but action is optional (absent: any). A rule with ports matches only TCP and UDP
-- packets that carry their ports (not a fragment past the first); one with an address only its
-- IP version. Counters: apps/firewall/ruleN_accepted or ruleN_dropped (N from 1, by the rule's
-- action), default_accepted or default_dropped, non_ip, malformed.
local ffi = require("ffi")
local lib = require("core.lib")
local counter = require("core.counter")
local ipv4 = require("lib.protocol.ipv4")
local ipv6 = require("lib.protocol.ipv6")
local pcap = require("apps.pcap.pcap")

local ntohs, ntohl = lib.ntohs, lib.ntohl
local u16_ptr_t = ffi.typeof("uint16_t *")
local u32_ptr_t = ffi.typeof("uint32_t *")
local prefix_t = ffi.typeof("uint8_t[16]")

local protocols = {tcp = 6, udp = 17, icmp = 1, icmpv6 = 58}

-- "a.b.c.d[/n]" or "x::y[/n]" -> family, 16 bytes, prefix length; nil and why.
local function parse_prefix (text)
   if type(text) ~= "string" then return nil, "must be an address or prefix (a string)" end
   local addr, len = text:match("^([^/]+)/(%d+)$")
   addr = addr or text
   local family = addr:find(":") and 6 or 4
   local bytes = prefix_t()
   if ffi.C.inet_pton(family == 4 and 2 or 10, addr, bytes) ~= 1 then
      return nil, ("%q is not an IPv%d address"):format(addr, family)
   end
   local max = family == 4 and 32 or 128
   len = tonumber(len) or max
   if len > max then return nil, ("/%d is longer than %d bits"):format(len, max) end
   return family, bytes, len
end

-- 80 or "1024-65535" -> low, high; nil and why.
local function parse_ports (v)
   local lo, hi
   if type(v) == "number" then
      lo, hi = v, v
   elseif type(v) == "string" then
      local a, b = v:match("^(%d+)%-(%d+)$")
      lo, hi = tonumber(a or v), tonumber(b or v)
   end
   if not lo or lo % 1 ~= 0 or hi % 1 ~= 0 or lo < 0 or hi > 65535 or lo > hi then
      return nil, ("must be a port 0-65535 or a range \"LOW-HIGH\", got %s"):format(lib.describe(v))
   end
   return lo, hi
end

local fields = {action = true, proto = true, src = true, dst = true, src_port = true,
                dst_port = true}

-- A rule as the packet loop reads it: numbers and byte arrays only. -1: any.
local function compile_rule (i, r)
   local function fail (msg) error(("firewall: rule %d: %s"):format(i, msg), 0) end
   if type(r) ~= "table" then fail("must be a table, got " .. lib.describe(r)) end
   for k in pairs(r) do
      if not fields[k] then
         fail(("unknown field '%s' (known: action, proto, src, dst, src_port, dst_port)"):format(
            tostring(k)))
      end
   end
   if r.action ~= "accept" and r.action ~= "drop" then
      fail("action must be \"accept\" or \"drop\", got " .. lib.describe(r.action))
   end
   local rule = {action = r.action, accept = r.action == "accept", family = 0, proto = -1,
                 sport_lo = -1, sport_hi = -1, dport_lo = -1, dport_hi = -1, text = {}}
   -- Prefixes as four 32-bit words and masks (IPv4: the first word), matched with bit ops on
   -- numbers: src1..src4, srcmask1..srcmask4, dst1.., dstmask1.. (mask 0: any).
   for _, side in ipairs({"src", "dst"}) do
      for w = 1, 4 do rule[side .. w], rule[side .. "mask" .. w] = 0, 0 end
   end
   if r.proto ~= nil then
      rule.proto = protocols[r.proto] or (type(r.proto) == "number" and r.proto % 1 == 0
                                          and r.proto >= 0 and r.proto <= 255 and r.proto)
      if not rule.proto then
         fail("proto must be tcp, udp, icmp, icmpv6 or a number 0-255, got " .. lib.describe(r.proto))
      end
      rule.text[#rule.text + 1] = "proto " .. tostring(r.proto)
   end
   for _, side in ipairs({"src", "dst"}) do
      if r[side] ~= nil then
         local family, bytes, len = parse_prefix(r[side])
         if not family then fail(side .. ": " .. bytes) end
         if rule.family ~= 0 and rule.family ~= family then fail("src and dst are of two IP versions") end
         rule.family = family
         local words = ffi.cast("uint32_t *", bytes)
         for w = 1, 4 do
            local bits = math.min(math.max(len - (w - 1) * 32, 0), 32)
            local mask = bits == 0 and 0 or bit.lshift(-1, 32 - bits)
            if bits == 32 then mask = -1 end
            rule[side .. "mask" .. w] = mask
            rule[side .. w] = bit.band(ntohl(words[w - 1]), mask)
         end
         rule.text[#rule.text + 1] = side .. " " .. r[side]
      end
   end
   for _, side in ipairs({"src_port", "dst_port"}) do
      if r[side] ~= nil then
         local lo, hi = parse_ports(r[side])
         if not lo then fail(side .. " " .. hi) end
         local key = side == "src_port" and "sport" or "dport"
         rule[key .. "_lo"], rule[key .. "_hi"] = lo, hi
         rule.text[#rule.text + 1] = side .. " " .. tostring(r[side])
      end
   end
   rule.has_ports = rule.sport_lo >= 0 or rule.dport_lo >= 0
   if rule.has_ports and rule.proto ~= -1 and rule.proto ~= 6 and rule.proto ~= 17 then
      fail("ports are for tcp and udp only")
   end
   rule.text = #rule.text > 0 and table.concat(rule.text, ", ") or "any"
   return rule
end

-- The rules as one Lua function made once with loadstring: an if per rule with its constants
-- in place, no loop. (A loop over the rules inside the packet loop would be a trace of its own,
-- and the packet pointer live across it would be allocated per packet: measured 1,375 cycles a
-- packet, half of it in the GC, against this.) Arguments: the IP version, the addresses as 32-bit
-- words in host order (IPv4: s1, d1; the others 0), protocol, ports (-1: none). Returns the
-- number of the rule that matched, 0 for none.
local function compile_matcher (rules)
   local band = "bit.band"
   local code = {"local bit = bit\n",
                 "return function (family, s1, s2, s3, s4, d1, d2, d3, d4, proto, sport, dport)\n"}
   for i, r in ipairs(rules) do
      local c = {}
      if r.family ~= 0 then c[#c + 1] = ("family == %d"):format(r.family) end
      if r.proto ~= -1 then c[#c + 1] = ("proto == %d"):format(r.proto) end
      if r.sport_lo ~= -1 then c[#c + 1] = ("sport >= %d and sport <= %d"):format(r.sport_lo, r.sport_hi) end
      if r.dport_lo ~= -1 then c[#c + 1] = ("dport >= %d and dport <= %d"):format(r.dport_lo, r.dport_hi) end
      for _, side in ipairs({"src", "dst"}) do
         for w = 1, 4 do
            local mask = r[side .. "mask" .. w]
            if mask ~= 0 then
               c[#c + 1] = ("%s(%s%d, %d) == %d"):format(band, side:sub(1, 1), w, mask, r[side .. w])
            end
         end
      end
      code[#code + 1] = ("   if %s then return %d end\n"):format(
         #c > 0 and table.concat(c, " and ") or "true", i)
   end
   code[#code + 1] = "   return 0\nend\n"
   return assert(loadstring(table.concat(code), "=firewall rules"))()
end

local Firewall = {
   inputs = {"input"}, outputs = {"output"},
   config = {
      rules = {required = true, type = "table", allows = "a list of rules"},
      default = {default = "accept", check = function (v)
         return (v == "accept" or v == "drop") and v or nil end, allows = '"accept" or "drop"'},
   },
}

function Firewall:new (conf)
   local o = setmetatable({rules = {}, default_accept = conf.default == "accept"},
                          {__index = Firewall})
   o.shm = {non_ip = {counter}, malformed = {counter}}
   o.shm[conf.default == "accept" and "default_accepted" or "default_dropped"] = {counter}
   for i, r in ipairs(conf.rules) do
      local rule = compile_rule(i, r)
      rule.counter_name = ("rule%d_%s"):format(i, rule.accept and "accepted" or "dropped")
      o.shm[rule.counter_name] = {counter}
      o.rules[i] = rule
   end
   o.match = compile_matcher(o.rules)
   return o
end

-- The counter objects, once the engine has made them from the specs in self.shm.
function Firewall:bind_counters ()
   -- Indexed by what the matcher returns: 0 the default, i rule i.
   self.counters, self.accepts = {}, {}
   self.counters[0] = self.shm.default_accepted or self.shm.default_dropped
   self.accepts[0] = self.default_accept
   for i, rule in ipairs(self.rules) do
      self.counters[i], self.accepts[i] = self.shm[rule.counter_name], rule.accept
   end
   self.default_counter = self.counters[0]
   self.bound = true
end

function Firewall:push ()
   if not self.bound then self:bind_counters() end
   local i, o = self.input.input, self.output.output
   local match, counters, accepts = self.match, self.counters, self.accepts
   for _ = 1, link.nreadable(i) do
      local p = link.receive(i)
      local data, len = p.data, p.length
      local accept = false
      if len < 14 then
         counter.add(self.shm.malformed)
      else
         -- The EtherType, behind up to two VLAN tags (802.1ad, 802.1Q); written out twice, not
         -- as a loop, which would be a trace of its own inside the packet loop.
         local off, type = 14, ntohs(ffi.cast(u16_ptr_t, data + 12)[0])
         if (type == 0x8100 or type == 0x88a8) and len >= 18 then
            type, off = ntohs(ffi.cast(u16_ptr_t, data + 16)[0]), 18
            if (type == 0x8100 or type == 0x88a8) and len >= 22 then
               type, off = ntohs(ffi.cast(u16_ptr_t, data + 20)[0]), 22
            end
         end
         local family, proto, l4, l4_length, frag = 0, nil, nil, nil, nil
         if type == 0x0800 then
            family = 4
            proto, l4, l4_length, frag = ipv4.payload(data + off, len - off)
         elseif type == 0x86dd then
            family = 6
            proto, l4, l4_length, frag = ipv6.payload(data + off, len - off)
         end
         if family == 0 then
            counter.add(self.shm.non_ip)
            accept = true
         elseif not proto then
            counter.add(self.shm.malformed)
         else
            local sport, dport = -1, -1
            if (proto == 6 or proto == 17) and frag == 0 then
               if l4_length < 4 then
                  proto = nil -- a TCP or UDP header without its ports
               else
                  local ports = ffi.cast(u16_ptr_t, data + off + l4)
                  sport, dport = ntohs(ports[0]), ntohs(ports[1])
               end
            end
            if proto then
               local a = ffi.cast(u32_ptr_t, data + off)
               local rule
               if family == 4 then
                  rule = match(4, ntohl(a[3]), 0, 0, 0, ntohl(a[4]), 0, 0, 0, proto, sport, dport)
               else
                  rule = match(6, ntohl(a[2]), ntohl(a[3]), ntohl(a[4]), ntohl(a[5]),
                               ntohl(a[6]), ntohl(a[7]), ntohl(a[8]), ntohl(a[9]), proto, sport,
                               dport)
               end
               counter.add(counters[rule])
               accept = accepts[rule]
            else
               counter.add(self.shm.malformed)
            end
         end
      end
      if accept then link.transmit(o, p) else packet.free(p) end
   end
end

function Firewall:report ()
   local rows = {}
   for i, r in ipairs(self.rules) do
      rows[i] = {tostring(i), r.action, r.text, lib.comma_value(counter.read(self.counters[i]))}
   end
   rows[#rows + 1] = {"default", self.default_accept and "accept" or "drop", "",
                      lib.comma_value(counter.read(self.default_counter))}
   rows[#rows + 1] = {"non-IP", "accept", "", lib.comma_value(counter.read(self.shm.non_ip))}
   rows[#rows + 1] = {"malformed", "drop", "", lib.comma_value(counter.read(self.shm.malformed))}
   io.write(lib.table_text({"rule", "action", "match", "packets"}, rows, {false, false, false, true}))
end

local input, output, rules_file = ...
if input and not output then
   error("usage: snabb run examples/firewall.lua IN.pcap OUT.pcap [RULES.lua]", 0)
end
local conf = {
   rules = {
      {action = "accept", proto = "tcp", dst_port = 22},
      {action = "drop", proto = "tcp", dst_port = "0-1023"},
      {action = "drop", proto = "udp", src = "10.0.0.0/8"},
   },
   default = "accept",
}
if rules_file then conf = dofile(rules_file) end

local c = config.new()
config.app(c, "firewall", Firewall, conf)
if input then -- without arguments, the firewall alone: snabb bench feeds it and takes its output
   config.app(c, "in", pcap.PcapReader, input)
   config.app(c, "out", pcap.PcapWriter, output)
   config.link(c, "in.output -> firewall.input")
   config.link(c, "firewall.output -> out.input")
end
return c
