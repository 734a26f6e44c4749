-- The seed of the auditlog fuzz target (programs/BUILD runs `snabb -a SEED this.lua`): loops that
-- compile, a branch that gets a side trace, a closure that aborts (NYI: FNEW) long enough for
-- LuaJIT to blacklist its loop (trace_abort's blacklisted), numbers, strings and a 64-bit constant
-- in the IR, so the seed holds every kind of record.
local ffi = require("ffi")
local function work (n)
   local s, u = 0, ffi.new("uint64_t", 0)
   for i = 1, n do
      if i % 4 == 0 then s = s + 2.5 else s = s + 1 end
      u = u + 0x100000000ULL
   end
   return s, u
end
local names = {}
for i = 1, 200 do names[i % 7 + 1] = ("k%d"):format(i) end
for _ = 1, 100 do work(100) end
for i = 1, 100000 do local f = function () return i end f() end
return names
