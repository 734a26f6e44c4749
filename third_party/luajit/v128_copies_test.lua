-- Tests v128-copies.patch in the LuaJIT that snabb links: compiled copies move 16 bytes at a time
-- (IR type V128) and move every byte right. Run as `snabb v128_copies_test.lua`.
local ffi = require("ffi")
local vmdef = require("jit.vmdef")
local jutil = require("jit.util")
local band, rshift = bit.band, bit.rshift

local IRT_V128 = 24 -- lj_ir.h: after SOFTFP

ffi.cdef([[
typedef uint8_t test_v128 __attribute__((vector_size(16)));
typedef struct { test_v128 a, b, c, d; } test_line;
]])
local line_ptr_t = ffi.typeof("test_line *")
local line_t = ffi.typeof("test_line")

-- Traces compiled while fn runs, and how many of their XLOADs and XSTOREs are 16-byte moves.
local function v128_moves (fn)
   local traces = {}
   local function on_trace (what, tr) if what == "stop" then traces[#traces + 1] = tr end end
   jit.attach(on_trace, "trace")
   fn()
   jit.attach(on_trace)
   local moves = 0
   for _, tr in ipairs(traces) do
      for ins = 1, jutil.traceinfo(tr).nins - 1 do
         local _, ot = jutil.traceir(tr, ins)
         local name = vmdef.irnames:sub(6 * rshift(ot, 8) + 1, 6 * rshift(ot, 8) + 5)
         if (name == "XLOAD" or name == "XSTOR") and band(ot, 31) == IRT_V128 then
            moves = moves + 1
         end
      end
   end
   return moves
end

local SIZE = 512
local src = ffi.new("uint8_t[?]", SIZE)
local dst = ffi.new("uint8_t[?]", SIZE)
for i = 0, SIZE - 1 do src[i] = (i * 151 + 7) % 256 end

-- dst[at, at+len) must equal src[from, from+len), and the bytes around it must be untouched (0xee).
local function check (what, at, from, len)
   for i = 0, SIZE - 1 do
      local want = (i >= at and i < at + len) and src[from + i - at] or 0xee
      if dst[i] ~= want then
         error(("%s: byte %d is %d, want %d"):format(what, i, dst[i], want), 2)
      end
   end
end

-- ffi.copy of every constant length from 1 to 128 (the JIT's limit for an inlined copy), at odd
-- addresses, the source's changing: each length is its own function so that the length is a constant in its trace.
local widened = 0
for len = 1, 128 do
   local copy_n = loadstring(([[
      local ffi, dst, src = ...
      for i = 1, 1000 do ffi.copy(dst + 7, src + (i %% 5) + 3, %d) end
   ]]):format(len))
   ffi.fill(dst, SIZE, 0xee)
   local moves = v128_moves(function () copy_n(ffi, dst, src) end)
   check(("ffi.copy of %d bytes"):format(len), 7, 1000 % 5 + 3, len)
   if (moves > 0) ~= (len >= 16) then
      error(("ffi.copy of %d bytes compiled with %d 16-byte moves"):format(len, moves))
   end
   widened = widened + (moves > 0 and 1 or 0)
end

-- A struct of 16-byte vectors assigned as a whole: four 16-byte loads and stores, at every
-- alignment (one trace, compiled in the first round).
local struct_moves = 0
for misalign = 0, 15 do
   ffi.fill(dst, SIZE, 0xee)
   struct_moves = struct_moves + v128_moves(function ()
      for i = 0, 299 do
         local at = 64 * (i % 4) + misalign
         ffi.cast(line_ptr_t, dst + at)[0] = ffi.cast(line_ptr_t, src + 64 * (i % 5) + misalign)[0]
      end
   end)
   for k = 0, 3 do
      local from = 64 * ((296 + k) % 5) + misalign
      for i = 0, 63 do
         local got, want = dst[64 * k + misalign + i], src[from + i]
         if got ~= want then
            error(("struct copy, misaligned by %d: line %d byte %d is %d, want %d"):format(
               misalign, k, i, got, want))
         end
      end
   end
end
assert(struct_moves >= 8, ("struct copy compiled with %d 16-byte moves, want 8"):format(struct_moves))

-- A copy into a new object, read after the trace exits: the object cannot be sunk (a snapshot
-- cannot replay a 16-byte store), so its contents must be there when the interpreter looks.
local seen = 0
for i = 1, 300 do
   local line = line_t(ffi.cast(line_ptr_t, src + 64 * (i % 7))[0])
   if i % 50 == 0 then -- a side exit
      local bytes = ffi.cast("uint8_t *", line)
      for j = 0, 63 do assert(bytes[j] == src[64 * (i % 7) + j], "copy into a new object") end
      seen = seen + 1
   end
end
assert(seen == 6)

print(("v128 copies: %d of 128 ffi.copy lengths compiled with 16-byte moves, all bytes right"):format(
   widened))
