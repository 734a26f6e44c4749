-- Tests constant-addresses.patch in the LuaJIT that snabb links: fields of a struct whose address
-- is a constant in a trace (a cdata pointer in an upvalue, like the packet free list) are told
-- apart by offset, so a store to one field no longer forces a reload of another of the same type.
-- Accesses through other constant pointers, exact or overlapping, must still be seen. Run as
-- `snabb constant_addresses_test.lua`.
local ffi = require("ffi")
local compiled_ir = dofile((arg[0]:match("^(.*/)") or "") .. "compiled_ir.lua")

local memory = ffi.new("int64_t[4]")
local s = ffi.cast("struct { int64_t count, limit; } *", memory) -- a constant in traces below

-- Runs fn; returns the XLOADs after the LOOP instruction of the traces compiled meanwhile.
local function loads_in_loops (fn)
   local ir, ntraces = compiled_ir(fn)
   assert(ntraces > 0, "nothing was compiled")
   local n = 0
   for _, ins in ipairs(ir) do
      if ins.in_loop and ins.op == "XLOAD" then n = n + 1 end
   end
   return n
end

-- Count up to the limit: the limit's load leaves the loop, though count (same type) is stored.
s.count, s.limit = 0, 1000
local n = loads_in_loops(function ()
   while s.count < s.limit do s.count = s.count + 1 end
end)
assert(s.count == 1000, "count reached " .. tostring(s.count))
assert(n == 0, ("the loop reloads the limit: %d loads in it"):format(n))

-- The same field through another constant pointer, and a store that overlaps it only in part: the
-- loads must see both. (All of one type: LuaJIT assumes, as C does, that types do not alias.)
local limit_too = ffi.cast("int64_t *", memory + 1)
local straddling = ffi.cast("int64_t *", ffi.cast("uint8_t *", memory) + 12) -- limit's top half
local sum_exact, sum_straddling = 0, 0
for i = 1, 1000 do
   limit_too[0] = i
   sum_exact = sum_exact + tonumber(s.limit)
   straddling[0] = 1 -- limit's top half becomes 1: limit is now i + 2^32
   sum_straddling = sum_straddling + tonumber(s.limit) - 2^32
end
assert(sum_exact == 500500, ("stores through another pointer missed: sum %d, want 500500"):format(
   sum_exact))
assert(sum_straddling == 500500, ("a straddling store broke the value: sum %d, want 500500"):format(
   sum_straddling))

print("constant addresses: fields told apart, stores through other pointers seen")
