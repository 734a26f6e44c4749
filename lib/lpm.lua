-- lib.lpm: longest-prefix match for IPv4 and IPv6, routes added and removed at once (no build step).
--
-- Both tables are DIR-24-8 multibit tries (the layout of DPDK's rte_lpm and rte_fib6's trie): tbl24
-- has an int32 entry for each value of an address's first 24 bits, and tbl8 holds groups of 256
-- entries, one for each value of the next byte. An entry is a value (0 .. 2^31-1) or, negative,
-- 0x80000000 | the offset in tbl8 of the group that resolves the next byte. IPv4 has one level of
-- groups (bits 24-31), IPv6 up to 13 (bytes 3-15). A lookup is one load for prefixes up to /24, one
-- more per further byte: pure FFI loads that compile into the caller's trace (lookup, lookup_ptr);
-- lookup_batch is C++ (lib/lpm.cc) that prefetches the tbl24 entries of the batch ahead.
--
-- Beside each entry a depth array keeps the length + 1 of the prefix that set it (0: the default),
-- so an add overwrites only entries set by prefixes no longer than its own. The rules themselves,
-- one Lua table per prefix length, are the source of truth: a removal repaints the entries its
-- prefix set with the next-shorter prefix that covers it, and a group whose entries all come from
-- prefixes no longer than the group's first bit holds one value: it is given back to the parent
-- entry and its space reused.
local ffi = require("ffi")
local bit = require("bit")
require("lib.lpm_cdefs")

local C = ffi.C
local band, bor, rshift, lshift, bswap = bit.band, bit.bor, bit.rshift, bit.lshift, bit.bswap
local cast = ffi.cast
local u8p, u32p = ffi.typeof("uint8_t *"), ffi.typeof("uint32_t *")
local i32p = ffi.typeof("int32_t *")

local M = {}

local MAX_VALUE = 0x7fffffff
local EXT = 0x80000000
local TBL24 = 2 ^ 24
local MAX_GROUPS = 2 ^ 23 -- so that a group's offset (index * 256) fits in 31 bits

local function alloc (ctype, count, size)
   local bytes = count * size
   local p = C.snabb_lpm_alloc(bytes)
   if p == nil then error(("lib.lpm: cannot allocate %d bytes"):format(bytes), 3) end
   return ffi.gc(cast(ctype, p), function (q) C.snabb_lpm_free(q, bytes) end)
end

local function release (p, bytes)
   ffi.gc(p, nil)
   C.snabb_lpm_free(p, bytes)
end

local function check_value (value, level)
   if type(value) ~= "number" or value < 0 or value > MAX_VALUE or value % 1 ~= 0 then
      error(("lib.lpm: value %s: values are integers 0 .. 2^31-1 (2147483647)")
            :format(tostring(value)), level + 1)
   end
end

-- The trie common to both families. Addresses are handled here as bytes in self.key (network
-- order), prefixes as (self.key, len).
local Trie = {}
Trie.__index = Trie

local function new_trie (class, conf, nbytes)
   conf = conf or {}
   local default = conf.default or 0
   check_value(default, 3)
   local t = setmetatable({
      nbytes = nbytes,
      default = default,
      tbl24 = alloc(i32p, TBL24, 4),
      d24 = alloc(u8p, TBL24, 1),
      groups = 0, -- allocated so far (used or freed)
      capacity = 64,
      spare = {}, -- indices of freed groups
      rules = {}, -- rules[len][key] = value, key: the prefix's bytes as a string
      key = ffi.new("uint8_t[16]"),
      scratch = ffi.new("uint8_t[16]"),
   }, class)
   t.tbl8 = alloc(i32p, t.capacity * 256, 4)
   t.d8 = alloc(u8p, t.capacity * 256, 1)
   for len = 0, nbytes * 8 do t.rules[len] = {} end
   if default ~= 0 then
      local tbl24 = t.tbl24
      for i = 0, TBL24 - 1 do tbl24[i] = default end
   end
   return t
end

