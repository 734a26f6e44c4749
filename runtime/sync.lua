-- core.sync: Snabb's synchronisation primitives for processes sharing memory (shm objects):
-- load, load64, cas, cas64 (true when dst held the expected value and now holds the new one),
-- lock and unlock (a spinlock on an int, 0 when free). C functions (runtime/sync.h) called as
-- Snabb's DynASM-made ones are: sync.cas(pointer, old, new).
local ffi = require("ffi")
require("core.runtime_cdefs")
local C = ffi.C

local M = {
   load = C.snabb_sync_load,
   load64 = C.snabb_sync_load64,
   cas = C.snabb_sync_cas,
   cas64 = C.snabb_sync_cas64,
   lock = C.snabb_sync_lock,
   unlock = C.snabb_sync_unlock,
}

function M.selftest ()
   print("selftest: core.sync")
   local box = ffi.new("struct { uint32_t pad1, state[1], pad2; }")
   for i = 1, 100 do
      box.state[0] = i
      assert(M.load(box.state) == i)
   end
   local box64 = ffi.new("struct { uint64_t pad1, state[1], pad2; }")
   box64.state[0] = 0x5555555555555555ULL
   assert(M.load64(box64.state) == 0x5555555555555555ULL)
   local word = ffi.new("struct { int pad1, state[1], pad2; }")
   assert(M.cas(word.state, 0, 1) and word.state[0] == 1)
   assert(not M.cas(word.state, 0, 2) and word.state[0] == 1)
   assert(M.cas(word.state, 1, -2) and word.state[0] == -2 and word.pad1 == 0 and word.pad2 == 0)
   box64.state[0] = 1
   assert(M.cas64(box64.state, 1, 0xffffffffffffffffULL) and box64.state[0] == 0xffffffffffffffffULL)
   assert(not M.cas64(box64.state, 1, 2) and box64.pad1 == 0 and box64.pad2 == 0)
   -- The spinlock, between this process and a child sharing its memory: each adds 100,000 to a
   -- counter, one add at a time under the lock, so none is lost.
   local shm = require("core.shm")
   require("core.clib_h") -- fork, sleep_ns
   require("core.lib_h")
   local s = shm.create("selftest/sync", "struct { int lock; int done; uint64_t n; }")
   local pid = C.fork()
   local function add ()
      for _ = 1, 100000 do
         M.lock(ffi.cast("int *", s))
         s.n = s.n + 1
         M.unlock(ffi.cast("int *", s))
      end
   end
   if pid == 0 then
      add()
      s.done = 1
      ffi.cdef("void _exit(int status);")
      C._exit(0)
   end
   add()
   while M.load(ffi.cast("uint32_t *", s) + 1) == 0 do C.sleep_ns(100000) end
   assert(s.n == 200000ULL, tostring(s.n))
   ffi.cdef("int waitpid(int pid, int *status, int options);")
   C.waitpid(pid, nil, 0)
   shm.unmap(s)
   shm.unlink("selftest")
   print("selftest: core.sync ok")
end

return M
