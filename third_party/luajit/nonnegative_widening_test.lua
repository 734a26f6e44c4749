-- Tests nonnegative-widening.patch in the LuaJIT that snabb links: a pointer plus an int that
-- cannot be negative (x & k, k >= 0; x >>> k, k > 0) compiles without widening the int (no
-- CONV in the loop; Debian's LuaJIT sign-extends it, a MOVSXD a packet before each load past an
-- IPv4 header); an int that may be negative is still widened, and every sum is right. Run as
-- `snabb nonnegative_widening_test.lua`.
local ffi = require("ffi")
local bit = require("bit")
local band, rshift, lshift, bxor = bit.band, bit.rshift, bit.lshift, bit.bxor
local compiled_ir = dofile((arg[0]:match("^(.*/)") or "") .. "compiled_ir.lua")

local buf = ffi.new("uint8_t[?]", 4096)
for i = 0, 4095 do buf[i] = bxor(i * 7, rshift(i, 3)) % 256 end

local IRT_I64 = 21 -- (lj_ir.h's IR types)

-- The CONVs to int64 after LOOP, and what the loop summed.
local function run (fn)
   local sum
   local ir = compiled_ir(function () sum = fn() end)
   local convs = 0
   for _, ins in ipairs(ir) do
      if ins.in_loop and ins.op == "CONV" and ins.type == IRT_I64 then convs = convs + 1 end
   end
   return convs, sum
end

-- The same sums, interpreted.
local function interpreted (fn)
   jit.off(fn)
   local sum = fn()
   jit.on(fn)
   return sum
end

local cases = {
   -- 4*(P[i]&15) past P+i: an IPv4 header's length.
   {"band", 0, function ()
      local sum = 0
      for i = 0, 2000 do
         local p = buf + i
         sum = sum + (p + lshift(band(p[0], 15), 2))[14]
      end
      return sum
   end},
   {"bshr", 0, function ()
      local sum = 0
      for i = 0, 2000 do
         sum = sum + (buf + rshift(i * 8 + buf[i], 3))[0]
      end
      return sum
   end},
   -- May be negative: widened.
   {"signed", 1, function ()
      local sum = 0
      for i = 0, 2000 do
         sum = sum + (buf + 2048 + (buf[i] - 128))[0]
      end
      return sum
   end},
}
for _, c in ipairs(cases) do
   local name, want, fn = c[1], c[2], c[3]
   local convs, sum = run(fn)
   assert(convs == want, ("%s: %d widenings in the loop, want %d"):format(name, convs, want))
   local isum = interpreted(fn)
   assert(sum == isum, ("%s: compiled sum %s, interpreted %s"):format(name, sum, isum))
end
print("nonnegative_widening_test: ok")