-- A group filled with (value, depth); its offset in tbl8.
function Trie:new_group (value, depth)
   local g = table.remove(self.spare)
   if not g then
      g = self.groups
      if g >= MAX_GROUPS then error("lib.lpm: table full (2^23 groups of 256 entries)", 4) end
      if g == self.capacity then
         local cap = self.capacity * 2
         local tbl8, d8 = alloc(i32p, cap * 256, 4), alloc(u8p, cap * 256, 1)
         ffi.copy(tbl8, self.tbl8, g * 256 * 4)
         ffi.copy(d8, self.d8, g * 256)
         release(self.tbl8, self.capacity * 256 * 4)
         release(self.d8, self.capacity * 256)
         self.tbl8, self.d8, self.capacity = tbl8, d8, cap
      end
      self.groups = g + 1
   end
   local base = g * 256
   local tbl8, d8 = self.tbl8, self.d8
   for i = base, base + 255 do tbl8[i], d8[i] = value, depth end
   return base
end

-- Entries [first, first + n) of (tbl, dep) and all the groups below them: those whose depth is in
-- [lo, hi] become (value, depth).
function Trie:paint (tbl, dep, first, n, value, depth, lo, hi)
   for i = first, first + n - 1 do
      local e = tbl[i]
      if e < 0 then
         self:paint(self.tbl8, self.d8, band(e, MAX_VALUE), 256, value, depth, lo, hi)
      else
         local d = dep[i]
         if d >= lo and d <= hi then tbl[i], dep[i] = value, depth end
      end
   end
end

-- Visits the entries of prefix (self.key, len) level by level: fn(self, tbl, dep, first, n) on the
-- level that holds the prefix's last bit. With make, missing groups on the way are made; without,
-- a missing group ends the walk (nothing of the prefix there). Fills path with the offsets of the
-- groups passed (path[1]: the group of bits 24-31) and the parent entries' (tbl, index).
function Trie:walk (len, make, fn, a1, a2, a3, a4, path)
   local key = self.key
   local index = key[0] * 65536 + key[1] * 256 + key[2]
   if len <= 24 then
      local n = 2 ^ (24 - len)
      return fn(self, self.tbl24, self.d24, index - index % n, n, a1, a2, a3, a4)
   end
   local tbl, dep = self.tbl24, self.d24
   local level, byte = 1, 3
   while true do
      local e = tbl[index]
      if e >= 0 then
         if not make then return end
         local base = self:new_group(e, dep[index])
         tbl = (tbl == self.tbl24) and tbl or self.tbl8 -- tbl8 may have moved
         tbl[index] = bor(EXT, base)
         e = tbl[index]
      end
      local base = band(e, MAX_VALUE)
      if path then path[level] = {tbl == self.tbl24, index, base} end
      tbl, dep = self.tbl8, self.d8
      local last = 24 + 8 * level
      if len <= last then
         local n = 2 ^ (last - len)
         local b = key[byte]
         return fn(self, tbl, dep, base + b - b % n, n, a1, a2, a3, a4)
      end
      index = base + key[byte]
      level, byte = level + 1, byte + 1
   end
end

-- key: the first len bits of the nbytes at addr (a uint8_t*) copied to self.key; as a string.
function Trie:set_key (addr, len)
   local key = self.key
   for i = 0, self.nbytes - 1 do
      local bits = len - 8 * i
      if bits >= 8 then key[i] = addr[i]
      elseif bits <= 0 then key[i] = 0
      else key[i] = band(addr[i], lshift(0xff, 8 - bits)) end
   end
   return ffi.string(key, self.nbytes)
end

function Trie:add_key (addr, len, value)
   check_value(value, 3)
   local k = self:set_key(addr, len)
   self.rules[len][k] = value
   self:walk(len, true, Trie.paint, value, len + 1, 0, len + 1)
end

