-- lib.pf.codegen: the back end of the pcap-filter compiler (lib/pf/README.md). It writes the
-- decision graph of lib.pf.optimize as the Lua source of one function (P, caplen, wirelen) ->
-- boolean: straight-line tests over FFI loads, with goto between them, no closures, tables or
-- NYI calls, so that LuaJIT compiles a call to it into the caller's trace.
--
-- Values are BPF's unsigned 32-bit numbers. Each generated expression is either exact (a Lua
-- number from 0 to 2^32-1 whose largest possible value is known) or a bit pattern (the int32
-- that LuaJIT's bit functions return); a compare converts only where it must. A 16- or 32-bit
-- field compared with a constant (under a mask or not) is compared in memory order against the
-- byte-swapped constant, so `ip` is one 16-bit load and one compare, with no bswap.

local bit = require("bit")
local ffi = require("ffi")
local optimize = require("lib.pf.optimize")

local M = {}

local REJECT = optimize.REJECT

local band, bnot, bswap, bxor = bit.band, bit.bnot, bit.bswap, bit.bxor
local rshift, tobit = bit.rshift, bit.tobit
local LE = ffi.abi("le")

local function swap16(v) if LE then return rshift(bswap(v), 16) end return v end
local function swap32(v) if LE then return tobit(bswap(v)) end return tobit(v) end

local function pow2cover(x) -- the least 2^n - 1 >= x
   local r = 1
   while r <= x do r = r * 2 end
   return r - 1
end

-- ex(a) -> code, max: max is the largest value of an exact expression, nil for a bit pattern.
local ex

local function exact(a)
   local c, max = ex(a)
   if max then return c, max end
   return "(" .. c .. " % 4294967296)", 4294967295
end

local function pattern(a)
   local c, max = ex(a)
   if max and max > 0x7fffffff then return "tobit(" .. c .. ")" end
   return c
end

-- While a numeric matcher is written (M.numeric_source), the end of the furthest byte a load
-- may touch: math.huge when an offset has no known bound.
local reach
-- While a matcher is written, its gates' tables (gate_table's arguments, in the order made), and
-- its offset tables (offset_table's), and its regions' tables of bounds (need_table's).
local gate_tables, offset_tables, need_tables

-- Notes a load of size bytes at offset k from a value of largest value max (nil: unknown).
local function touch(size, k, base, max)
   if reach then reach = math.max(reach, base and (max or math.huge) + k + size or k + size) end
end

-- The address of a load: the exact sum of its base and offset.
local function address(a)
   if not a[3] then touch(a[2], a[4]); return "P+" .. a[4] end
   local x, max = exact(a[3])
   touch(a[2], a[4], true, max)
   if a[4] == 0 then return "P+" .. x end
   -- (P+x)+k, not P+(x+k): the pointer P+x is one register for every load past a header of
   -- variable length, each load's k a displacement; x+k in integers was an add with an overflow
   -- guard and a sign extension before each load.
   return "P+" .. x .. "+" .. a[4]
end

local function raw(a) -- a 16- or 32-bit load in memory order
   if a[2] == 2 then return "cast(u16p, " .. address(a) .. ")[0]" end
   return "cast(i32p, " .. address(a) .. ")[0]"
end

function ex(a)
   local t = a[1]
   if t == "k" then return tostring(a[2]), a[2]
   elseif t == "a0" then return "0", 0 -- BPF's accumulator before any load (`byte 1 & 2`)
   elseif t == "len" then return "wirelen", 4294967295
   elseif t == "ld" then
      if a[2] == 1 then
         if not a[3] then touch(1, a[4]); return "P[" .. a[4] .. "]", 255 end
         return "(" .. address(a) .. ")[0]", 255
      elseif a[2] == 2 then
         if not LE then return raw(a), 65535 end
         return "rshift(bswap(" .. raw(a) .. "), 16)", 65535
      end
      if not LE then return raw(a), nil end
      return "bswap(" .. raw(a) .. ")", nil
   elseif t == "neg" then -- (0 - x, not -x: inv says why)
      return "tobit(0 - " .. exact(a[2]) .. ")", nil
   end
   local op, x, y = a[2], a[3], a[4]
   local cx, mx = ex(x)
   local cy, my = ex(y)
   if op == "+" then
      if mx and my and mx + my <= 0x7fffffff then return "(" .. cx .. "+" .. cy .. ")", mx + my end
      return "tobit(" .. cx .. "+" .. cy .. ")", nil
   elseif op == "-" then
      return "tobit(" .. cx .. "-" .. cy .. ")", nil
   elseif op == "*" then
      if mx and my and mx * my <= 0x7fffffff then
         -- By a power of two as a shift: LuaJIT narrows no multiplication to integers, and the
         -- IPv4 header's length (`4*(ip[0]&0xf)`) as a double cost a conversion, a multiply and
         -- a conversion back before each load past it.
         for _, f in ipairs({{x, cy}, {y, cx}}) do
            local k = f[1][1] == "k" and f[1][2] > 0 and math.log(f[1][2], 2)
            if k and k == math.floor(k) then return "lshift(" .. f[2] .. ", " .. k .. ")", mx * my end
         end
         return "(" .. cx .. "*" .. cy .. ")", mx * my
      end
      if my and my < 2 ^ 18 then return "tobit(" .. cx .. "*" .. cy .. ")", nil end
      if mx and mx < 2 ^ 18 then return "tobit(" .. cx .. "*" .. cy .. ")", nil end
      return "mul32(" .. cx .. ", " .. cy .. ")", nil
   elseif op == "/" then
      local ux, umx = exact(x)
      local uy = exact(y)
      return "floor(" .. ux .. "/" .. uy .. ")", umx
   elseif op == "%" then
      local ux = exact(x)
      local uy, umy = exact(y)
      return "(" .. ux .. "%" .. uy .. ")", umy - 1
   elseif op == "&" then
      local m
      if mx and mx <= 0x7fffffff then m = mx end
      if my and my <= 0x7fffffff then m = math.min(m or my, my) end
      return "band(" .. cx .. ", " .. cy .. ")", m
   elseif op == "|" or op == "^" then
      local f = op == "|" and "bor" or "bxor"
      local m
      if mx and my and mx <= 0x7fffffff and my <= 0x7fffffff then
         m = pow2cover(math.max(mx, my))
      end
      return f .. "(" .. cx .. ", " .. cy .. ")", m
   elseif op == "<<" or op == ">>" then
      local f = op == "<<" and "lshift" or "rshift"
      if y[1] == "k" then
         if y[2] > 31 then return "0", 0 end -- BPF: a shift by 32 or more gives 0
         if op == ">>" and y[2] > 0 then
            return "rshift(" .. cx .. ", " .. y[2] .. ")", math.floor((mx or 4294967295) / 2 ^ y[2])
         elseif y[2] == 0 then
            return cx, mx
         end
         if mx and mx * 2 ^ y[2] <= 0x7fffffff then
            return "lshift(" .. cx .. ", " .. y[2] .. ")", mx * 2 ^ y[2]
         end
         return f .. "(" .. cx .. ", " .. y[2] .. ")", nil
      end
      -- BPF shifts by 32 or more give 0; Lua's by the count mod 32.
      local uy = exact(y)
      return "(" .. uy .. " < 32 and " .. f .. "(" .. cx .. ", " .. uy .. ") or 0)", nil
   end
   error("lib.pf.codegen: unknown arithmetic " .. tostring(op))
end

-- A value as a field and a constant mask: x & k as (x, k), anything else as (a, nil).
local function masked(a)
   if a[1] == "op" and a[2] == "&" and a[4][1] == "k" then return a[3], a[4][2] end
   return a, nil
end

local negate = {["=="] = "~=", ["~="] = "==", [">"] = "<=", ["<="] = ">", [">="] = "<",
   ["<"] = ">="}

-- A condition as (left, operator, right): the Lua test is left .. op .. right.
local function condition(c)
   if c[1] == "pchain" then return "r", "==", "1" end
   if c[1] == "zero" then return "bor(" .. table.concat(c[2], ", ") .. ")", "==", "0" end
   if c[1] == "anyzero" then return "bor(" .. table.concat(c[2], ", ") .. ")", "<", "0" end
   if c[1] == "caplen" then
      if not c[2] then return "caplen", ">=", tostring(c[3]) end
      local x, mx = exact(c[2])
      -- tobit: a sum known under 2^31 is an add without LuaJIT's overflow guard (2 of the ~30
      -- instructions a packet of `ip and udp and dst port 53`'s loop).
      if mx + c[3] <= 0x7fffffff then return "caplen", ">=", "tobit(" .. x .. "+" .. c[3] .. ")" end
      return "caplen", ">=", x .. "+" .. c[3]
   end
   local op, a, b = c[1], c[2], c[3]
   if op == "&" then
      -- BPF's jset: a & b ~= 0; a 16/32-bit field against a constant in memory order.
      if b[1] == "k" and a[1] == "ld" and a[2] == 2 then
         return "band(" .. raw(a) .. ", " .. swap16(band(b[2], 0xffff)) .. ")", "~=", "0"
      elseif b[1] == "k" and a[1] == "ld" and a[2] == 4 then
         return "band(" .. raw(a) .. ", " .. swap32(b[2]) .. ")", "~=", "0"
      end
      return "band(" .. (ex(a)) .. ", " .. (ex(b)) .. ")", "~=", "0"
   end
   if b[1] == "k" then
      local k = b[2]
      -- A 16/32-bit field, masked or not, against a constant: compared in memory order.
      local field, mask = masked(a)
      if op == "==" and field[1] == "ld" and field[2] > 1 then
         if field[2] == 2 then
            if k > 0xffff or (mask and band(k, mask) ~= k) then return "false", "==", "true" end
            if mask then
               return "band(" .. raw(field) .. ", " .. swap16(band(mask, 0xffff)) .. ")", "==",
                  tostring(swap16(k))
            end
            return raw(field), "==", tostring(swap16(k))
         end
         if mask then
            local mk = band(k, mask)
            if tobit(mk) ~= tobit(k) then return "false", "==", "true" end
            return "band(" .. raw(field) .. ", " .. swap32(mask) .. ")", "==", tostring(swap32(k))
         end
         return raw(field), "==", tostring(swap32(k))
      end
      if op == "==" then
         local ca, ma = ex(a)
         if ma then return ca, "==", tostring(k) end
         return ca, "==", tostring(tobit(k))
      end
      return (exact(a)), op, tostring(k)
   end
   if op == "==" then
      local _, ma = ex(a)
      local _, mb = ex(b)
      if ma and mb then return (ex(a)), "==", (ex(b)) end
      return pattern(a), "==", pattern(b)
   end
   return (exact(a)), op, (exact(b))
end

local HEADER = [[
local ffi, bit = require("ffi"), require("bit")
local cast = ffi.cast
local band, bor, bxor, bswap = bit.band, bit.bor, bit.bxor, bit.bswap
local lshift, rshift, tobit = bit.lshift, bit.rshift, bit.tobit
local floor = math.floor
local u16p, i32p = ffi.typeof("uint16_t *"), ffi.typeof("int32_t *")
]]
-- Helpers, each emitted only where the matcher calls it.
-- gate_table({mask, value, ...}[, k]): a table of the 65,536 values of a 16-bit field, -1 where
-- the field under a mask equals its value for some pair (a gate: below), 0 elsewhere; given k (a
-- 16-bit value), k where the gate holds and 0x10000 (no 16-bit value) elsewhere.
local GATE_TABLE = [[
local function gate_table(t, k)
   local g = k and ffi.new("int32_t[65536]", 0x10000) or ffi.new("int8_t[65536]")
   for x = 0, 65535 do
      for i = 1, #t, 2 do
         if band(x, t[i]) == t[i + 1] then g[x] = k or -1 end
      end
   end
   return g
end
]]
-- offset_table(x, a, b): a table of a byte's 256 values, a at x and b elsewhere: the offset of
-- the byte a matcher reads next, chosen by this one (below).
local OFFSET_TABLE = [[
local function offset_table(x, a, b)
   local o = ffi.new("int32_t[256]", b)
   o[x] = a
   return o
end
]]
-- need_table({value, n, ...}, default[, size]): a table of the 65,536 values of the ethertype (in
-- memory order), or of the 256 of a byte, n at each value given and default elsewhere: the length
-- a region's long copy needs (below).
local NEED_TABLE = [=[
local function need_table(t, default, size)
   local o = ffi.new("int32_t[?]", size or 65536, default)
   for i = 1, #t, 2 do o[t[i]] = t[i + 1] end
   return o
end
]=]
local MUL32 = [[
local function mul32(a, b)
   return tobit(a * band(b, 0xffff) + lshift(tobit(a * rshift(b, 16)), 16))
end
]]
local PROTOCHAIN = [[
-- gencode.c's gen_protochain as libpcap's BPF runs it: 1 when the chain of headers reaches
-- protocol v, 0 when not, -1 when a load falls past caplen (the packet is rejected). IPv6
-- extension headers advance by (length + 1) * 8; AH sets the offset to (length + 2) * 4 from the
-- start of the IP header, not from the AH header (libpcap's code; a cycle it would loop on ends
-- after 256 headers here).
local function protochain(P, caplen, pl, ip6, v)
   local a, x
   if ip6 then
      if pl + 6 >= caplen then return -1 end
      a, x = P[pl + 6], 40
   else
      if pl + 9 >= caplen then return -1 end
      a, x = P[pl + 9], band(P[pl], 15) * 4
   end
   for _ = 1, 256 do
      if a == v or a == 59 then break end
      if ip6 and (a == 0 or a == 60 or a == 43 or a == 44) then
         if pl + x + 1 >= caplen then return -1 end
         a, x = P[pl + x], x + (P[pl + x + 1] + 1) * 8
      elseif a == 51 then
         if pl + x + 1 >= caplen then return -1 end
         a, x = P[pl + x], (P[pl + x + 1] + 2) * 4
      else
         break
      end
   end
   return a == v and 1 or 0
end
]]
local OPEN = "return function (P, caplen, wirelen)\n"

-- Branch-free chains. A packet mix mispredicts the branch of nearly every test, so a run of
-- equality tests that all go to one place when they fail (`ip and udp`: the ethertype, the
-- protocol, the fragment offset), over fields already known to be in the packet, becomes one
-- test: the bitwise or of each field's difference from its constant is 0. d(n) is that
-- difference (0 when n passes), or nil when n does not qualify.
local function difference(c, known, variable)
   local op, a, b = c[1], c[2], c[3]
   if (op ~= "==" and op ~= "&") or b[1] ~= "k" then return nil end
   local field, mask = masked(a)
   if field[1] ~= "ld" then return nil end
   if field[3] and not variable then return nil end
   if not field[3] and (field.bound or field[4] + field[2]) > known then return nil end
   local k, size = b[2], field[2]
   local x
   if size > 1 then x = raw(field)
   elseif field[3] then x = "(" .. address(field) .. ")[0]"
   else touch(1, field[4]); x = "P[" .. field[4] .. "]" end
   local function swap(v)
      if size == 1 then return v elseif size == 2 then return swap16(band(v, 0xffff)) end
      return swap32(v)
   end
   if op == "&" then
      if mask then return nil end
      return "band(" .. x .. ", " .. swap(k) .. ")"
   end
   local limit = size == 4 and 0xffffffff or 2 ^ (8 * size) - 1
   if k > limit or (mask and band(k, mask) ~= tobit(k)) then return "1" end
   if mask then x = "band(" .. x .. ", " .. swap(mask) .. ")" end
   if k == 0 then return x end
   return "bxor(" .. x .. ", " .. swap(k) .. ")"
end

-- Whether n's difference is under 2^16 (bytes, half words, words under a mask of 16 bits).
local function narrow(c)
   local field, mask = masked(c[2])
   if field[1] ~= "ld" or c[1] ~= "==" then return false end
   if field[2] < 4 then return true end
   local m = mask and swap32(mask)
   return m ~= nil and m >= 0 and m < 0x10000
end

-- Runs of equality tests of different fields that all go to one place when true (`src or dst
-- port 80`, `net 192.168.0.0/16` on source then destination) become one branch-free test
-- when their values are under 2^16: some difference is 0 exactly when bor(d - 1, ...) < 0. The
-- bounds tests between them become one before it; shorter packets take the tests one by one.
local function merge_or_chains(entry, keep)
   local nodes = optimize.order(entry)
   local known, preds = {[entry] = 0}, {}
   for _, n in ipairs(nodes) do
      for _, br in ipairs({"t", "f"}) do
         local sn = n[br]
         if sn.term == nil then
            local k = known[n]
            if br == "t" and n.cond[1] == "caplen" and not n.cond[2] then k = math.max(k, n.cond[3]) end
            known[sn] = known[sn] and math.min(known[sn], k) or k
            preds[sn] = (preds[sn] or 0) + 1
         end
      end
   end
   local done = {}
   for _, n in ipairs(nodes) do
      if not done[n] and not keep[n] and n.cond[1] == "==" and narrow(n.cond) then
         reach = 0 -- how far the merged loads read, for numeric matchers
         local T, need = n.t, 0
         local diffs, last = {}, n
         local function field(m)
            local ld = m.cond[2]
            if ld[1] == "op" then ld = ld[3] end
            return ld
         end
         -- Every load at the same base (none, or the IPv4 header length).
         local base = field(n)[3]
         local bkey = base and optimize.key(base) or ""
         local function add(m)
            local ld = field(m)
            need = math.max(need, ld.bound or ld[4] + ld[2])
            diffs[#diffs + 1] = difference(m.cond, math.huge, true)
         end
         if difference(n.cond, math.huge, true) then
            add(n)
            while true do
               local nx = last.f
               if nx.term ~= nil or preds[nx] ~= 1 then break end
               local g = nx.cond
               if g[1] == "caplen" and nx.f == REJECT
                  and (g[2] and optimize.key(g[2]) or "") == bkey then
                  nx = nx.t
                  if nx.term ~= nil or preds[nx] ~= 1 then break end
               end
               if nx.cond[1] ~= "==" or nx.t ~= T or not narrow(nx.cond)
                  or not difference(nx.cond, math.huge, true) then break end
               local fb = field(nx)[3]
               if (fb and optimize.key(fb) or "") ~= bkey then break end
               -- One field against several values (the VLAN types) stays a branch each: the
               -- first usually decides, and predictably (measured: 415 against 325 Mpps).
               if optimize.key(field(nx)) == optimize.key(field(n)) then break end
               add(nx)
               done[nx] = true
               last = nx
            end
         end
         local far = reach
         if #diffs > 1 then
            local F = last.f
            local fallback = {cond = n.cond, t = n.t, f = n.f}
            for i = 1, #diffs do diffs[i] = diffs[i] .. " - 1" end
            local test = {cond = {"anyzero", diffs, reach = far}, t = T, f = F}
            if not base and need <= known[n] then
               n.cond, n.t, n.f = test.cond, T, F
            else
               n.cond, n.t, n.f = {"caplen", base, need}, test, fallback
               n.split = true -- (a region would compute both ways)
            end
         end
      end
   end
   reach = nil
end

-- Tests that are the same test with the same two ways become one node (`net` gives ARP and
-- RARP the same tests of their addresses, each its own copy), so that a region computes them
-- once and a gate can join the tests that lead to them.
local function share(entry)
   local nodes = optimize.order(entry)
   local function ckey(c)
      local parts = {}
      for i = 1, 4 do
         local v = c[i]
         parts[i] = type(v) == "table" and optimize.key(v) or tostring(v)
      end
      return table.concat(parts, ",") .. (c.divisor and ",/" or "")
   end
   local id, canon, same = {}, {}, {}
   local function ident(n) if n.term ~= nil then return tostring(n.term) end return id[n] end
   for i = #nodes, 1, -1 do -- (successors first)
      local n = nodes[i]
      n.t, n.f = same[n.t] or n.t, same[n.f] or n.f
      local k = ckey(n.cond) .. "|" .. ident(n.t) .. "|" .. ident(n.f)
      if canon[k] then same[n] = canon[k] else canon[k], id[n] = n, i end
   end
end

-- A field under a mask that keeps one or two adjacent bytes is loaded as those bytes: `net
-- 192.168.0.0/16` compares the half word at 26, not the word at 26 under 0xffff0000 (a load and
-- a compare where there were a load, an and and a compare). Only the load narrows: the bounds
-- test of the word, before it, stays (a packet cut inside the word is rejected as libpcap does).
local function narrow_masks(entry)
   for _, n in ipairs(optimize.order(entry)) do
      local c = n.cond
      local op, a, b = c[1], c[2], c[3]
      local field, m = a, nil
      if op == "==" then
         field, m = masked(a)
      elseif op == "&" then
         m = b[1] == "k" and b[2]
      end
      if m and b[1] == "k" and field[1] == "ld" and field[2] > 1 and m > 0
         and m < 2 ^ (8 * field[2]) and (op == "&" or band(b[2], m) == tobit(b[2])) then
         local size = field[2]
         local first, last -- the mask's bytes that keep a bit, in memory order
         for i = 0, size - 1 do
            if math.floor(m / 2 ^ (8 * (size - 1 - i))) % 256 ~= 0 then
               first, last = first or i, i
            end
         end
         local width = last - first + 1
         if width < size and width <= 2 then
            local shift, span = 2 ^ (8 * (size - 1 - last)), 2 ^ (8 * width)
            local m2 = math.floor(m / shift) % span
            -- (bound: the end of the word, for the bounds that merges compute from loads)
            local ld = {"ld", width, field[3], field[4] + first, field[5],
                        bound = field.bound or field[4] + size}
            if op == "&" then
               n.cond = {"&", ld, {"k", m2}}
            else
               local k2 = math.floor(b[2] / shift) % span
               n.cond = {"==", m2 == span - 1 and ld or {"op", "&", ld, {"k", m2}}, {"k", k2}}
            end
         end
      end
   end
end

-- Runs of equality tests of one field that all go to one place when true (`vlan`'s three
-- tag types) take two constants that differ in one bit as one test under a mask that clears
-- it: 0x8100 or 0x9100 is `& 0xefff == 0x8100`. The tests of a run exclude each other, so
-- their order is free.
local function merge_one_bit(entry)
   local nodes = optimize.order(entry)
   local preds = {}
   for _, n in ipairs(nodes) do
      for _, s in ipairs({n.t, n.f}) do preds[s] = (preds[s] or 0) + 1 end
   end
   local function split(c) -- field, mask, constant of an equality with a constant
      if c[1] ~= "==" or c[3][1] ~= "k" then return nil end
      local a, m = masked(c[2])
      if a[1] ~= "ld" then return nil end
      local width = a[2] == 4 and 0xffffffff or 2 ^ (8 * a[2]) - 1
      m = m or width
      local k = c[3][2]
      if k > width or band(k, m) ~= tobit(k) then return nil end
      return a, m % 2 ^ 32, k, width
   end
   local done = {}
   for _, n in ipairs(nodes) do
      local field, m0, _, width = split(n.cond)
      if field and not done[n] then
         local run, fkey = {n}, optimize.key(field)
         local nx = n.f
         while nx.term == nil and preds[nx] == 1 and nx.t == n.t do
            local f2, m2 = split(nx.cond)
            if not f2 or m2 ~= m0 or optimize.key(f2) ~= fkey then break end
            run[#run + 1] = nx
            nx = nx.f
         end
         local tests = {}
         for i, r in ipairs(run) do
            done[r] = true
            local _, m, k = split(r.cond)
            tests[i] = {m = m, k = k}
         end
         local merged = true
         while merged do
            merged = false
            for i = 1, #tests do
               for j = i + 1, #tests do
                  local a, b = tests[i], tests[j]
                  local d = bxor(a.k, b.k) % 2 ^ 32
                  if a.m == b.m and d ~= 0 and band(d, d - 1) == 0 then
                     a.m, a.k = band(a.m, bnot(d)) % 2 ^ 32, band(a.k, bnot(d)) % 2 ^ 32
                     table.remove(tests, j)
                     merged = true
                     break
                  end
               end
               if merged then break end
            end
         end
         if #tests < #run then
            for i, t in ipairs(tests) do
               local a = t.m == width and field or {"op", "&", field, {"k", t.m}}
               run[i].cond = {"==", a, {"k", t.k}}
            end
            run[#tests].f = run[#run].f
         end
      end
   end
end

local function merge_chains(entry)
   local nodes = optimize.order(entry)
   -- The packet bytes known present at each test: the least over the ways in.
   local known, preds = {[entry] = 0}, {}
   for _, n in ipairs(nodes) do
      local c = n.cond
      for _, br in ipairs({"t", "f"}) do
         local s = n[br]
         if s.term == nil then
            local k = known[n]
            if br == "t" and c[1] == "caplen" and not c[2] then k = math.max(k, c[3]) end
            known[s] = known[s] and math.min(known[s], k) or k
            preds[s] = (preds[s] or 0) + 1
         end
      end
   end
   local function pass(n) if n.cond[1] == "&" then return n.f, n.t end return n.t, n.f end
   -- Whether a test's difference may reach 2^31 (a 32-bit field): numeric matchers need to know.
   local function wide(c)
      local a = c[2]
      if a[1] == "op" then
         -- (a word under a mask whose byte-swapped form is under 2^31 is not)
         if a[2] == "&" and a[4][1] == "k" and swap32(a[4][2]) >= 0 then return false end
         a = a[3]
      end
      return a[2] == 4
   end
   for _, n in ipairs(nodes) do
      reach = 0 -- how far the merged loads read, for numeric matchers
      local d = not n.merged and n.cond[1] ~= "caplen" and difference(n.cond, known[n])
      if d then
         local diffs, conds, last, anywide = {d}, {n.cond}, n, wide(n.cond)
         while true do
            local p, f = pass(last)
            local _, nf = pass(n)
            if p.term ~= nil or preds[p] ~= 1 or p.cond[1] == "caplen" then break end
            local pf = select(2, pass(p))
            local dp = difference(p.cond, known[p])
            if not dp or pf ~= nf or f ~= nf then break end
            diffs[#diffs + 1], conds[#conds + 1] = dp, p.cond
            anywide = anywide or wide(p.cond)
            p.merged = true
            last = p
         end
         if #diffs > 1 then
            local yes, no = pass(last)
            local _, fail = pass(n)
            n.cond = {"zero", diffs, anywide, reach = reach, conds = conds}
            n.t, n.f = yes, fail
            assert(no == fail)
         end
      end
   end
   reach = nil
end

local regions, region, field_need -- (below)

-- The Lua source of the matcher of graph entry (lib.pf.optimize); numeric: the numeric matcher
-- (below), whose tests are computed without branches in every part of the graph of at most
-- M.REGION tests whose loads are bounded, and whose other parts branch as the boolean one does.
local function write(entry, numeric) -- numeric: false, or the most tests in a region
   local out = {}
   local function emit(s) out[#out + 1] = "   " .. s .. "\n" end
   local function term(t)
      if numeric then return t and "1" or "0" end
      return tostring(t)
   end
   if entry.term ~= nil then
      emit("return " .. term(entry.term))
      return HEADER .. OPEN .. table.concat(out) .. "end\n"
   end
   narrow_masks(entry)
   gate_tables, offset_tables, need_tables = {}, {}, {}
   if M.merge ~= false then -- codegen.merge = false: a branch per test (to measure the merges)
      share(entry)
      merge_one_bit(entry)
      merge_chains(entry)
      -- The or-chains merge only where branches stay: a region computes each test once.
      merge_or_chains(entry, numeric and regions(optimize.order(entry), math.min(numeric, 64)) or {})
   end
   local nodes = optimize.order(entry)
   local index, labelled = {}, {}
   for i, n in ipairs(nodes) do index[n] = i end
   -- (A region's values are locals, under Lua's 200 a function: at most 64 tests.)
   local converted = numeric and regions(nodes, math.min(numeric, 64)) or {}
   local function go(n) -- the statement that takes the way to n
      if n.term ~= nil then return "return " .. term(n.term) end
      labelled[n] = true
      return "goto L" .. index[n]
   end
   -- The nodes written: the entry and those a branch leads to (a region's inner nodes are
   -- written inside it, and again as their own region where a branch leads to them).
   local written = {[entry] = true}
   for _, n in ipairs(nodes) do
      if written[n] and not converted[n] then written[n.t], written[n.f] = true, true end
   end
   local body, chained = {}, false
   for i, n in ipairs(nodes) do
      local s = {}
      if written[n] and converted[n] then
         s[1] = "do " .. region(n, nodes, index) .. " end"
      elseif written[n] then -- (a node not written is inside a region only)
         local pre
         if n.cond[1] == "pchain" then
            local c = n.cond
            pre = ("r = protochain(P, caplen, %d, %s, %d)"):format(c[4], tostring(c[2]), c[3])
            chained = true
         end
         local l, op, r = condition(n.cond)
         local yes = l .. " " .. op .. " " .. r
         local no = l .. " " .. negate[op] .. " " .. r
         local nxt = nodes[i + 1]
         while nxt and not written[nxt] do nxt = nodes[index[nxt] + 1] end
         if n.t == n.f then -- protochain's walk, kept for its bounds tests
            s[1] = go(n.t)
         elseif n.t.term ~= nil and n.f.term ~= nil and numeric then
            s[1] = "if " .. (n.t.term and yes or no) .. " then return 1 end"
            s[2] = "return 0"
         elseif n.t.term ~= nil and n.f.term ~= nil then
            if n.t.term then s[1] = "return " .. yes else s[1] = "return " .. no end
         elseif n.f == nxt then
            s[1] = "if " .. yes .. " then " .. go(n.t) .. " end"
         elseif n.t == nxt or n.f.term ~= nil then
            s[1] = "if " .. no .. " then " .. go(n.f) .. " end"
            if n.t ~= nxt then s[2] = go(n.t) end
         else
            s[1] = "if " .. yes .. " then " .. go(n.t) .. " end"
            s[2] = go(n.f)
         end
         if pre then
            table.insert(s, 1, pre)
            table.insert(s, 2, "if r < 0 then return " .. term(false) .. " end")
         end
      end
      body[i] = s
   end
   if chained then out[#out + 1] = "   local r\n" end
   local last = #nodes
   while last > 1 and #body[last] == 0 do last = last - 1 end
   for i, n in ipairs(nodes) do
      if labelled[n] then out[#out + 1] = "   ::L" .. i .. "::\n" end
      for j, s in ipairs(body[i]) do
         -- A return that more code follows must end a block of its own.
         if s:match("^return") and (i < last or j < #body[i]) then s = "do " .. s .. " end" end
         emit(s)
      end
   end
   out[#out + 1] = "end\n"
   local code = table.concat(out)
   local head = {HEADER}
   if numeric then head[#head + 1] = "local bnot = bit.bnot\n" end
   if code:find("mul32(", 1, true) then head[#head + 1] = MUL32 end
   -- The tables the code reads (a gate's table that another took in, below, is not), named in
   -- the order read: G (gate_table's), O (offset_table's) and N (need_table's).
   for _, kind in ipairs({{"G", gate_tables, GATE_TABLE, "gate_table"},
                          {"O", offset_tables, OFFSET_TABLE, "offset_table"},
                          {"N", need_tables, NEED_TABLE, "need_table"}}) do
      local name, made, source, maker = unpack(kind)
      local tables = {}
      code = code:gsub("%f[%w_]" .. name .. "(%d+)%[", function (id)
         local t = made[tonumber(id)]
         if not tables[t] then tables[#tables + 1], tables[t] = t, #tables + 1 end
         return name .. tables[t] .. "["
      end)
      if #tables > 0 then head[#head + 1] = source end
      for i, t in ipairs(tables) do
         head[#head + 1] = ("local %s%d = %s(%s)\n"):format(name, i, maker, t)
      end
   end
   if chained then head[#head + 1] = PROTOCHAIN end
   -- A matcher that reads no wire length takes none: a caller's third argument is then dropped
   -- at the call, and the trace loads it for no snapshot (1 of the 30 instructions a packet of
   -- `ip and udp and dst port 53`'s numeric loop).
   head[#head + 1] = code:find("wirelen", 1, true) and OPEN or OPEN:gsub(", wirelen", "")
   -- caplen (below 2^31) as an integer: a caller's uint32_t (libpcap's pcap_pkthdr) is otherwise
   -- a double to LuaJIT, and each bounds test a conversion and a floating compare (1-3% on the
   -- mix of tools/bench-filter; a packet's uint16_t length is an integer already).
   if code:find("caplen", 1, true) then head[#head + 1] = "   caplen = tobit(caplen)\n" end
   -- len, less and greater read the wire length, caplen unless given.
   if code:find("wirelen", 1, true) then head[#head + 1] = "   wirelen = wirelen or caplen\n" end
   return table.concat(head) .. code
end

function M.source(entry) return write(entry, false) end

-- ---------------------------------------------------------------------------------------------
-- Numeric matchers: the verdict as 1 or 0, computed without branches.
--
-- A mix of packets mispredicts the branches of a boolean matcher and of the caller's `if` on its
-- verdict (~9 cycles each on AMD EPYC, ~15 on Intel Xeon: a guard's exit and the side trace's
-- return to the loop's head). The numeric matcher returns 1 or 0, and in each region of the graph
-- next to its ends (tests of weight M.REGION at most, every load within M.REACH of P) evaluates
-- every test as a sign (negative when it holds: sign(c) below) and each node from the ends up as
-- the and, or or select of its ways' signs; a run of tests that fail to one place and hold to
-- another x (a gate) is the or of their signs anded once with x. The loads past caplen read
-- bytes that a bounds test's sign then ignores, so the caller must give P at least M.REACH
-- readable bytes (a packet's buffer); caplen is below 2^31 (a packet's length). How large a
-- region pays, measured (tools/bench-filter, 2026-12-01, Intel Xeon): the whole of `tcp port 80`
-- (12 tests) without a branch is 2.2x its region of one, `vlan and ip6` the same either way; a
-- wide equality (a word: 5 operations where a predicted branch costs one) weighs 3, so the 40
-- tests of 20 hosts keep their branches (8.6x libpcap against 4.7x when computed).

M.REACH = 1024 -- bytes a numeric matcher may read from P, whatever caplen is
M.REGION = 16 -- the weight of tests at most in a region without branches (below)

-- sign(c): a Lua expression whose sign bit says whether condition c holds (negative when it
-- does). Only the sign bit is a verdict: band, bor, bxor and bnot of such values are the and, or,
-- select and not of their verdicts, so a test costs no shift of its own; the region's verdict is
-- shifted down once, at its end.
local function eqz_narrow(x) return x .. " - 1" end -- x in [0, 2^31)
local function eqz_wide(x) -- x any int32 pattern, a local name (read twice)
   return "bor(rshift(" .. x .. ", 1), band(" .. x .. ", 1)) - 1"
end
local function lt_sign(a, b, small) -- a < b of exact values; small: both under 2^31
   if small then return a .. " - (" .. b .. ")" end
   return "floor((" .. a .. " - (" .. b .. ")) * 2.3283064365386963e-10)" -- -1 or 0
end

local fold -- (below)

local function sign(c, pre, tag)
   local function named(x) -- x as a local, evaluated once
      local name = ("x%d_%d"):format(tag, #pre + 1)
      pre[#pre + 1] = "local " .. name .. " = " .. x
      return name
   end
   local function eqz(x, small)
      if small then return eqz_narrow(x) end
      return eqz_wide(named(x))
   end
   local op, a, b = c[1], c[2], c[3]
   if op == "pchain" then return nil end
   if op == "zero" or op == "anyzero" then touch(0, c.reach) end
   if op == "zero" then
      local d = fold(c)
      return eqz(#d == 1 and d[1] or "bor(" .. table.concat(d, ", ") .. ")", not b)
   end
   if op == "anyzero" then return "bor(" .. table.concat(a, ", ") .. ")" end
   if op == "caplen" then -- caplen >= x + b: not caplen < x + b
      if not a then return (b - 1) .. " - caplen" end
      local x, mx = exact(a)
      if mx + b > 0x7fffffff then return nil end -- (an offset of 2^31 or more: left to a branch)
      return x .. " + " .. (b - 1) .. " - caplen"
   end
   local l, cop, r = condition(c)
   if l == "false" then return "0" end
   local _, ma = ex(a)
   local _, mb = ex(b)
   local small = ma and mb and ma <= 0x7fffffff and mb <= 0x7fffffff
   -- A field in memory order (condition's form) under 2^31: 16 bits, or 32 under such a mask.
   local function field_narrow(x)
      local m
      x, m = masked(x)
      return b[1] == "k" and x[1] == "ld"
         and ((x[2] <= 2 and b[2] <= 0x7fffffff) or (x[2] == 4 and m ~= nil and swap32(m) >= 0))
   end
   if op == "&" then -- l is band(...), under 2^31 when either side is
      if (ma and ma <= 0x7fffffff) or (mb and mb <= 0x7fffffff)
         or (b[1] == "k" and a[1] == "ld" and (a[2] <= 2 or swap32(b[2]) >= 0)) then
         return "0 - " .. l
      end
      return "bnot(" .. eqz(l) .. ")"
   end
   if op == "==" then
      assert(cop == "==")
      return eqz(r == "0" and l or "bxor(" .. l .. ", " .. r .. ")", small or field_narrow(a))
   end
   -- > and >= of exact values: b < a, and b < a + 1.
   local ca, cb = exact(a), exact(b)
   if op == ">" then return lt_sign(cb, ca, small) end
   return lt_sign(cb, ca .. " + 1", small and ma < 0x7fffffff)
end

-- Which nodes head a region computed without branches: those whose own loads lie within
-- M.REACH and whose tests below, themselves such, weigh at most M.REGION in all.
function regions(nodes, most)
   local converted, below, weight = {}, {}, {}
   for i = #nodes, 1, -1 do
      local n = nodes[i]
      reach = 0
      local pre = {}
      local k = sign(n.cond, pre, 0)
      local far = reach
      reach = nil
      -- A test's weight: 1, or 3 for one that takes a local (a wide equality: 5 operations
      -- where a branch predicted right costs one).
      weight[n] = #pre > 0 and 3 or 1
      local set = {[n] = true}
      for _, s in ipairs({n.t, n.f}) do
         if s.term == nil then for m in pairs(below[s]) do set[m] = true end end
      end
      local count = 0
      for m in pairs(set) do count = count + weight[m] end
      below[n] = set
      converted[n] = k ~= nil and far <= M.REACH and count <= most and not n.split
         and (n.t.term ~= nil or converted[n.t]) and (n.f.term ~= nil or converted[n.f])
   end
   return converted
end

-- The sign of not c, from its sign k: bnot(x - 1) is -x (a narrow x; the only signs that end in
-- ` - 1` are such). Negations are written `0 - x`: LuaJIT records `-x` of an integer x as a
-- guard that x is not 0 (-0 is no integer) and an integer negation, or, when it records x = 0,
-- as floating point; so a trace recorded on a packet whose x was not 0 left the loop at that guard
-- for every packet whose x is 0 (numeric `tcp-syn` in tools/bench-filter, 68-123 Mpps against
-- 310-480 in about one run of eight: the flags byte of the packet recorded had the SYN bit).
-- `0 - x` is an integer negation without a guard.
local function inv(k)
   local x = k:match("^(.*) %- 1$")
   if x then return "0 - (" .. x .. ")" end
   return "bnot(" .. k .. ")"
end

-- The field and value of an equality with a constant (field: its key, the mask included).
local function equality(c)
   if c[1] == "zero" then c = c.conds[1] end -- (its first test holds where it holds)
   if c[1] ~= "==" or c[3][1] ~= "k" then return nil end
   return optimize.key(c[2]), c[3][2]
end

-- A test c of a 16-bit field at a constant offset (under a mask) for equality with a constant:
-- the load, and {mask, value} in memory order (as condition writes them); nil for another test.
local function tabled(c)
   if c[1] ~= "==" or c[3][1] ~= "k" then return nil end
   local field, mask = masked(c[2])
   local k = c[3][2]
   mask = band(mask or 0xffff, 0xffff)
   if field[1] ~= "ld" or field[2] ~= 2 or field[3] or k > 0xffff or band(k, mask) ~= k then
      return nil
   end
   return raw(field), {swap16(mask), swap16(k)}
end

-- A test c of an 8- or 16-bit field (unmasked) for equality with a constant: the load, and the
-- constant as the load reads it (in memory order); nil for another test.
local function loaded(c)
   if c[1] ~= "==" or c[3][1] ~= "k" or c[2][1] ~= "ld" or c[3][2] > 0xffff then return nil end
   local field, k = c[2], c[3][2]
   if field[2] == 1 then return k <= 0xff and ex(field), k end
   if field[2] == 2 then return raw(field), swap16(k) end
end

-- key's place in the list of a matcher's tables (gate_tables, offset_tables), added if new.
local function table_id(tables, key)
   for i, t in ipairs(tables) do if t == key then return i end end
   tables[#tables + 1] = key
   return #tables
end

-- The sign of a gate of tests of one 16-bit field (tabled's), two or more: a load of its table.
-- Given k, the load of the table that holds k where the gate holds (gate_table's).
local function gate_sign(load, pairs, k)
   local key = "{" .. table.concat(pairs, ", ") .. "}" .. (k and ", " .. k or "")
   return ("G%d[%s]"):format(table_id(gate_tables, key), load)
end

-- A byte at a constant offset: the offset; nil for another field.
local function byte_at(a)
   if a[1] == "ld" and a[2] == 1 and not a[3] then return a[4] end
end

-- An or of a test of a byte for equality with k (ca) and a merged run (cb) of two: the same
-- byte's equality with x, then another byte's with k. Both are one equality with k of the byte
-- at the offset a table of the first byte gives: the second's at x, the first's elsewhere
-- (IPv6's next header 6, or 44 and the fragment header's 6: `P[O1[P[20]]]`, 6 at 20 or 54).
-- The byte read and k; nil for another or.
local function picked(ca, cb)
   if cb[1] ~= "zero" or #cb.conds ~= 2 or ca[1] ~= "==" or ca[3][1] ~= "k" then return nil end
   local c1, c2 = cb.conds[1], cb.conds[2]
   if c1[1] ~= "==" or c2[1] ~= "==" or c1[3][1] ~= "k" or c2[3][1] ~= "k" then return nil end
   local off1, off2, k, x = byte_at(ca[2]), byte_at(c2[2]), ca[3][2], c1[3][2]
   if not off1 or not off2 or byte_at(c1[2]) ~= off1 or c2[3][2] ~= k or x == k or k > 0xff
      or x > 0xff then
      return nil
   end
   local id = table_id(offset_tables, ("%d, %d, %d"):format(x, off2, off1))
   return ("P[O%d[P[%d]]]"):format(id, off1), k
end

-- The differences of a merged run (zero) for a numeric matcher: a gate of a 16-bit field
-- (tabled's) and an equality of another 8- or 16-bit field (loaded's) among them are one bxor
-- with the table that holds the equality's k where the gate holds (`ip and udp and dst port
-- 53`'s and `tcp port 80`'s IPv4 ethertype and protocol: two operations fewer).
function fold(c)
   local gi, gload, gpair
   for i, d in ipairs(c.conds) do
      gload, gpair = tabled(d)
      if gload then gi = i break end
   end
   if not gi then return c[2] end
   for j, d in ipairs(c.conds) do
      local load, k = loaded(d)
      if j ~= gi and load then
         local out = {}
         for i, x in ipairs(c[2]) do
            if i == gi then
               out[#out + 1] = "bxor(" .. load .. ", " .. gate_sign(gload, gpair, k) .. ")"
            elseif i ~= j then
               out[#out + 1] = x
            end
         end
         return out
      end
   end
   return c[2]
end

-- The statements of the region of n (its nodes: set), bounds tests assumed to hold when long.
local function region_body(n, nodes, index, set, long)
   -- lead[m]: where m's value is its own test's sign anded with rest's value (no rest: the sign
   -- alone) and that test is an equality loaded reads, {load =, k =, rest =}, or a merged run of
   -- narrow equalities that begins with one (more: the others' differences): a table may take
   -- the test in (below). ors[m]: where m's value is the or of its own test's sign (such an
   -- equality) and of its false way's (lead[] with no rest), {a =, b =}.
   local out, value, gate, lead, ors = {}, {}, {}, {}, {}
   local function leading(m, rest)
      local c, more = m.cond, nil
      if c[1] == "zero" then
         if c[3] then return nil end -- (wide: its sign is not a `- 1`)
         c, more = c.conds[1], table.concat(c[2], ", ", 2)
      end
      local load, k = loaded(c)
      return load and {load = load, k = k, more = more, rest = rest} or nil
   end
   local function way(m) -- m, past the bounds tests assumed
      while long and m.term == nil and m.cond[1] == "caplen" do m = m.t end
      return m
   end
   local function v(m)
      m = way(m)
      if m.term ~= nil then return m.term and "-1" or "0" end
      return value[m]
   end
   -- The sign of lead l's test (and rest) with a gate of the 16-bit field `load` (pairs, as
   -- tabled gives them) taken in: one bxor with the table that holds l.k where the gate holds.
   local function take(l, load, pairs)
      local e = "bxor(" .. l.load .. ", " .. gate_sign(load, pairs, l.k) .. ")"
      if l.more then e = "bor(" .. e .. ", " .. l.more .. ")" end
      e = e .. " - 1"
      if l.rest then e = "band(" .. e .. ", " .. v(l.rest) .. ")" end
      return e
   end
   for i = #nodes, index[n], -1 do
      local m = nodes[i]
      if set[m] and way(m) == m then
         local pre = {}
         local k = sign(m.cond, pre, i)
         for _, p in ipairs(pre) do out[#out + 1] = p end
         local mt, mf = way(m.t), way(m.f)
         local t, f = v(mt), v(mf)
         -- A gate: m holds when g does and x (a node or an end) holds. A run of tests that
         -- all fail to the same place and hold to the same x (`vlan`'s three types, then
         -- `ip6`) is the or of their signs, anded once with x: no select a test.
         -- A gate of two or more equalities of one 16-bit field is a load of a table of the
         -- field's values (`vlan`'s 0x8100, 0x9100, 0x88a8: 7 operations to 1; `vlan and ip6`'s
         -- numeric loop 22 -> 16 instructions a packet, the mix of tools/bench-filter
         -- 423-431 -> 508-514 Mpps, its first 500 packets 949 -> 1339).
         local g, x, eq, tab, orf
         local efield, evalue = equality(m.cond)
         local tload, tpair = tabled(m.cond)
         if f == "0" then
            g, x = k, mt
            if efield then eq = {field = efield, values = {[evalue] = true}} end
            if tload then tab = {load = tload, pairs = tpair} end
         elseif t == "0" then g, x = inv(k), mf
         elseif gate[mf] and gate[mf].x == mt then
            g, x, orf = "bor(" .. k .. ", " .. gate[mf].g .. ")", mt, mf
            local feq = gate[mf].eq
            if efield and feq and feq.field == efield then
               eq = {field = efield, values = setmetatable({[evalue] = true}, {__index = feq.values})}
            end
            local ftab = gate[mf].tab
            if tload and ftab and ftab.load == tload then
               tab = {load = tload, pairs = {tpair[1], tpair[2], unpack(ftab.pairs)}}
               g = gate_sign(tload, tab.pairs)
            end
         elseif gate[mt] and gate[mt].x == mf then
            g, x = "bor(" .. inv(k) .. ", " .. gate[mt].g .. ")", mf
         end
         -- A gate of a table that holds to an equality of another 8- or 16-bit field with k:
         -- the table holds k where the gate holds, and the two are one bxor (`vlan and ip6`: 16
         -- -> 14 instructions a packet, the mix of tools/bench-filter 536-549 -> 575-599 Mpps).
         -- (A gate of one test is not tabled here: a run of them is merged, as `zero`.)
         local xl = g and x.term == nil and tab and #tab.pairs > 2 and lead[x]
         local e
         if g and x.term ~= nil then
            gate[m] = {g = x.term and "v" .. i or "0", x = x, eq = eq, tab = tab}
            e = x.term and g or "0"
            if x.term and g == k then lead[m] = leading(m) end
            local a, b = orf and not tab and leading(m), orf and lead[orf]
            if x.term and a and b and not b.rest then
               ors[m] = {a = a, b = b, ca = m.cond, cb = orf.cond}
            end
         elseif xl and not xl.rest then
            gate[m] = {g = g, x = x, eq = eq, tab = tab}
            e = take(xl, tab.load, tab.pairs)
         elseif g then
            if g == k and x == mt then lead[m] = leading(m, x) end -- a gate of one test
            if g:find("(", 1, true) then
               out[#out + 1] = "local g" .. i .. " = " .. g
               g = "g" .. i
            end
            gate[m] = {g = g, x = x, eq = eq, tab = tab}
            e = "band(" .. g .. ", " .. v(x) .. ")"
            -- A gate of a 16-bit field's values over an or of two equalities that tables may
            -- take in: the gate distributed, each a bxor with a table (`net`'s ARP and RARP
            -- over the two addresses); where the or is picked's, one bxor of the byte an
            -- offset table picks (IPv6's ethertype over the next header 6, or 44 and the
            -- fragment header's 6: `tcp`'s loop 31 -> 22 instructions a packet).
            local o = x == mt and tab and ors[x]
            local pl, pk
            if o then pl, pk = picked(o.ca, o.cb) end
            if pl then
               e = "bxor(" .. pl .. ", " .. gate_sign(tab.load, tab.pairs, pk) .. ") - 1"
            elseif o then
               e = ("bor(%s, %s)"):format(take(o.a, tab.load, tab.pairs),
                                          take(o.b, tab.load, tab.pairs))
            end
         elseif t == "-1" then e = "bor(" .. k .. ", " .. f .. ")"
         elseif f == "-1" then e = "bor(" .. inv(k) .. ", " .. t .. ")"
         elseif t == f then e = t
         elseif efield and gate[mf] and gate[mf].eq and gate[mf].eq.field == efield
            and not gate[mf].eq.values[evalue] then
            -- The false way is a gate of other values of m's field (IPv6 after IPv4's
            -- ethertype): it fails where m holds, so the select is an or.
            -- m and the equality its true way begins with, as above: one bxor with a table
            -- (`tcp port 80`'s IPv6 ethertype and next header).
            local tl = tload and lead[mt]
            local kt = tl and take(tl, tload, tpair)
            e = "bor(" .. (kt or "band(" .. k .. ", " .. t .. ")") .. ", " .. f .. ")"
         else e = "bxor(" .. f .. ", band(" .. k .. ", bxor(" .. t .. ", " .. f .. ")))" end
         out[#out + 1] = "local v" .. i .. " = " .. e
         value[m] = "v" .. i
      end
   end
   -- The root's sign bit as 1 or 0; a narrow x ~= 0 is the sign of -x (bnot(x - 1)).
   local root = way(n)
   local last = root.term == nil and out[#out]:match("^local v" .. index[root] .. " = (.*)$")
   local no = last and last:match("^bnot%((.*) %- 1%)$")
   if root.term ~= nil then out[#out + 1] = "return " .. (root.term and "1" or "0")
   elseif no then out[#out] = "return rshift(0 - (" .. no .. "), 31)"
   elseif last then out[#out] = "return rshift(" .. last .. ", 31)"
   else out[#out + 1] = "return rshift(" .. v(root) .. ", 31)" end
   -- A value no later statement reads (a gate that a table's bxor took in) is not written.
   local live = {}
   for j = #out, 1, -1 do
      local name, e = out[j]:match("^local ([%w_]+) = (.*)$")
      if name and not live[name] then
         table.remove(out, j)
      else
         for id in (e or out[j]):gmatch("[%a_][%w_]*") do live[id] = true end
      end
   end
   return table.concat(out, "; ")
end

-- The shortest frames a capture holds uncut: ARP's, and IPv4 UDP's and ICMP's, unpadded (as
-- their sender captures them); an IPv4 header is 20 bytes at least. A region whose bounds need
-- no more takes every frame not cut short to its long copy, and a table of lengths (below)
-- costs its load for nothing: `net 192.168.0.0/16` (IPv4 34, ARP 42) 237-239 -> 205-219 Mpps
-- on a mix of tests/data/pcap's captures, with no packet cut.
local SHORTEST, IP_HEADER = 42, 20

-- The fields a region's need may be tabled by: the ethertype (its load, in memory order), and
-- IPv4's protocol (the byte at 23).
local ETHERTYPE, PROTOCOL = "cast(u16p, P+12)[0]", "P[23]"

-- What a test c (not a merged run) requires of those fields: the ethertype's {mask, value},
-- or the protocol's value; nil for another test.
local function field_test(c)
   local load, pair = tabled(c)
   if load == ETHERTYPE then return pair, nil end
   if c[1] == "==" and c[3][1] == "k" and byte_at(c[2]) == 23 then return nil, c[3][2] end
end

-- Whether test c holds for a packet of ethertype e (in memory order) and protocol p, as far as
-- they decide it: true, false, or nil (undecided; e or p nil: not known). A merged run fails
-- where one of its tests does.
local function decide(c, e, p)
   if c[1] == "zero" then
      for _, d in ipairs(c.conds) do
         if decide(d, e, p) == false then return false end
      end
      return nil
   end
   local pair, k = field_test(c)
   if e and pair then return band(e, pair[1]) == pair[2] end
   if p and k then return p == k end
   return nil
end

-- The ethertype's {mask, value} pairs and the protocol's values that the tests of set decide.
local function decided(set)
   local ethertypes, protocols, seen = {}, {}, {}
   local function note(c)
      if c[1] == "zero" then
         for _, d in ipairs(c.conds) do note(d) end
         return
      end
      local pair, k = field_test(c)
      if pair and not seen[pair[1] .. "/" .. pair[2]] then
         seen[pair[1] .. "/" .. pair[2]] = true
         ethertypes[#ethertypes + 1] = pair
      elseif k and not seen[k] then
         seen[k] = true
         protocols[#protocols + 1] = k
      end
   end
   for m in pairs(set) do note(m.cond) end
   return ethertypes, protocols
end

-- The length the long copy of n's region (its nodes: set) needs for its bounds tests of base
-- key ("": the constant ones) by a field, as need_table's arguments; nil where one length
-- serves every value. The constant bounds by the ethertype: for each, the longest bounds test
-- that a way through the region can reach with the ethertype's tests decided; a packet so long
-- passes every bounds test on its way (an IPv4 TCP ACK of 54 bytes takes `tcp port 80`'s long
-- copy, though IPv6's ports end at 58). The others (past IPv4's header) by its protocol, for
-- each the longest over the ethertypes (`tcp[tcpflags]`'s 28 bytes past the header for TCP
-- only: a UDP packet of 46 bytes takes the long copy). Another packet takes the short copy,
-- exact whatever the bytes past caplen hold.
function field_need(n, set, key)
   local ethertypes, protocols = decided(set)
   local function need(e, p)
      local most, visited = -1, {}
      local function walk(m)
         if m.term ~= nil or visited[m] or not set[m] then return end
         visited[m] = true
         local c = m.cond
         if c[1] == "caplen" and (c[2] and optimize.key(c[2]) or "") == key then
            most = math.max(most, c[3])
         end
         local holds = decide(c, e, p)
         if holds ~= true then walk(m.f) end
         if holds ~= false then walk(m.t) end
      end
      walk(n)
      return most
   end
   -- The ethertypes some pair holds for (a masked pair's few: 32 at most in all), in order, and
   -- one that none holds for: one of each class of ethertypes the pairs tell apart.
   local named, seen = {}, {}
   for _, pair in ipairs(ethertypes) do
      local free = band(bnot(pair[1]), 0xffff) -- the bits the mask leaves free
      local v = 0
      repeat
         local e = pair[2] + v -- (the value has no bit outside the mask)
         if not seen[e] then seen[e], named[#named + 1] = true, e end
         if #named > 32 then return nil end
         v = band(v - free, free) -- the next subset of free's bits
      until v == 0
   end
   table.sort(named)
   local other = 0
   while seen[other] do other = other + 1 end
   -- The length for each value named (a field's value: the ethertype, or the protocol), and for
   -- the others (default).
   local t, default, size = {}
   if key == "" then
      default = need(other, nil)
      for _, e in ipairs(named) do
         local len = need(e, nil)
         if len ~= default then t[#t + 1], t[#t + 2] = e, len end
      end
   else
      size = 256
      named[#named + 1] = other
      local function most(p)
         local m = -1
         for _, e in ipairs(named) do m = math.max(m, need(e, p)) end
         return m
      end
      local tested = {}
      for _, p in ipairs(protocols) do tested[p] = true end
      table.sort(protocols)
      local rest = 0
      while tested[rest] do rest = rest + 1 end
      default = most(rest)
      for _, p in ipairs(protocols) do
         local len = most(p)
         if len ~= default then t[#t + 1], t[#t + 2] = p, len end
      end
   end
   if #t == 0 then return nil end
   return "{" .. table.concat(t, ", ") .. "}, " .. default .. (size and ", " .. size or "")
end

-- Whether a bounds test's base x reads a load at a variable offset (TCP's data offset, past the
-- IPv4 header's length): its test passes only for packets with bytes past the headers, and a
-- TCP ACK has none. Such a region takes no long copy: the packets would take both copies, and
-- the loop's trace one of them (`tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420`, numeric, on
-- a mix of tests/data/pcap's captures: 203-204 Mpps with a long copy, 329-332 without).
local function beyond(x)
   if type(x) ~= "table" then return false end
   if x[1] == "ld" and x[3] then return true end
   for _, y in ipairs(x) do
      if beyond(y) then return true end
   end
   return false
end

-- The statements of n's region, ending in the return of its verdict. A region with bounds tests
-- first takes the packets long enough for all of them (nearly all: one branch, predicted) to a
-- copy of itself without them: a bounds test costs three operations, and `net`'s four were a
-- fifth of its region. One is worth it too: a compare and its branch (fused, predicted) where
-- the test's sign was three operations (the mix of tools/bench-filter, alternating, three runs:
-- `ip` 611-637 -> 642-729 Mpps, `vlan and ip6` 561-600 -> 608-642).
function region(n, nodes, index)
   local set = {}
   local function visit(m)
      if m.term ~= nil or set[m] then return end
      set[m] = true
      visit(m.t)
      visit(m.f)
   end
   visit(n)
   local bounds, order, tests = {}, {}, 0
   for m in pairs(set) do
      local c = m.cond
      if c[1] == "caplen" then -- the longest per base
         tests = tests + 1
         local b = c[2] and optimize.key(c[2]) or ""
         if not bounds[b] then order[#order + 1] = b end
         if not bounds[b] or c[3] > bounds[b][3] then bounds[b] = c end
      end
   end
   if tests == 0 then return region_body(n, nodes, index, set, false) end
   for _, b in ipairs(order) do
      if beyond(bounds[b][2]) then return region_body(n, nodes, index, set, false) end
   end
   table.sort(order)
   local guard = {}
   for i, b in ipairs(order) do
      local c = bounds[b]
      local x, most, need
      if b == "" then
         need = c[3] > SHORTEST and field_need(n, set, b)
      else
         x, most = exact(c[2])
         need = c[3] + IP_HEADER > SHORTEST and most + c[3] <= 0x7fffffff and field_need(n, set, b)
      end
      if need and b == "" then
         guard[i] = ("caplen >= N%d[%s]"):format(table_id(need_tables, need), ETHERTYPE)
      elseif need then
         guard[i] = ("caplen >= tobit(%s+N%d[%s])"):format(x, table_id(need_tables, need), PROTOCOL)
      else
         local l, op, r = condition(bounds[b])
         guard[i] = l .. " " .. op .. " " .. r
      end
   end
   return "if " .. table.concat(guard, " and ") .. " then "
      .. region_body(n, nodes, index, set, true) .. " end; "
      .. region_body(n, nodes, index, set, false)
end

-- The source of entry's numeric matcher; region: M.REGION unless given.
function M.numeric_source(entry, most) return write(entry, most or M.REGION) end

function M.selftest()
   print("selftest: lib.pf.codegen")
   local function ld(size, off) return {"ld", size, nil, off} end
   local tree = {"and", {"cmp", "==", ld(2, 12), {"k", 0x800}},
      {"cmp", "==", {"op", "&", ld(4, 26), {"k", 0xffff0000}}, {"k", 0xc0a80000}}}
   local src = M.source(optimize.graph(tree))
   -- The helpers only where used.
   assert(not src:find("protochain") and not src:find("mul32") and not src:find("wirelen ="), src)
   local match = assert(loadstring(src))()
   local p = ffi.new("uint8_t[34]")
   p[12], p[13], p[26], p[27] = 8, 0, 192, 168
   assert(match(p, 34) == true)
   assert(match(p, 29) == false)
   p[27] = 169
   assert(match(p, 34) == false, src)
   -- Numeric: the whole graph in one region when regions may hold it, as 1 or 0, its one
   -- branch the long packets' (to its copy without the bounds test); bytes past caplen are read
   -- (the buffer holds REACH) and decide nothing.
   src = M.numeric_source(optimize.graph(tree), 100)
   assert(select(2, src:match("return function.*$"):gsub("if ", "")) == 1
             and src:find("do if caplen >= 30 then return", 1, true) and not src:find("goto"), src)
   match = assert(loadstring(src))()
   local q = ffi.new("uint8_t[?]", M.REACH)
   q[12], q[13], q[26], q[27] = 8, 0, 192, 168
   assert(match(q, 34) == 1 and match(q, 29) == 0 and match(q, 0) == 0, src)
   q[27] = 169
   assert(match(q, 34) == 0, src)
   -- In regions of one test, only the last (the ethertype and address, merged): the bounds
   -- test branches.
   src = M.numeric_source(optimize.graph(tree), 1)
   assert(select(2, src:match("return function.*$"):gsub("if ", "")) == 1
             and src:find("return rshift%("), src)
   -- The shapes lib/pf/README.md describes, on whole expressions (their verdicts: the oracle
   -- tests): vlan's 0x8100 and 0x9100 as one test under 0xefff, and 0x88a8, a gate of one
   -- field: a load of its table (no select), which holds ip6's ethertype for one bxor with it;
   -- net's ARP and RARP address tests shared; the long packets' copy of a region.
   local pf = require("lib.pf")
   local function count(str, pat) return select(2, str:gsub(pat, "")) end
   src = pf.source("vlan and ip6", {numeric = true})
   assert(src:find("local G1 = gate_table({65519, 129, 65535, 43144}, 56710)\n", 1, true)
             and src:find("= bxor(cast(u16p, P+16)[0], G1[cast(u16p, P+12)[0]]) - 1", 1, true)
             and not src:find("G2", 1, true), src)
   local body = src:match("return function.*$")
   assert(select(2, body:gsub("if ", "")) == 1 and body:find("if caplen >= 18 then", 1, true)
             and not body:find("bxor(v"), src)
   -- The table: 0x86dd at the three tag types (in memory order: 0x8100 is 0x0081, 0x86dd
   -- 0xdd86), 0x10000 elsewhere.
   local g1 = assert(loadstring(src:match("^(.-)return function") .. " return G1"))()
   local tagged, other = 0, 0
   for x = 0, 65535 do
      if g1[x] == 0xdd86 then tagged = tagged + 1 elseif g1[x] == 0x10000 then other = other + 1 end
   end
   assert(tagged == 3 and other == 65533 and g1[0x0081] == 0xdd86 and g1[0x0091] == 0xdd86
             and g1[0xa888] == 0xdd86, tagged)
   -- net's gate of ARP and RARP: over the or of the two addresses' first byte (/8), in the
   -- long copy distributed, a table that holds 10 at both; in the short one, a table of -1.
   src = pf.source("net 10.0.0.0/8", {numeric = true})
   assert(src:find("local G1 = gate_table({65535, 1544, 65535, 13696}, 10)\n", 1, true)
             and src:find("local G2 = gate_table({65535, 1544, 65535, 13696})\n", 1, true)
             and src:find("bor(bxor(P[28], G1[cast(u16p, P+12)[0]]) - 1, bxor(P[38], G1[", 1, true),
          src)
   -- IPv4's ethertype and its protocol, before IPv6's: a table that holds 6 at 0x0800, with
   -- one bxor (0x0800 in memory order: 8); IPv6's ethertype over the or of next header 6 and
   -- of 44 with the fragment header's 6: the byte an offset table picks (54 at 44, 20
   -- elsewhere) and a table that holds 6 at 0x86dd (0xdd86 in memory order). `tcp port 80`'s
   -- IPv6 ethertype and next header, anded with the ports' test.
   src = pf.source("tcp", {numeric = true})
   assert(src:find("local G1 = gate_table({65535, 56710}, 6)\n", 1, true)
             and src:find("local G2 = gate_table({65535, 8}, 6)\n", 1, true)
             and src:find("local O1 = offset_table(44, 54, 20)\n", 1, true)
             and src:find("bxor(P[O1[P[20]]], G1[cast(u16p, P+12)[0]]) - 1", 1, true)
             and src:find("bor(bxor(P[23], G2[cast(u16p, P+12)[0]]) - 1, v", 1, true), src)
   local o1 = assert(loadstring(src:match("^(.-)return function") .. " return O1"))()
   assert(o1[44] == 54 and o1[6] == 20 and o1[0] == 20 and o1[255] == 20)
   src = pf.source("tcp port 80", {numeric = true})
   assert(src:find("local G2 = gate_table({65535, 56710}, 6)\n", 1, true)
             and src:find("return rshift(bor(band(bxor(P[20], G2[cast(u16p, P+12)[0]]) - 1, v5), v8)",
                          1, true), src)
   -- A merged run's ethertype and protocol (IPv4's), with the fragment offset: one bxor with a
   -- table that holds 17 at 0x0800, or'd with the offset.
   src = pf.source("ip and udp and dst port 53", {numeric = true})
   assert(src:find("local G1 = gate_table({65535, 8}, 17)\n", 1, true)
             and src:find("bor(bxor(P[23], G1[cast(u16p, P+12)[0]]), "
                             .. "band(cast(u16p, P+20)[0], 65311)) - 1", 1, true), src)
   -- A gate of one test is the test; boolean matchers branch.
   assert(not pf.source("ip", {numeric = true}):find("gate_table", 1, true))
   assert(not pf.source("vlan and ip6"):find("gate_table", 1, true))
   src = pf.source("net 192.168.0.0/16", {numeric = true})
   assert(count(src, "P%+38") == 2 and src:find("if caplen >= 42 then", 1, true), src)
   -- The long copy's length by the ethertype (in memory order): IPv4 24, IPv6 55 (the fragment
   -- header's next header), 21 (bounds before the ethertype's tests) elsewhere; none where the
   -- bounds need SHORTEST bytes at most (`net`'s 42).
   src = pf.source("tcp", {numeric = true})
   assert(src:find("local N1 = need_table({8, 24, 56710, 55}, 21)\n", 1, true)
             and src:find("if caplen >= N1[cast(u16p, P+12)[0]] then", 1, true), src)
   assert(not pf.source("net 192.168.0.0/16", {numeric = true}):find("need_table"))
   -- By IPv4's protocol: 28 bytes past the header for TCP, -1 (none) for the others.
   src = pf.source("tcp[tcpflags] & tcp-syn != 0", {numeric = true})
   assert(src:find("local N1 = need_table({6, 28}, -1, 256)\n", 1, true)
             and src:find("caplen >= tobit(lshift(band(P[14], 15), 2)+N1[P[23]])", 1, true), src)
   assert(count(pf.source("net 192.168.0.0/16"), "P%+38") < 4)
   -- Negations are `0 - x` (inv): a loop's trace recorded on a packet whose x is not 0 (the
   -- SYN bit; the fragment field, negated by the expression) runs packets whose x is 0 in that
   -- trace, where `-x` took a side trace for each (a guard that x is not 0).
   local side = 0
   local function on_trace (what, _, _, _, parent)
      if what == "start" and parent then side = side + 1 end
   end
   -- And a loop recorded on an IPv4 TCP ACK of 54 bytes runs longer packets in its trace: the
   -- length `tcp port 80`'s long copy needs is IPv6's 58 for IPv6 only (the ACK took the short
   -- copy, and every longer packet a side trace, before need tables); a test of the payload has
   -- no long copy (beyond), which the ACK would fail; `tcp[tcpflags]` needs 28 bytes past the
   -- IPv4 header for TCP only (field_need), so a UDP packet of 46 bytes takes the long copy.
   -- Each case: the expression, a byte (or bytes) of the first 200 packets, their length, and
   -- a byte of the others (60 bytes long); all IPv4 TCP (20-byte headers) but for those bytes.
   local function put(buf, at)
      if type(at[2]) == "string" then ffi.copy(buf + at[1], at[2]) else buf[at[1]] = at[2] end
   end
   for _, case in ipairs({{"tcp[tcpflags] & tcp-syn != 0", {47, 2}, 60, {47, 0}},
                          {"-ip[6:2] != 0", {20, 0x20}, 60, {20, 0}},
                          {"tcp port 80", {37, 80}, 54, {37, 0}},
                          {"tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420", {54, "GET "}, 54,
                           {54, "GET "}},
                          {"tcp[tcpflags] & tcp-syn != 0", {23, 17}, 46, {47, 2}}}) do
      local expr, at_first, length, at_rest = unpack(case)
      match = pf.compile(expr, {numeric = true})
      local first = ffi.new("uint8_t[?]", M.REACH)
      first[12], first[14], first[23], first[46] = 8, 0x45, 6, 0x50
      local rest = ffi.new("uint8_t[?]", M.REACH)
      ffi.copy(rest, first, M.REACH)
      put(first, at_first)
      put(rest, at_rest)
      local packets = ffi.new("uint8_t *[20000]")
      local lengths = ffi.new("int32_t[20000]", 60)
      for i = 0, 19999 do packets[i] = i < 200 and first or rest end
      for i = 0, 199 do lengths[i] = length end
      local boolean, want = pf.compile(expr), 0
      for i = 0, 19999 do
         if boolean(packets[i], lengths[i]) then want = want + 1 end
      end
      -- (a loop of its own for each matcher: one loop's trace for another would leave it at
      -- its guard on the function called)
      local loop = loadstring([[
         local match, packets, lengths = ...
         local hits = 0
         for i = 0, 19999 do hits = hits + match(packets[i], lengths[i]) end
         return hits]])
      jit.attach(on_trace, "trace")
      local hits = loop(match, packets, lengths)
      jit.attach(on_trace)
      assert(hits == want and want > 0 and side == 0,
             ("'%s': %d hits of %d, %d side traces"):format(expr, hits, want, side))
   end
   print("selftest: ok")
end

return M
