-- A script whose address space is capped just above what it uses: the packet pool cannot map its
-- next chunk, and the error says so (not "C++ exception" from inside the FFI call).
local ffi = require("ffi")
local packet = require("core.packet")
ffi.cdef("struct rlimit_as { unsigned long cur, max; }; int setrlimit(int, const struct rlimit_as *);")
local RLIMIT_AS = 9
local statm = io.open("/proc/self/statm")
local size = statm:read("*n") * 4096
statm:close()
assert(ffi.C.setrlimit(RLIMIT_AS, ffi.new("struct rlimit_as", size + 16e6, size + 16e6)) == 0)
for _ = 1, 1e6 do packet.allocate() end -- line 11: grows the pool until it cannot