function Trie:remove_key (addr, len)
   local k = self:set_key(addr, len)
   local rules = self.rules[len]
   if rules[k] == nil then return false end
   rules[k] = nil
   -- The longest shorter prefix that covers this one, or the default.
   local value, depth = self.default, 0
   local scratch = self.scratch
   ffi.copy(scratch, self.key, self.nbytes)
   for l = len - 1, 0, -1 do
      local v = self.rules[l][self:set_key(scratch, l)]
      if v then value, depth = v, l + 1; break end
   end
   self:set_key(scratch, len)
   local path = {}
   self:walk(len, false, Trie.paint, value, depth, len + 1, len + 1, path)
   -- Groups on the path, deepest first, that now hold only what covers them whole go back to
   -- their parent entry.
   for level = #path, 1, -1 do
      local in24, index, base = path[level][1], path[level][2], path[level][3]
      local tbl8, d8 = self.tbl8, self.d8
      local first_bit = 16 + 8 * level
      for i = base, base + 255 do
         if tbl8[i] < 0 or d8[i] > first_bit + 1 then return true end
      end
      local tbl, dep = self.tbl8, self.d8
      if in24 then tbl, dep = self.tbl24, self.d24 end
      tbl[index], dep[index] = tbl8[base], d8[base]
      self.spare[#self.spare + 1] = base / 256
   end
   return true
end

-- Rules in the table.
function Trie:count ()
   local n = 0
   for len = 0, self.nbytes * 8 do
      for _ in pairs(self.rules[len]) do n = n + 1 end
   end
   return n
end

-- Calls fn(prefix text, value) for each rule, shortest prefixes first.
function Trie:each (fn)
   for len = 0, self.nbytes * 8 do
      for k, v in pairs(self.rules[len]) do
         fn(self:ntop(cast(u8p, k)) .. "/" .. len, v)
      end
   end
end

-- Frees the table's memory now rather than when it is collected.
function Trie:free ()
   release(self.tbl24, TBL24 * 4)
   release(self.d24, TBL24)
   release(self.tbl8, self.capacity * 256 * 4)
   release(self.d8, self.capacity * 256)
   self.tbl24, self.d24, self.tbl8, self.d8 = nil, nil, nil, nil
end

-- Prefix text -> the address's bytes in self.scratch, and the length; or nil, message.
function Trie:parse_prefix (text)
   if type(text) ~= "string" then
      return nil, ("prefix %s: not a string"):format(tostring(text))
   end
   local addr, len = text:match("^([^/]+)/(%d+)$")
   if not addr then
      return nil, ("prefix '%s': expected ADDRESS/LENGTH"):format(text)
   end
   len = tonumber(len)
   if len > self.nbytes * 8 then
      return nil, ("prefix '%s': length %d, at most %d"):format(text, len, self.nbytes * 8)
   end
   if not self:pton(addr, self.scratch) then
      return nil, ("prefix '%s': '%s' is not an %s address"):format(text, addr, self.family)
   end
   return self.scratch, len
end

function Trie:add (prefix, value)
   local addr, len = self:parse_prefix(prefix)
   if not addr then error("lib.lpm: " .. len, 2) end
   self:add_key(addr, len, value)
end

function Trie:remove (prefix)
   local addr, len = self:parse_prefix(prefix)
   if not addr then error("lib.lpm: " .. len, 2) end
   return self:remove_key(addr, len)
end

-- IPv4 -----------------------------------------------------------------------------------------

local IPv4 = setmetatable({family = "IPv4"}, {__index = Trie})
IPv4.__index = IPv4
M.IPv4 = IPv4

function IPv4.new (conf)
   return new_trie(IPv4, conf, 4)
end

-- "a.b.c.d" -> 4 bytes at out, or nil.
function IPv4:pton (text, out)
   local a, b, c, d = text:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
   if not a then return nil end
   local bytes = {tonumber(a), tonumber(b), tonumber(c), tonumber(d)}
   for i = 1, 4 do
      if bytes[i] > 255 then return nil end
      out[i - 1] = bytes[i]
   end
   return out
end

function IPv4:ntop (p)
   return ("%d.%d.%d.%d"):format(p[0], p[1], p[2], p[3])
end

local function check_addr4 (addr, level)
   if type(addr) ~= "number" or addr < 0 or addr > 0xffffffff or addr % 1 ~= 0 then
      error(("lib.lpm: address %s: an IPv4 address is an integer 0 .. 2^32-1 in host order")
            :format(tostring(addr)), level + 1)
   end
end

local function check_len (len, max, level)
   if type(len) ~= "number" or len < 0 or len > max or len % 1 ~= 0 then
      error(("lib.lpm: prefix length %s: 0 .. %d"):format(tostring(len), max), level + 1)
   end
end

-- addr: host-order uint32.
function IPv4:add_prefix (addr, len, value)
   check_addr4(addr, 2)
   check_len(len, 32, 2)
   local s = self.scratch
   s[0], s[1], s[2], s[3] = rshift(addr, 24), band(rshift(addr, 16), 255),
      band(rshift(addr, 8), 255), band(addr, 255)
   self:add_key(s, len, value)
end

function IPv4:remove_prefix (addr, len)
   check_addr4(addr, 2)
   check_len(len, 32, 2)
   local s = self.scratch
   s[0], s[1], s[2], s[3] = rshift(addr, 24), band(rshift(addr, 16), 255),
      band(rshift(addr, 8), 255), band(addr, 255)
   return self:remove_key(s, len)
end

-- addr: host-order uint32 (a number).
function IPv4:lookup (addr)
   local e = self.tbl24[rshift(addr, 8)]
   if e < 0 then e = self.tbl8[band(e, MAX_VALUE) + band(addr, 255)] end
   return e
end

-- p: 4 bytes in network order (e.g. the destination in an IPv4 header).
function IPv4:lookup_ptr (p)
   local addr = bswap(cast(u32p, p)[0])
   local e = self.tbl24[rshift(addr, 8)]
   if e < 0 then e = self.tbl8[band(e, MAX_VALUE) + band(addr, 255)] end
   return e
end

-- addrs: uint32_t[n] in host order; values: uint32_t[n] out.
function IPv4:lookup_batch (addrs, values, n)
   C.snabb_lpm4_lookup_batch(self.tbl24, self.tbl8, addrs, values, n)
end

-- IPv6 -----------------------------------------------------------------------------------------

local IPv6 = setmetatable({family = "IPv6"}, {__index = Trie})
IPv6.__index = IPv6
M.IPv6 = IPv6

function IPv6.new (conf)
   return new_trie(IPv6, conf, 16)
end

function IPv6:pton (text, out)
   if #text > 45 or C.snabb_lpm_parse6(text, out) == 0 then return nil end
   return out
end

function IPv6:ntop (p)
   local groups = {}
   for i = 0, 7 do groups[i + 1] = ("%x"):format(p[2 * i] * 256 + p[2 * i + 1]) end
   -- The longest run of two or more zero groups becomes "::".
   local best, best_len, start = nil, 1, nil
   for i = 1, 9 do
      if i <= 8 and groups[i] == "0" then
         start = start or i
      elseif start then
         if i - start > best_len then best, best_len = start, i - start end
         start = nil
      end
   end
   if not best then return table.concat(groups, ":") end
   return table.concat(groups, ":", 1, best - 1) .. "::"
      .. table.concat(groups, ":", best + best_len, 8)
end

-- p: 16 bytes in network order (e.g. the destination in an IPv6 header); or an address as text.
function IPv6:lookup_ptr (p)
   p = cast(u8p, p)
   local e = self.tbl24[p[0] * 65536 + p[1] * 256 + p[2]]
   local i = 3
   while e < 0 do
      e = self.tbl8[band(e, MAX_VALUE) + p[i]]
      i = i + 1
   end
   return e
end

-- An address as text (not for the packet path).
function IPv6:lookup (text)
   local a = self:pton(text, ffi.new("uint8_t[16]"))
   if not a then error(("lib.lpm: '%s' is not an IPv6 address"):format(tostring(text)), 2) end
   return self:lookup_ptr(a)
end

-- addrs: uint8_t[16 n]; values: uint32_t[n] out.
function IPv6:lookup_batch (addrs, values, n)
   C.snabb_lpm6_lookup_batch(self.tbl24, self.tbl8, addrs, values, n)
end

-- Route files ----------------------------------------------------------------------------------

-- Adds the routes of filename to t: lines "PREFIX VALUE", '#' to the end of a line a comment,
-- blank lines skipped. Errors are "FILE:LINE: message". Returns the number of routes added.
function M.load (filename, t)
   local f, err = io.open(filename, "r")
   if not f then error(("%s: cannot open: %s"):format(filename, err), 0) end
   local n, lineno = 0, 0
   for line in f:lines() do
      lineno = lineno + 1
      line = line:gsub("#.*", "")
      local prefix, value, rest = line:match("^%s*(%S+)%s*(%S*)%s*(.-)%s*$")
      if prefix then
         local function fail (msg)
            f:close()
            error(("%s:%d: %s"):format(filename, lineno, msg), 0)
         end
         if value == "" then fail(("'%s': expected PREFIX VALUE"):format(prefix)) end
         if rest ~= "" then fail(("'%s': expected PREFIX VALUE, then nothing"):format(line)) end
         local addr, len = t:parse_prefix(prefix)
         if not addr then fail(len) end
         local v = value:match("^%d+$") and tonumber(value)
         if not v or v > MAX_VALUE then
            fail(("value '%s': values are integers 0 .. 2^31-1 (2147483647)"):format(value))
         end
         t:add_key(addr, len, v)
         n = n + 1
      end
   end
   f:close()
   return n
end

-- Self-test against a naive reference ----------------------------------------------------------

-- The reference: a plain list of {bytes, len, value}; a lookup scans it for the longest match.
local function ref_match (bytes, len, addr)
   for i = 0, len - 1 do
      local b = 7 - i % 8
      if band(rshift(bytes[i / 8 - i / 8 % 1], b), 1)
         ~= band(rshift(addr[(i - i % 8) / 8], b), 1) then
         return false
      end
   end
   return true
end

local function ref_lookup (ref, default, addr)
   local best, value = -1, default
   for _, r in pairs(ref) do
      if r.len > best and ref_match(r.bytes, r.len, addr) then best, value = r.len, r.value end
   end
   return value
end

-- Random prefixes and addresses in every address class.
local classes4 = {
   {0, 0, 0, 0}, {10, 0, 0, 0}, {127, 0, 0, 1}, {169, 254, 0, 0}, {172, 16, 0, 0},
   {192, 168, 1, 0}, {224, 0, 0, 1}, {239, 255, 255, 250}, {240, 0, 0, 0},
   {255, 255, 255, 255}, {100, 64, 0, 0}, {1, 2, 3, 4},
}
local classes6 = {
   "::", "::1", "fe80::", "ff00::", "ff02::1", "2001:db8::", "::ffff:10.0.0.1", "64:ff9b::",
   "fc00::", "2002::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2a00:1450::",
}

local function random_addr (t, out)
   local nbytes = t.nbytes
   local r = math.random()
   if r < 0.4 then -- near a class address: its first random-many bits kept
      local c = t.classes[math.random(#t.classes)]
      local keep = math.random(0, nbytes * 8)
      for i = 0, nbytes - 1 do
         local bits = keep - 8 * i
         local rb = math.random(0, 255)
         if bits >= 8 then out[i] = c[i]
         elseif bits <= 0 then out[i] = rb
         else out[i] = bor(band(c[i], lshift(0xff, 8 - bits)), band(rb, rshift(0xff, bits))) end
      end
   else
      for i = 0, nbytes - 1 do out[i] = math.random(0, 255) end
   end
   return out
end

local function test_family (class, classes, nbytes, ops, checks)
   local default = math.random(0, 1000)
   local t = class.new{default = default}
   t.classes = {}
   for i, c in ipairs(classes) do
      local b = ffi.new("uint8_t[16]")
      if type(c) == "string" then assert(t:pton(c, b)) else
         for j = 1, 4 do b[j - 1] = c[j] end
      end
      t.classes[i] = b
   end
   local ref = {} -- key string .. len -> {bytes, len, value}
   local live = {}
   local addr = ffi.new("uint8_t[16]")
   local function check (a)
      local want = ref_lookup(ref, default, a)
      local got = t:lookup_ptr(a)
      if got ~= want then
         error(("%s: lookup %s: %d, expected %d"):format(t.family, t:ntop(a), got, want))
      end
      if nbytes == 4 then
         local host = a[0] * 2 ^ 24 + a[1] * 65536 + a[2] * 256 + a[3]
         assert(t:lookup(host) == want)
      end
   end
   for _ = 1, ops do
      if #live > 0 and math.random() < 0.35 then
         local i = math.random(#live)
         local r = live[i]
         live[i] = live[#live]
         live[#live] = nil
         local text = t:ntop(r.bytes) .. "/" .. r.len
         assert(t:remove(text) == true, text)
         assert(t:remove(text) == false, text)
         ref[r.id] = nil
      else
         local len = math.random(0, nbytes * 8)
         if math.random() < 0.5 then len = math.random(math.max(0, nbytes * 8 - 16), nbytes * 8) end
         random_addr(t, addr)
         local bytes = ffi.new("uint8_t[16]")
         t:set_key(addr, len)
         ffi.copy(bytes, t.key, nbytes)
         local id = ffi.string(bytes, nbytes) .. len
         local value = math.random(0, MAX_VALUE)
         if nbytes == 4 and math.random() < 0.5 then
            t:add_prefix(bytes[0] * 2 ^ 24 + bytes[1] * 65536 + bytes[2] * 256 + bytes[3], len,
                         value)
         else
            t:add(t:ntop(bytes) .. "/" .. len, value)
         end
         if not ref[id] then live[#live + 1] = {bytes = bytes, len = len, id = id} end
         ref[id] = {bytes = bytes, len = len, value = value}
         for _, r in ipairs(live) do if r.id == id then r.value = value end end
      end
      -- Addresses at the edges of random rules, and random ones.
      for _ = 1, checks do
         if #live > 0 then
            local r = live[math.random(#live)]
            ffi.copy(addr, r.bytes, nbytes)
            check(addr) -- the first address
            for i = 0, nbytes - 1 do -- the last
               local bits = r.len - 8 * i
               if bits <= 0 then addr[i] = 255
               elseif bits < 8 then addr[i] = bor(addr[i], rshift(0xff, bits)) end
            end
            check(addr)
         end
         check(random_addr(t, addr))
      end
   end
   assert(t:count() == #live)
   -- Everything removed: the default everywhere, and every group given back.
   for _, r in ipairs(live) do assert(t:remove(t:ntop(r.bytes) .. "/" .. r.len)) end
   ref = {}
   for _ = 1, 200 do check(random_addr(t, addr)) end
   assert(#t.spare == t.groups, "groups left after every rule was removed")
   t:free()
end

function M.selftest ()
   print("selftest: lib.lpm")
   math.randomseed(tonumber(os.getenv("SNABB_LPM_SEED") or 18))
   -- By hand: overlapping prefixes, removal restoring the next-shorter one.
   local t = M.IPv4.new{default = 7}
   t:add("10.0.0.0/8", 1)
   t:add("10.1.0.0/16", 2)
   t:add("10.1.2.0/24", 3)
   t:add("10.1.2.128/25", 4)
   t:add("10.1.2.129/32", 5)
   local function at (text) return t:lookup_ptr(t:pton(text, ffi.new("uint8_t[4]"))) end
   assert(at("10.1.2.129") == 5 and at("10.1.2.130") == 4 and at("10.1.2.1") == 3)
   assert(at("10.1.3.1") == 2 and at("10.2.0.0") == 1 and at("11.0.0.0") == 7)
   assert(t:remove("10.1.2.128/25") and at("10.1.2.130") == 3 and at("10.1.2.129") == 5)
   assert(t:remove("10.1.2.129/32") and at("10.1.2.129") == 3)
   assert(#t.spare == 1 and t.groups == 1)
   assert(not t:remove("10.1.2.0/23") and t:remove("10.1.2.0/24") and at("10.1.2.1") == 2)
   t:add("10.1.0.0/16", 9) -- replaces
   assert(at("10.1.200.1") == 9 and t:lookup(0x0a01c801) == 9)
   t:add("0.0.0.0/0", 0)
   assert(at("11.0.0.0") == 0 and t:remove("0.0.0.0/0") and at("11.0.0.0") == 7)
   for _, bad in ipairs{{"10.0.0.0/33", "length 33, at most 32"}, {"10.0.0/8", "not an IPv4"},
                        {"10.0.0.0", "ADDRESS/LENGTH"}, {"256.0.0.0/8", "not an IPv4"}} do
      local ok, err = pcall(t.add, t, bad[1], 1)
      assert(not ok and err:find(bad[2], 1, true), err)
   end
   local ok, err = pcall(t.add, t, "10.0.0.0/8", 2 ^ 31)
   assert(not ok and err:find("0 .. 2^31-1", 1, true), err)
   ok, err = pcall(t.add, t, "10.0.0.0/8", -1)
   assert(not ok and err:find("0 .. 2^31-1", 1, true), err)
   t:free()
   local t6 = M.IPv6.new()
   t6:add("2001:db8::/32", 1)
   t6:add("2001:db8:0:1::/64", 2)
   t6:add("2001:db8:0:1::1/128", 3)
   assert(t6:lookup("2001:db8:0:1::1") == 3 and t6:lookup("2001:db8:0:1::2") == 2)
   assert(t6:lookup("2001:db8:ffff::") == 1 and t6:lookup("2001:db9::") == 0)
   assert(t6:remove("2001:db8:0:1::1/128") and t6:lookup("2001:db8:0:1::1") == 2)
   assert(t6:ntop(t6:pton("2001:db8:0:1::1", ffi.new("uint8_t[16]"))) == "2001:db8:0:1::1")
   assert(t6:ntop(t6:pton("::", ffi.new("uint8_t[16]"))) == "::")
   assert(t6:ntop(t6:pton("1:0:0:2::", ffi.new("uint8_t[16]"))) == "1:0:0:2::")
   ok, err = pcall(t6.add, t6, "2001:db8::/129", 1)
   assert(not ok and err:find("at most 128", 1, true), err)
   t6:free()
   -- Route files: errors as file:line.
   local name = os.tmpname()
   local f = assert(io.open(name, "w"))
   f:write("# routes\n10.0.0.0/8 1  # a comment\n\n  192.168.0.0/16\t2\n10.0.0.0/40 3\n")
   f:close()
   t = M.IPv4.new()
   ok, err = pcall(M.load, name, t)
   assert(not ok and err == name .. ":5: prefix '10.0.0.0/40': length 40, at most 32", err)
   assert(at("10.1.1.1") == 1 and at("192.168.3.3") == 2)
   for _, case in ipairs{{"10.0.0.0/8\n", ":1: '10.0.0.0/8': expected PREFIX VALUE"},
                         {"10.0.0.0/8 1 2\n", ":1: '10.0.0.0/8 1 2': expected PREFIX VALUE, then nothing"},
                         {"1.0.0.0/8 2147483648\n", ":1: value '2147483648': values are"},
                         {"#\n\n1.0.0.0/8 x\n", ":3: value 'x'"}} do
      f = assert(io.open(name, "w"))
      f:write(case[1])
      f:close()
      ok, err = pcall(M.load, name, t)
      assert(not ok and err:find(name .. case[2], 1, true), err)
   end
   os.remove(name)
   ok, err = pcall(M.load, name, t)
   assert(not ok and err:find(name .. ": cannot open", 1, true), err)
   t:free()
   -- Random tables against the reference.
   for _ = 1, 3 do test_family(M.IPv4, classes4, 4, 300, 10) end
   for _ = 1, 3 do test_family(M.IPv6, classes6, 16, 300, 10) end
   -- Batches agree with single lookups.
   for _, class in ipairs{M.IPv4, M.IPv6} do
      local tb = class.new{default = 3}
      local nb = tb.nbytes
      tb.classes = {ffi.new("uint8_t[16]")}
      local n = 1000
      local addrs = ffi.new("uint8_t[?]", n * 16)
      for _ = 1, 500 do
         local a = random_addr(tb, ffi.new("uint8_t[16]"))
         tb:add_key(a, math.random(0, nb * 8), math.random(0, 100))
      end
      for i = 0, n * 16 - 1 do addrs[i] = math.random(0, 255) end
      local values = ffi.new("uint32_t[?]", n)
      if nb == 4 then
         local a4 = cast(u32p, addrs)
         tb:lookup_batch(a4, values, n)
         for i = 0, n - 1 do assert(values[i] == tb:lookup(a4[i])) end
      else
         tb:lookup_batch(addrs, values, n)
         for i = 0, n - 1 do assert(values[i] == tb:lookup_ptr(addrs + 16 * i)) end
      end
      tb:free()
   end
   print("selftest: ok")
end

return M
