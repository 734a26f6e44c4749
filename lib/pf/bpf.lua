-- lib.pf.bpf: pcap-filter expressions through libpcap's own compiler, its classic BPF translated to
-- Lua source that LuaJIT compiles into the caller's trace. The second, independent path beside
-- lib.pf's compiler: both must accept the same packets as libpcap's interpreter (bpf_filter),
-- which this translation follows instruction by instruction, bounds checks included (a load past
-- caplen rejects the packet, as a division by zero does).
--
-- The program becomes one function of flat labelled statements: instruction i is `::Li::` when
-- something jumps to it, a conditional jump is `if COND then goto Lt end` (or a return when the
-- target is a `ret`), and the registers A, X and the scratch words M[0..15] are locals declared
-- before the first label (a goto may not enter a local's scope). libpcap only jumps backwards for
-- `protochain`; Lua's goto does so too. A and X hold their 32-bit values as LuaJIT's bit
-- operations give them: signed int32 numbers. Where the value is known to lie in [0, 2^31)
-- (bytes, half words, masked words, X from `ldx msh`), unsigned comparisons are plain ones;
-- elsewhere both sides are flipped by 2^31 first. A bounds check already made on every path to an
-- instruction (the longest one that dominates it) is not repeated, and where every path to an
-- accepting ret loads N bytes or more, a packet shorter than N is rejected there at once. A half
-- word or word only compared for equality, tested or masked with constants stays as memory holds
-- it, the constants swapped instead.
local bit = require("bit")
local libpcap = require("lib.pf.libpcap")

local M = {}

local format = string.format

-- The instructions bpf_filter runs, by their whole code (any other code rejects the packet there).
-- Kinds: "ld" (A = load), "ldx", "st", "stx", "alu", "ja", "jmp" (conditional), "ret", "tax",
-- "txa"; with the addressing mode of loads, the size of packet loads, whether an ALU operation or
-- a comparison takes X (else k).
local OPS = {
   [0x20] = {"ld", "abs", 4}, [0x28] = {"ld", "abs", 2}, [0x30] = {"ld", "abs", 1},
   [0x40] = {"ld", "ind", 4}, [0x48] = {"ld", "ind", 2}, [0x50] = {"ld", "ind", 1},
   [0x80] = {"ld", "len"}, [0x00] = {"ld", "imm"}, [0x60] = {"ld", "mem"},
   [0x81] = {"ldx", "len"}, [0x01] = {"ldx", "imm"}, [0x61] = {"ldx", "mem"},
   [0xb1] = {"ldx", "msh", 1},
   [0x02] = {"st"}, [0x03] = {"stx"},
   [0x05] = {"ja"},
   [0x15] = {"jmp", "==", false}, [0x25] = {"jmp", ">", false}, [0x35] = {"jmp", ">=", false},
   [0x45] = {"jmp", "&", false}, [0x1d] = {"jmp", "==", true}, [0x2d] = {"jmp", ">", true},
   [0x3d] = {"jmp", ">=", true}, [0x4d] = {"jmp", "&", true},
   [0x06] = {"ret", "k"}, [0x16] = {"ret", "a"},
   [0x07] = {"tax"}, [0x87] = {"txa"},
   [0x84] = {"alu", "neg", false},
}
for op, name in pairs({[0x00] = "add", [0x10] = "sub", [0x20] = "mul", [0x30] = "div",
                       [0x40] = "or", [0x50] = "and", [0x60] = "lsh", [0x70] = "rsh",
                       [0x90] = "mod", [0xa0] = "xor"}) do
   OPS[0x04 + op] = {"alu", name, false}
   OPS[0x0c + op] = {"alu", name, true}
end
local MEMWORDS = 16

local function signed (k) -- a uint32 as the int32 LuaJIT's bit operations give
   return k >= 0x80000000 and k - 0x100000000 or k
end

-- What is known of the machine before an instruction, on every path to it: `len`, caplen is at
-- least this; `a`, `x`, `m[i]`: true when the register (or scratch word) holds a value in
-- [0, 2^31).
local function state (len, a, x, m)
   return {len = len, a = a, x = x, m = m or {}}
end
local function copy (s)
   local m = {}
   for i = 0, MEMWORDS - 1 do m[i] = s.m[i] end
   return state(s.len, s.a, s.x, m)
end
local function meet (s, t) -- what holds on both paths
   if not s then return copy(t) end
   local m = {}
   for i = 0, MEMWORDS - 1 do m[i] = s.m[i] and t.m[i] end
   return state(math.min(s.len, t.len), s.a and t.a, s.x and t.x, m)
end
local function unknown () return state(0, false, false) end

-- A 32-bit value flipped by 2^31, so that signed comparison orders as unsigned.
local function flip (e) return "bxor(" .. e .. ", -2147483648)" end

-- The condition of conditional jump `op` with k, in Lua, or true/false when known in state s;
-- `negated`: its negation.
local NEGATION = {["=="] = "~=", ["~="] = "==", [">"] = "<=", [">="] = "<"}
local function condition (op, k, s, negated)
   local rel, by_x = op[2], op[3]
   local lhs, rhs -- of rel, or of "~=" for "&" (its bits not all 0)
   if rel == "&" then
      if not by_x and k == 0 then return negated end
      lhs, rel, rhs = format("band(A, %s)", by_x and "X" or signed(k)), "~=", "0"
   elseif by_x then
      if rel == "==" or s.a and s.x then lhs, rhs = "A", "X"
      else lhs, rhs = flip("A"), flip("X") end
   elseif rel == "==" then
      if s.a and k >= 0x80000000 then return negated end
      lhs, rhs = "A", signed(k)
   elseif rel == ">=" and k == 0 then
      return not negated
   elseif s.a then
      if k >= 0x80000000 then return negated end
      lhs, rhs = "A", k
   else
      lhs, rhs = flip("A"), signed(bit.bxor(k, 0x80000000))
   end
   return lhs .. " " .. (negated and NEGATION[rel] or rel) .. " " .. rhs
end

-- The state after instruction op (k) from state s.
local function step (op, k, s)
   local kind, mode = op[1], op[2]
   local out = copy(s)
   if kind == "ld" or kind == "ldx" then
      local value_n -- the value loaded lies in [0, 2^31)
      if mode == "abs" or mode == "ind" or mode == "msh" then
         -- (an indexed load checks X >= 0 too, so caplen reaches k + size after it)
         out.len = math.max(out.len, k + op[3])
         value_n = op[3] < 4
      elseif mode == "imm" then value_n = k < 0x80000000
      elseif mode == "mem" then value_n = s.m[k]
      else value_n = false end -- len
      if kind == "ld" then out.a = value_n else out.x = value_n end
   elseif kind == "st" then out.m[k] = s.a
   elseif kind == "stx" then out.m[k] = s.x
   elseif kind == "tax" then out.x = s.a
   elseif kind == "txa" then out.a = s.x
   elseif kind == "alu" then
      local src_n = k < 0x80000000
      if op[3] then src_n = s.x end
      if mode == "and" then out.a = s.a or src_n
      elseif mode == "or" or mode == "xor" then out.a = s.a and src_n
      elseif mode == "rsh" then out.a = s.a or (not op[3] and k % 32 > 0)
      elseif mode == "div" then out.a = s.a
      elseif mode == "mod" then out.a = s.a or src_n
      else out.a = false end
   end
   return out
end

-- The Lua source of the BPF program `insns` (1-based array of {code, jt, jf, k}, as
-- lib.pf.libpcap.instructions gives), a chunk that returns the match function.
function M.translate (insns)
   local n = #insns
   -- Pass 0: need[i], the caplen below which no path from instruction i accepts (each path to
   -- an accepting ret loads at least that far), math.huge where none accepts. Rejecting a
   -- packet shorter than that at once is what the program would do, later: one check there
   -- stands for the loads' own. (The target of a backward jump, `protochain`'s, needs 0.)
   local need = {}
   for i = n - 1, 0, -1 do
      local ins = insns[i + 1]
      local op, k = OPS[ins.code], ins.k
      local function at (j)
         if j <= i then return 0 elseif j >= n then return math.huge end
         return need[j]
      end
      local r
      if not op then r = math.huge
      elseif op[1] == "ret" then r = (op[2] == "a" or k ~= 0) and 0 or math.huge
      elseif op[1] == "ja" then r = at(i + 1 + signed(k))
      elseif op[1] == "jmp" then r = math.min(at(i + 1 + ins.jt), at(i + 1 + ins.jf))
      elseif (op[2] == "mem" or op[1] == "st" or op[1] == "stx") and k >= MEMWORDS then
         r = math.huge
      elseif op[1] == "alu" and (op[2] == "div" or op[2] == "mod") and not op[3] and k == 0 then
         r = math.huge
      else
         r = at(i + 1)
         if op[3] and (op[2] == "abs" or op[2] == "ind" or op[2] == "msh") then
            r = math.max(r, k + op[3])
         end
      end
      need[i] = r
   end
   -- Pass 1: the state before each reachable instruction. Jumps go forward but for
   -- `protochain`'s; the target of a backward jump assumes nothing.
   local before, targets, backward, hoisted = {}, {}, {}, {}
   local function successors (i) -- of instruction i (0-based) in state s: a list of targets
      local ins = insns[i + 1]
      local op = OPS[ins.code]
      if not op or op[1] == "ret" or need[i] == math.huge then return {} end
      if (op[1] == "ld" or op[1] == "ldx") and op[2] == "mem" and ins.k >= MEMWORDS or
         (op[1] == "st" or op[1] == "stx") and ins.k >= MEMWORDS then return {} end
      if op[1] == "ja" then return {i + 1 + signed(ins.k)} end
      if op[1] == "jmp" then
         local c = condition(op, ins.k, before[i])
         if c == true then return {i + 1 + ins.jt} end
         if c == false then return {i + 1 + ins.jf} end
         return {i + 1 + ins.jt, i + 1 + ins.jf}
      end
      return {i + 1}
   end
   for i = 0, n - 1 do
      local ins = insns[i + 1]
      if ins.code == 0x05 and signed(ins.k) < 0 then backward[i + 1 + signed(ins.k)] = true end
   end
   before[0] = unknown()
   for i = 0, n - 1 do
      if backward[i] then before[i], targets[i] = unknown(), true end
      if before[i] and need[i] > before[i].len and need[i] < math.huge then
         hoisted[i], before[i].len = need[i], need[i]
      end
      if before[i] then
         local ins = insns[i + 1]
         local out = OPS[ins.code] and step(OPS[ins.code], ins.k, before[i])
         for _, to in ipairs(successors(i)) do
            if to > i and to < n then before[to] = meet(before[to], out) end
         end
      end
   end
   -- Pass 1b: which loads of a half word or a word can leave A as the bytes are in memory (no
   -- bswap, no shift): those whose value is only compared for equality or tested and masked with
   -- constants (jeq k, jset k, and k), which take the constant swapped instead. sources[i]: the
   -- instructions whose load A holds before i (an `and k` passes its operand's on).
   local sources, raw = {}, {}
   for i = 0, n - 1 do
      local op = OPS[insns[i + 1].code]
      local load = op and op[1] == "ld" and (op[2] == "abs" or op[2] == "ind")
      if before[i] and load and op[3] > 1 then raw[i] = op[3] end
   end
   local function defines_a (op) -- the source of A after op, or nil when op leaves A
      if op[1] == "ld" or op[1] == "txa" or op[1] == "alu" and op[2] ~= "and" or
         op[1] == "alu" and op[3] then
         return true
      end
   end
   sources[0] = {}
   for i = 0, n - 1 do
      if backward[i] then sources[i] = {[-1] = true} end
      if before[i] then
         local op = OPS[insns[i + 1].code]
         local out = sources[i]
         if op and defines_a(op) then out = {[raw[i] and i or -1] = true} end
         for _, to in ipairs(successors(i)) do
            if to > i and to < n then
               sources[to] = sources[to] or {}
               for src in pairs(out) do sources[to][src] = true end
            end
         end
      end
   end
   local changed = true
   while changed do
      changed = false
      for i = 0, n - 1 do
         local ins = insns[i + 1]
         local op = OPS[ins.code]
         local reads = op and (op[1] == "jmp" or op[1] == "alu" or op[1] == "st" or
                               op[1] == "tax" or op[1] == "ret" and op[2] == "a")
         if before[i] and reads then
            local fits = not op[3] and (op[1] == "jmp" and (op[2] == "==" or op[2] == "&") or
                                        op[1] == "alu" and op[2] == "and")
            local width -- all sources raw loads of one width, or none raw
            for src in pairs(sources[i]) do
               local w = raw[src] or 0
               if width and w ~= width then fits = false end
               width = w
            end
            if not fits then
               for src in pairs(sources[i]) do
                  if raw[src] then raw[src], changed = nil, true end
               end
            end
         end
      end
   end
   local function raw_width (i) -- A's width before i when it holds raw bytes, else nil
      local src = next(sources[i] or {})
      return src and raw[src]
   end
   local function swapped (k, width) -- k as the bytes of a raw A of this width read
      if width == 2 then return bit.rshift(bit.bswap(bit.band(k, 0xffff)), 16) end
      return bit.bswap(k)
   end
   -- Pass 2: the source.
   local body, mem_used, uses_len = {}, {}, false
   local function emit (...) body[#body + 1] = format(...) end
   -- A jump to instruction `to` as a statement: a ret is returned at once.
   local function jump (to)
      if to < 0 or to >= n or need[to] == math.huge then return "return false" end
      local ins = insns[to + 1]
      if ins.code == 0x06 then return ins.k ~= 0 and "return true" or "return false" end
      if ins.code == 0x16 then return "return A ~= 0" end
      targets[to] = true
      return "goto L" .. to
   end
   local function load (size, at, as_is) -- the expression of a packet load
      if as_is then return format("cast(%s, P + %s)[0]", size == 2 and "u16p" or "i32p", at) end
      if size == 1 then return format("P[%s]", at)
      elseif size == 2 then return format("rshift(bswap(cast(u16p, P + %s)[0]), 16)", at)
      else return format("bswap(cast(u32p, P + %s)[0])", at) end
   end
   -- Labels first (a target is known once its jumps are emitted): the statements of each
   -- reachable instruction, then the labels put before them.
   -- An instruction is emitted when the one before falls into it or a goto lands on it (the
   -- gotos to it are all emitted before it, but for backward ones, known from pass 1).
   local at, falls = {}, true -- body index where instruction i starts; does i - 1 fall into i?
   for i = 0, n - 1 do
      local s, ins = before[i], insns[i + 1]
      local op, k = OPS[ins.code], ins.k
      at[i] = #body + 1
      if not s or not (falls or targets[i]) then
         falls = false
      elseif not op or need[i] == math.huge then
         emit("do return false end") falls = false
      else
         if hoisted[i] then emit("if L < %d then return false end", hoisted[i]) end
         local kind, mode = op[1], op[2]
         local reg = kind == "ld" and "A" or "X"
         local next = successors(i)
         falls = next[1] == i + 1 or next[2] == i + 1
         if (kind == "ld" or kind == "ldx" or kind == "st" or kind == "stx") and mode == "mem"
            or kind == "st" or kind == "stx" then
            if k >= MEMWORDS then emit("do return false end")
            elseif kind == "st" or kind == "stx" then
               mem_used[k] = true
               emit("M%d = %s", k, kind == "st" and "A" or "X")
            else
               mem_used[k] = true
               emit("%s = M%d", reg, k)
            end
         elseif mode == "abs" then
            if s.len < k + op[3] then emit("if L < %d then return false end", k + op[3]) end
            emit("A = %s", load(op[3], k, raw[i]))
         elseif mode == "ind" then
            local bytes = k + op[3]
            if s.x then emit("if X + %d > L then return false end", bytes)
            else emit("if X < 0 or X + %d > L then return false end", bytes) end
            emit("A = %s", load(op[3], k == 0 and "X" or "X + " .. k, raw[i]))
         elseif mode == "msh" then
            if s.len < k + 1 then emit("if L < %d then return false end", k + 1) end
            emit("X = lshift(band(P[%d], 15), 2)", k)
         elseif mode == "imm" then
            emit("%s = %d", reg, signed(k))
         elseif mode == "len" then
            uses_len = true
            emit("%s = tobit(W)", reg)
         elseif kind == "tax" then emit("X = A")
         elseif kind == "txa" then emit("A = X")
         elseif kind == "alu" then
            local by_x = op[3]
            local src = by_x and "X" or signed(k)
            if mode == "add" then emit("A = tobit(A + %s)", src)
            elseif mode == "sub" then emit("A = tobit(A - %s)", src)
            elseif mode == "mul" then
               -- The product modulo 2^32, exact: each 16-bit half of A times a 32-bit number
               -- stays under 2^48.
               emit("A = tobit(band(A, 65535) * %s + tobit(rshift(A, 16) * %s) * 65536)", src, src)
            elseif mode == "div" or mode == "mod" then
               if by_x then emit("if X == 0 then return false end")
               elseif k == 0 then emit("do return false end") end
               local a = s.a and "A" or "(A % 4294967296)"
               local d = by_x and (s.x and "X" or "(X % 4294967296)") or tostring(k)
               if mode == "div" then emit("A = tobit(floor(%s / %s))", a, d)
               else emit("A = tobit(%s %% %s)", a, d) end
            elseif mode == "and" then
               emit("A = band(A, %s)", raw_width(i) and swapped(k, raw_width(i)) or src)
            elseif mode == "or" then emit("A = bor(A, %s)", src)
            elseif mode == "xor" then emit("A = bxor(A, %s)", src)
            elseif mode == "lsh" or mode == "rsh" then
               local f = mode == "lsh" and "lshift" or "rshift"
               -- libpcap 1.10.3 shifts by k modulo 32 (x86's shift, as LuaJIT's), by X only
               -- when under 32 (0 otherwise); pcap_compile refuses a constant over 31.
               if not by_x then emit("A = %s(A, %d)", f, k % 32)
               elseif s.x then emit("if X < 32 then A = %s(A, X) else A = 0 end", f)
               else emit("if X >= 0 and X < 32 then A = %s(A, X) else A = 0 end", f) end
            elseif mode == "neg" then emit("A = tobit(-A)") end
         elseif kind == "ret" then
            emit("do return %s end", mode == "a" and "A ~= 0" or tostring(k ~= 0))
         elseif kind == "ja" then
            if next[1] ~= i + 1 then emit("do %s end", jump(next[1])) end
         elseif kind == "jmp" then
            local t, f = i + 1 + ins.jt, i + 1 + ins.jf
            if #next == 1 or t == f then
               if next[1] ~= i + 1 then emit("do %s end", jump(next[1])) end
            else
               local c, nc = condition(op, k, s), condition(op, k, s, true)
               local width = raw_width(i)
               if width then -- jeq or jset k on raw bytes
                  local v = swapped(k, width)
                  if op[2] == "&" then
                     c, nc = format("band(A, %d) ~= 0", v), format("band(A, %d) == 0", v)
                  elseif width == 2 and k > 0xffff then c, nc = "false", "true"
                  else c, nc = "A == " .. v, "A ~= " .. v end
               end
               if f == i + 1 then emit("if %s then %s end", c, jump(t))
               elseif t == i + 1 then emit("if %s then %s end", nc, jump(f))
               else
                  emit("if %s then %s end", c, jump(t))
                  emit("do %s end", jump(f))
               end
            end
         end
      end
   end
   if falls then emit("do return false end") end -- off the end: rejected
   -- Labels, from the last so that the indices before stay right.
   for i = n - 1, 0, -1 do
      if targets[i] and before[i] then table.insert(body, at[i], format("::L%d::", i)) end
   end
   local locals = {"local A, X = 0, 0"}
   for i = 0, MEMWORDS - 1 do
      if mem_used[i] then locals[#locals + 1] = format("local M%d = 0", i) end
   end
   if uses_len then locals[#locals + 1] = "W = W or L" end
   return table.concat({
      "local ffi, bit = require('ffi'), require('bit')",
      "local cast, floor = ffi.cast, math.floor",
      "local band, bor, bxor, lshift, rshift, bswap, tobit =",
      "   bit.band, bit.bor, bit.bxor, bit.lshift, bit.rshift, bit.bswap, bit.tobit",
      "local u16p, u32p, i32p = ffi.typeof('uint16_t *'), ffi.typeof('uint32_t *'),",
      "   ffi.typeof('int32_t *')",
      "return function (P, L, W) -- luacheck: ignore",
      "   " .. table.concat(locals, "\n   "),
      "   " .. table.concat(body, "\n   "),
      "end",
      ""}, "\n")
end

-- Whether a program reads a scratch word or X that some way to the read has not set (forward
-- jumps only, as the optimiser's output has). libpcap 1.10.3's optimiser can leave one: `not 1
-- != -len or len > 0 & 0` becomes `ld M[1]; jgt #0` with no `st M[1]` (bpf_filter then reads
-- its uninitialised stack), `0 + len << 0 = 0 || ... and len >= 1 / len` a `div x` with no
-- `tax` of len on any way (X is 0: a division by zero).
local function reads_unset (insns)
   local band, bor, lshift = bit.band, bit.bor, bit.lshift
   local XBIT = 0x10000
   local stored = {[1] = 0} -- index -> mask of the words (and X) set on every way to it
   local function reach (i, mask)
      stored[i] = stored[i] and band(stored[i], mask) or mask
   end
   for i, ins in ipairs(insns) do
      local mask = stored[i]
      if mask then
         local code, class = ins.code, band(ins.code, 7)
         local reads_x = code == 0x87 -- txa
            or band(code, 0xe0) == 0x40 and class == 0 -- ld [x + k]
            or (class == 4 or class == 5 and code ~= 0x05) and band(code, 0x08) ~= 0
            or code == 0x03 -- stx
         if reads_x and band(mask, XBIT) == 0 then return true end
         if code == 0x60 or code == 0x61 then
            if band(mask, lshift(1, ins.k)) == 0 then return true end
         elseif code == 0x02 or code == 0x03 then
            mask = bor(mask, lshift(1, ins.k))
         end
         if class == 1 or code == 0x07 then mask = bor(mask, XBIT) end -- ldx, tax
         if class == 5 then
            if code == 0x05 then reach(i + 1 + ins.k, mask)
            else reach(i + 1 + ins.jt, mask); reach(i + 1 + ins.jf, mask) end
         elseif class ~= 6 then
            reach(i + 1, mask)
         end
      end
   end
   return false
end
M.reads_unset = reads_unset

-- The Lua source of expr's matcher (libpcap's optimised BPF, translated), or nil and libpcap's
-- message as `'EXPR': MESSAGE`. Where the optimised program reads a scratch word it never
-- stored (above), the unoptimised one is translated: its value is what libpcap meant.
function M.source (expr)
   if type(expr) ~= "string" then return nil, "filter expression must be a string" end
   local prog, err = libpcap.compile(expr)
   if not prog then return nil, format("'%s': %s", expr, err) end
   local insns = libpcap.instructions(prog)
   if reads_unset(insns) then insns = libpcap.instructions(assert(libpcap.compile(expr, false))) end
   return M.translate(insns)
end

-- match(ptr, caplen[, wirelen]) -> boolean for expr, or nil and the message.
function M.compile (expr)
   local source, err = M.source(expr)
   if not source then return nil, err end
   return assert(loadstring(source, "=bpf: " .. expr:sub(1, 40)))()
end

-- Self-test: the translation against libpcap's interpreter, on real packets whole and cut short,
-- for expressions and for random programs.

-- Expressions that make libpcap emit every kind of instruction it uses: loads of each size and
-- mode, ldx msh, scratch memory (protochain, arithmetic), every ALU operation and comparison,
-- backward jumps (protochain), len.
M.expressions = {
   "ip", "ip6", "arp", "rarp", "tcp", "udp", "icmp", "icmp6", "sctp", "vlan", "vlan 2",
   "vlan and ip", "vlan and vlan and ip", "vlan and ip6", "mpls", "pppoed",
   "tcp port 80", "udp port 53", "port 23", "src port 23", "dst port 1024", "portrange 1-1024",
   "tcp portrange 20-23", "udp and dst port 53", "ip and udp and dst port 53",
   "host 192.168.0.1", "src host 10.0.0.1", "dst host 65.208.228.223", "net 192.168.0.0/16",
   "net 10.0.0.0 mask 255.0.0.0", "src net 145.254.160.0/24", "host ::1", "net fe80::/10",
   "ip6 host fe80::211:25ff:fe82:95b5", "dst net 2001::/16", "ether host 00:00:01:00:00:00",
   "ether src 00:11:25:82:95:b5", "ether broadcast", "ether multicast",
   "ip multicast", "ip6 multicast", "ether proto 0x86dd", "ip proto 17", "ip6 proto 58",
   "proto 6", "ip proto 300", "tcp[tcpflags] & tcp-syn != 0",
   "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
   "tcp[tcpflags] = tcp-ack", "icmp[icmptype] = icmp-echo", "icmp[icmptype] != icmp-echoreply",
   "icmp6[icmp6type] = icmp6-neighborsolicit", "ip[0] & 0xf > 5", "ip[6:2] & 0x1fff != 0",
   "ip[2:2] > 1000", "ip[12:4] = 0xc0a80001", "ip[16:4] > 0x80000000", "ip[16:4] >= 0xfffffffe",
   "ether[0] & 1 = 1", "ether[12:2] = 0x0800", "ether[6:4] < 0x10000000", "len > 100",
   "len <= 64", "greater 1000", "less 60", "len - 1000 > 5", "len * 3 > 200",
   "len / 3 = 20", "len % 7 = 3", "ip[8] * ip[9] > 1000", "ip[8] * 123456789 > 5",
   "ip[8] / (ip[9] - 6) = 0", "ip[8] % (ip[9] - 17) = 0", "ether[0] / ether[1] > 0",
   "ether[0] << ether[1] > 256", "ether[0] >> ether[13] = 0", "ether[1] << 31 != 0",
   "ip[0] >> 4 = 4", "-ether[0] > 10", "ether[0] ^ ether[1] = 0", "ether[0] | ether[1] = 255",
   "ip[0] & ip[1] = 0", "ip6[6] = 17", "ip6[40:2] = 53", "tcp[0:2] = 80", "udp[2:2] = 53",
   "tcp[13] = 18", "tcp[12] >> 4 > 5", "ip6 protochain 6", "ip6 protochain 17",
   "ip protochain 6", "ip6 and tcp", "ip and tcp and tcp[tcpflags] & tcp-push != 0",
   "not ip", "not tcp and not udp", "ip or arp", "(tcp or udp) and not port 80",
   "host 192.168.0.1 or host 192.168.0.2 or host 10.0.0.1", "ip and ip[4:4] & 0xff0000ff = 0",
   "ether[ip[0] & 3] = 0", "ip[ether[0] & 7:2] = 0", "tcp[tcp[12] >> 4] > 0",
   "ip[2:2] - (ip[0] & 0xf) * 4 > 20", "ip and (ip[6] & 0x20 != 0 or ip[7] != 0)",
   "udp[8:4] = 0x00010000", "ip6[0:4] & 0x0ff00000 != 0", "ether[60] = 0", "ether[1500:2] = 0",
}

-- A packet's bytes at the end of a page-sized buffer (a load past caplen would not be caught by
-- the buffer's end otherwise: it is, by comparing with libpcap).
local function packets_of_captures (dir)
   local records = dofile("tests/pcap_records.lua")
   local files = {}
   for name in io.popen("find " .. dir .. " -name '*.pcap' | sort"):lines() do
      files[#files + 1] = name
   end
   local packets = {}
   for _, file in ipairs(files) do
      for _, r in ipairs(records(file)) do packets[#packets + 1] = r end
   end
   return packets, #files
end

-- Every packet whole and cut at every length up to 80 bytes (headers), compared by `same(ptr,
-- caplen, wirelen)`, which errors at the first difference. Returns the comparisons made.
local function over_packets (packets, same)
   local ffi = require("ffi")
   local buf = ffi.new("uint8_t[?]", 65536)
   local count = 0
   for _, r in ipairs(packets) do
      ffi.copy(buf, r.data, r.caplen)
      same(buf, r.caplen, r.len)
      for cut = 0, math.min(r.caplen - 1, 80) do same(buf, cut, r.len) count = count + 1 end
      count = count + 1
   end
   return count
end

-- A random program of `n` instructions that bpf_filter can run (every path ends in a ret, every
-- jump lands inside): random loads, stores, ALU operations and comparisons with small offsets and
-- a mix of small, boundary and large constants.
-- `filter_like`: only what filters are made of (loads, ldx msh, jeq, jset, and with constants, a
-- few jgt), so that loads compared as in memory are common.
local function random_program (n, filter_like)
   local codes = {}
   for code in pairs(OPS) do if code ~= 0x05 then codes[#codes + 1] = code end end
   table.sort(codes)
   if filter_like then
      codes = {0x20, 0x28, 0x30, 0x40, 0x48, 0x50, 0xb1, 0x15, 0x45, 0x54, 0x25, 0x87, 0x07, 0x01,
               0x74}
   end
   local ks = {0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15, 16, 20, 23, 31, 32, 33, 54, 60, 100,
               255, 256, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0x80000001,
               0xfffffffe, 0xffffffff, 0x800, 0x86dd, 0x8100, 0x1fff, 0xff00, 0xffff0000}
   if filter_like then -- fewer constants: values met again more often
      ks = {0, 6, 8, 14, 20, 0x800, 0x86dd, 0x1fff, 0xffff, 0x80000000, 0xffffffff}
   end
   -- libpcap 1.10.3's bpf_filter leaves its scratch memory uninitialised (pcap_compile never
   -- reads a word before storing it): M[0..3] are stored first, and only they are used.
   local insns = {}
   for i = 0, 3 do
      insns[#insns + 1] = {code = 0x00, jt = 0, jf = 0, k = ks[math.random(#ks)]}
      insns[#insns + 1] = {code = 0x02, jt = 0, jf = 0, k = i}
   end
   for i = #insns + 1, n - 1 do
      local code = codes[math.random(#codes)]
      local op = OPS[code]
      local k = ks[math.random(#ks)]
      if op[1] == "st" or op[1] == "stx" or op[2] == "mem" then k = math.random(0, 3) end
      if op[1] == "alu" and (op[2] == "div" or op[2] == "mod") and not op[3] and k == 0 then
         k = 3 -- (libpcap never emits a constant division by zero; bpf_filter would run it)
      end
      if op[1] == "ret" and math.random() < 0.7 then code, op = 0x15, OPS[0x15] end
      local jt, jf = 0, 0
      if op[1] == "jmp" then
         jt, jf = math.random(0, math.min(255, n - 1 - i)), math.random(0, math.min(255, n - 1 - i))
      end
      if math.random() < 0.05 then code, k = 0x05, math.random(0, n - 1 - i) end -- ja
      insns[i] = {code = code, jt = jt, jf = jf, k = k}
   end
   insns[n] = {code = 0x16, jt = 0, jf = 0, k = 0} -- ret a
   return insns
end

function M.selftest ()
   print("selftest: lib.pf.bpf")
   local ffi = require("ffi")
   local packets, files = packets_of_captures("tests/data/pcap")
   assert(#packets > 400 and files >= 20, "the captures of tests/data/pcap")
   -- Expressions against pcap_offline_filter.
   local compared, accepted = 0, 0
   for _, expr in ipairs(M.expressions) do
      local prog = assert(libpcap.compile(expr))
      local match = assert(M.compile(expr))
      compared = compared + over_packets(packets, function (p, caplen, wirelen)
         local want = libpcap.match(prog, p, caplen, wirelen)
         if match(p, caplen, wirelen) ~= want then
            error(format("%q on %d bytes (%d on the wire): libpcap %s\n%s", expr, caplen, wirelen,
                         want, M.source(expr)))
         end
         if want then accepted = accepted + 1 end
      end)
   end
   print(format("%d expressions, %d packets of %d captures: %d comparisons, %d accepted",
                #M.expressions, #packets, files, compared, accepted))
   assert(accepted > compared / 20 and accepted < compared / 2)
   -- The unoptimised programs too (longer, with every jump libpcap first makes).
   for _, expr in ipairs({"tcp port 80", "vlan and ip6", "ip6 protochain 6", "len * 3 > 200"}) do
      local prog = assert(libpcap.compile(expr, false))
      local match = assert(loadstring(M.translate(libpcap.instructions(prog))))()
      over_packets(packets, function (p, caplen, wirelen)
         assert(match(p, caplen, wirelen) == libpcap.match(prog, p, caplen, wirelen), expr)
      end)
   end
   -- Programs against bpf_filter, with the same instructions: on each packet, at its wire
   -- length and at 2^31 + 5. Returns the source and how many runs accepted.
   local some = {}
   for i = 1, #packets, 7 do some[#some + 1] = packets[i] end
   local runs = 0
   local function against_bpf_filter (insns, what)
      local code = ffi.new("struct snabb_bpf_insn[?]", #insns)
      for i, ins in ipairs(insns) do
         code[i - 1].code, code[i - 1].jt, code[i - 1].jf, code[i - 1].k = ins.code, ins.jt, ins.jf,
                                                                         ins.k
      end
      local source = M.translate(insns)
      local match = assert(loadstring(source))()
      local passed = 0
      over_packets(some, function (p, caplen, wirelen)
         for _, w in ipairs({wirelen, 0x80000005}) do
            local want = ffi.C.bpf_filter(code, p, w, caplen) ~= 0
            runs, passed = runs + 1, passed + (want and 1 or 0)
            if match(p, caplen, w) ~= want then
               local lines = {}
               for i, ins in ipairs(insns) do
                  lines[i] = format("%d: 0x%02x %d %d 0x%x", i - 1, ins.code, ins.jt, ins.jf, ins.k)
               end
               error(format("%s on %d bytes (wire %d): bpf_filter %s\n%s\n%s", what, caplen, w,
                            want, table.concat(lines, "\n"), source))
            end
         end
      end)
      return source, passed
   end
   -- By hand, where comparing the bytes as in memory is right or wrong: A from X after a load
   -- (txa), masked, used by a jgt on another path, or joined with a byte load.
   local function prog (...)
      local insns = {}
      for i, t in ipairs({...}) do insns[i] = {code = t[1], jt = t[2], jf = t[3], k = t[4]} end
      return insns
   end
   local ETHERTYPE = {0x28, 0, 0, 12}
   for _, insns in ipairs({
      prog({0x01, 0, 0, 0x800}, ETHERTYPE, {0x87, 0, 0, 0}, {0x15, 0, 1, 0x800}, {0x06, 0, 0, 1},
           {0x06, 0, 0, 0}),
      prog(ETHERTYPE, {0x54, 0, 0, 0xff00}, {0x15, 0, 1, 0x800}, {0x06, 0, 0, 1}, {0x06, 0, 0, 0}),
      prog(ETHERTYPE, {0x15, 1, 0, 0x800}, {0x25, 0, 1, 0x800}, {0x06, 0, 0, 1}, {0x06, 0, 0, 0}),
      prog(ETHERTYPE, {0x15, 0, 2, 0x800}, {0x30, 0, 0, 23}, {0x05, 0, 0, 0}, {0x15, 0, 1, 6},
           {0x06, 0, 0, 1}, {0x06, 0, 0, 0}),
      prog({0x20, 0, 0, 26}, {0x45, 0, 1, 0x80000000}, {0x06, 0, 0, 1}, {0x20, 0, 0, 26},
           {0x54, 0, 0, 0xffff0000}, {0x15, 0, 1, 0xc0a80000}, {0x06, 0, 0, 1}, {0x06, 0, 0, 0}),
   }) do
      against_bpf_filter(insns, "program by hand")
   end
   -- Random programs: any instruction, or what filters are made of.
   math.randomseed(19)
   runs = 0
   local programs, passed, raw16, raw32 = 0, 0, 0, 0
   for program = 1, 500 do
      local source, took = against_bpf_filter(random_program(math.random(10, 50),
                                                                 program > 300), "random program")
      if source:match("cast%(u16p, P %+ [^)]*%)%[0%]\n") then raw16 = raw16 + 1 end
      if source:match("cast%(i32p, P %+ [^)]*%)%[0%]\n") then raw32 = raw32 + 1 end
      programs, passed = programs + 1, passed + took
   end
   print(format("%d random programs agree with bpf_filter on %d packets: %d runs, %d accepted; "
                .. "%d and %d of them compare half words and words as in memory",
                programs, #some, runs, passed, raw16, raw32))
   assert(raw16 > 100 and raw32 > 50)
   assert(passed > runs / 10 and passed < runs * 0.9)
   -- A scratch word or X read unset by libpcap's optimised program: the unoptimised one
   -- translated (on the first, libpcap reads its stack: nonzero here, so true).
   local e = "not 1 != -len or len > 0 & 0"
   assert(reads_unset(libpcap.instructions(assert(libpcap.compile(e)))))
   assert(not reads_unset(libpcap.instructions(assert(libpcap.compile(e, false)))))
   assert(not reads_unset(libpcap.instructions(assert(libpcap.compile("ip[ip[0] % 4] = 69")))))
   local p60 = ffi.new("uint8_t[60]")
   assert(M.compile(e)(p60, 60) == true)
   e = "0 + len << 0 = 0 || ip src and dst 127.0.0.1 and len >= 1 / len"
   assert(reads_unset(libpcap.instructions(assert(libpcap.compile(e)))))
   local lo = ffi.new("uint8_t[60]") -- IPv4 127.0.0.1 to itself: len >= 1 / len holds
   lo[12], lo[14], lo[26], lo[29], lo[30], lo[33] = 8, 0x45, 127, 1, 127, 1
   assert(M.compile(e)(lo, 60) == true and not libpcap.match(libpcap.compile(e), lo, 60, 60))
   -- Errors are libpcap's, with the expression.
   local m, err = M.compile("tcp port")
   assert(m == nil and err == "'tcp port': can't parse filter expression: syntax error", err)
   m, err = M.compile(80)
   assert(m == nil and err == "filter expression must be a string", err)
   print("selftest: ok")
end

return M
