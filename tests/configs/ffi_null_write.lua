-- An app that writes through a NULL pointer with the FFI, for the crash report test
-- (tests/safety_test.sh): snabb run ffi_null_write.lua [compiled|ccall]. Interpreted, its third
-- pull writes to address 0 (line 17); compiled, the write is in a loop the JIT has compiled
-- (line 20); ccall: that loop calls memset, which writes (line 22).
local ffi = require("ffi")
ffi.cdef("void *memset(void *s, int c, size_t n);")
local mode = ...
local cell = ffi.new("int[1]")
local targets = ffi.new("int *[?]", 1000) -- all point at cell but the last, which is NULL
for i = 0, 998 do targets[i] = cell end
local Crash = {}
function Crash.new () return setmetatable({calls = 0}, {__index = Crash}) end
function Crash:pull ()
   self.calls = self.calls + 1
   if mode == nil or mode == "interpreted" then
      if self.calls == 3 then
         ffi.cast("int *", 0)[0] = 1
      end
   elseif mode == "compiled" then
      for i = 0, 999 do targets[i][0] = i end
   else
      for i = 0, 999 do ffi.C.memset(targets[i], 0, 4) end
   end
end
local c = config.new()
config.app(c, "crasher", Crash)
return c
