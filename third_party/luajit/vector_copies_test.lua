-- Tests vector-copies.patch in the LuaJIT that snabb links: compiled copies move 16 bytes at a time
-- (IR type V128), or 32 with AVX2 (V256), and every byte arrives. Run as
-- `snabb vector_copies_test.lua`.
local ffi = require("ffi")
local compiled_ir = dofile((arg[0]:match("^(.*/)") or "") .. "compiled_ir.lua")

local IRT_V128, IRT_V256 = 24, 25 -- lj_ir.h: after SOFTFP

local avx2 = false
for _, feature in ipairs({select(2, jit.status())}) do avx2 = avx2 or feature == "AVX2" end

ffi.cdef([[
typedef uint8_t test_v128 __attribute__((vector_size(16)));
typedef uint8_t test_v256 __attribute__((vector_size(32)));
typedef struct { test_v128 a, b, c, d; } test_line16;
typedef struct { test_v256 a, b; } test_line32;
typedef struct { test_v256 a, b, c, d; } test_lines32;
]])

-- Runs fn; returns the 16- and 32-byte loads and stores in the traces compiled meanwhile.
local function vector_moves (fn)
   local moves = {[IRT_V128] = 0, [IRT_V256] = 0}
   for _, ins in ipairs(compiled_ir(fn)) do
      if (ins.op == "XLOAD" or ins.op == "XSTORE") and moves[ins.type] then
         moves[ins.type] = moves[ins.type] + 1
      end
   end
   return moves[IRT_V128], moves[IRT_V256]
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
-- addresses, the source's changing: each length is its own function so that the length is a
-- constant in its trace. 32-byte steps first with AVX2, then 16, then 8, 4, 2 and 1.
local wide = 0
for len = 1, 128 do
   local copy_n = loadstring(([[
      local ffi, dst, src = ...
      for i = 1, 1000 do ffi.copy(dst + 7, src + (i %% 5) + 3, %d) end
   ]]):format(len))
   ffi.fill(dst, SIZE, 0xee)
   local v128, v256 = vector_moves(function () copy_n(ffi, dst, src) end)
   check(("ffi.copy of %d bytes"):format(len), 7, 1000 % 5 + 3, len)
   local want256 = avx2 and len >= 32
   local want128 = len >= 16 and not (avx2 and len % 32 < 16)
   if (v256 > 0) ~= want256 or (v128 > 0) ~= want128 then
      error(("ffi.copy of %d bytes compiled with %d 16-byte and %d 32-byte moves"):format(
         len, v128, v256))
   end
   wide = wide + ((v128 + v256 > 0) and 1 or 0)
end

-- Structs of vectors assigned as a whole, at every alignment (each loop is one trace, compiled in
-- the first round). test_lines32 is 128 bytes: four 32-byte values live at once, so the upper
-- halves may be cleared only after the last store.
for _, case in ipairs({{"test_line16", IRT_V128, 8}, {"test_line32", IRT_V256, avx2 and 4 or 0},
                       {"test_lines32", IRT_V256, avx2 and 8 or 0}}) do
   local ctype, irt, want_moves = case[1], case[2], case[3]
   local ptr_t, size = ffi.typeof(ctype .. " *"), ffi.sizeof(ctype)
   local lines = math.floor((SIZE - 16) / size)
   local moves = 0
   for misalign = 0, 15 do
      ffi.fill(dst, SIZE, 0xee)
      local v128, v256 = vector_moves(function ()
         for i = 0, 299 do
            ffi.cast(ptr_t, dst + size * (i % lines) + misalign)[0] =
               ffi.cast(ptr_t, src + size * ((i + 1) % lines) + misalign)[0]
         end
      end)
      moves = moves + (irt == IRT_V128 and v128 or v256)
      for k = 0, lines - 1 do
         local from = size * ((k + 1) % lines) + misalign
         for i = 0, size - 1 do
            local got, want = dst[size * k + misalign + i], src[from + i]
            if got ~= want then
               error(("%s copy, misaligned by %d: element %d byte %d is %d, want %d"):format(
                  ctype, misalign, k, i, got, want))
            end
         end
      end
   end
   if (moves > 0) ~= (want_moves > 0) or moves < want_moves then
      error(("%s copy compiled with %d vector moves, want %d"):format(ctype, moves, want_moves))
   end
end

-- Doubles held in registers across 32-byte copies keep their value.
local sum, step = 0.0, 0.25
for i = 1, 1000 do
   ffi.cast("test_line32 *", dst)[0] = ffi.cast("test_line32 *", src + i % 7)[0]
   sum = sum + step * i
end
assert(sum == 0.25 * 500500, "a double changed across a 32-byte copy")

-- Register pressure: 15 doubles live across a 128-byte copy, more than the 16 vector registers
-- hold, so values are spilled (here the copy's own vectors, to 32-byte slots) and restored.
local a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15 =
   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
local lines_ptr_t = ffi.typeof("test_lines32 *")
for i = 1, 1000 do
   local x = i * 0.5
   a1, a2, a3, a4, a5 = a1 + x, a2 + 2 * x, a3 + 3 * x, a4 + 4 * x, a5 + 5 * x
   a6, a7, a8 = a6 + 6 * x, a7 + 7 * x, a8 + 8 * x
   ffi.cast(lines_ptr_t, dst + (i % 3) * 128)[0] = ffi.cast(lines_ptr_t, src + (i % 2) * 128)[0]
   a9, a10, a11, a12 = a9 + 9 * x, a10 + 10 * x, a11 + 11 * x, a12 + 12 * x
   a13, a14, a15 = a13 + 13 * x, a14 + 14 * x, a15 + 15 * x
end
local half = 0.5 * 500500
for k, a in ipairs({a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15}) do
   assert(a == k * half, ("accumulator %d is %s, want %s"):format(k, a, k * half))
end
for k = 0, 2 do
   local from = ((1000 - (1000 - k) % 3) % 2) * 128 -- the last i with i % 3 == k
   for j = 0, 127 do
      assert(dst[k * 128 + j] == src[from + j], ("under pressure: line %d byte %d"):format(k, j))
   end
end

-- A copy into a new object, read after the trace exits: the object cannot be sunk (a snapshot
-- cannot replay a vector store), so its contents must be there when the interpreter looks.
local line_t = ffi.typeof("test_line16")
local seen = 0
for i = 1, 300 do
   local line = line_t(ffi.cast("test_line16 *", src + 64 * (i % 7))[0])
   if i % 50 == 0 then -- a side exit
      local bytes = ffi.cast("uint8_t *", line)
      for j = 0, 63 do assert(bytes[j] == src[64 * (i % 7) + j], "copy into a new object") end
      seen = seen + 1
   end
end
assert(seen == 6)

print(("vector copies (%s): %d of 128 ffi.copy lengths compiled with vector moves, all bytes right")
   :format(avx2 and "AVX2: 32 and 16 bytes" or "16 bytes", wide))
