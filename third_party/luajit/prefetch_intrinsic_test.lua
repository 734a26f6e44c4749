-- Tests prefetch-intrinsic.patch in the LuaJIT that snabb links: a compiled call of
-- prefetch_for_write (core.lib_h's, runtime/clib.h) is one PREFW instruction (PREFETCHW), not a
-- call, and prefetch_for_read one PREFR (PREFETCHT0); another function of the same type is still
-- a call; both run interpreted. Run as `snabb prefetch_intrinsic_test.lua`.
local ffi = require("ffi")
require("core.lib_h")
local C = ffi.C
local compiled_ir = dofile((arg[0]:match("^(.*/)") or "") .. "compiled_ir.lua")

local buf = ffi.new("uint8_t[?]", 65536)

-- The loop's instructions after LOOP: how many PREFW, PREFR and CALLXS.
local function count (fn)
   local prefw, prefr, calls = 0, 0, 0
   for _, ins in ipairs(compiled_ir(fn)) do
      if ins.in_loop and ins.op == "PREFW" then prefw = prefw + 1 end
      if ins.in_loop and ins.op == "PREFR" then prefr = prefr + 1 end
      if ins.in_loop and ins.op == "CALLXS" then calls = calls + 1 end
   end
   return prefw, prefr, calls
end

local sum = 0
local prefw, prefr, calls = count(function ()
   for i = 0, 10000 do
      C.prefetch_for_write(buf + (i * 64) % 65536)
      sum = sum + buf[(i * 64) % 65536]
   end
end)
assert(prefw == 1 and prefr == 0 and calls == 0,
       ("prefetch_for_write: %d PREFW, %d PREFR, %d calls"):format(prefw, prefr, calls))

prefw, prefr, calls = count(function ()
   for i = 0, 10000 do
      C.prefetch_for_read(buf + (i * 64) % 65536)
      sum = sum + buf[(i * 64) % 65536]
   end
end)
assert(prefw == 0 and prefr == 1 and calls == 0,
       ("prefetch_for_read: %d PREFW, %d PREFR, %d calls"):format(prefw, prefr, calls))

-- Another function that takes one pointer and returns nothing is still a call.
require("core.sync")
local lock = ffi.new("int[1]")
prefw, prefr, calls = count(function ()
   for _ = 0, 10000 do C.snabb_sync_unlock(lock) end
end)
assert(prefw == 0 and prefr == 0 and calls == 1,
       ("snabb_sync_unlock: %d PREFW, %d PREFR, %d calls"):format(prefw, prefr, calls))

-- Interpreted, it is the C function.
jit.off()
C.prefetch_for_write(buf)
C.prefetch_for_read(buf)
jit.on()
assert(sum == 0)
print("prefetch_intrinsic_test: ok")
