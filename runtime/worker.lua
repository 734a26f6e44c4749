-- core.worker: Snabb's worker processes. worker.start(name, luacode) runs luacode in a fresh snabb
-- process (runtime/worker.h: this binary executed again, the code in SNABB_PROGRAM_LUACODE, which
-- programs/main.lua runs with the globals set, as a script), which the kernel ends when this
-- process dies; stop(name) kills it; status() says which run and what ended them (exit status,
-- signal); set_cpu(cpu) pins this process. A worker's shm objects are in its own run directory,
-- found by its PID (/PID/NAME). `snabb run` with several graphs (programs/run/supervisor.lua)
-- runs each in a worker of this module, pinned, their packets in a group's shared memory.
local ffi = require("ffi")
require("core.runtime_cdefs")
local C = ffi.C

ffi.cdef("int kill(int pid, int sig);")

local M = {}

local workers = {} -- name -> {pid, status (once ended)}

local function worker (name)
   return workers[name] or error(("worker: no worker '%s'"):format(tostring(name)), 3)
end

-- Starts worker name running luacode (a Lua chunk, as a string). Returns its PID.
function M.start (name, luacode)
   -- A number is a name too (Snabb's lib.ptree names its workers by number).
   if (type(name) ~= "string" and type(name) ~= "number") or type(luacode) ~= "string" then
      error("worker.start: needs a name (a string or number) and Lua code (a string)", 2)
   end
   local fn, err = loadstring(luacode, "=worker " .. name)
   if not fn then error(("worker.start: worker '%s': %s"):format(name, err), 2) end
   local pid = C.snabb_worker_start(("[snabb worker '%s' for %d]"):format(name, C.getpid()), luacode)
   if pid < 0 then error("worker.start: " .. ffi.string(C.snabb_error()), 2) end
   workers[name] = {pid = pid}
   return pid
end

-- Kills worker name (SIGKILL).
function M.stop (name)
   C.kill(worker(name).pid, 9)
end

-- name -> {pid, alive, status (the exit status, or 128 + signal, once it has ended), signal (the
-- name of the signal that ended it: "SIGKILL"; nil when it exited)}.
function M.status ()
   local result = {}
   local status, signo = ffi.new("int[1]"), ffi.new("int[1]")
   for name, w in pairs(workers) do
      if w.status == nil then
         local r = C.snabb_worker_status(w.pid, status, signo)
         if r == 0 then
            w.status = status[0]
            w.signal = signo[0] > 0 and ffi.string(C.snabb_worker_signal_name(signo[0])) or nil
         elseif r < 0 then
            w.status = -1
         end
      end
      result[name] = {pid = w.pid, alive = w.status == nil, status = w.status, signal = w.signal}
   end
   return result
end

-- Pins this process to CPU cpu (a number from 0): true, or nil and a message.
function M.set_cpu (cpu)
   if C.snabb_worker_set_cpu(cpu) ~= 0 then return nil, ffi.string(C.snabb_error()) end
   return true
end

-- Whether this process may run on CPU cpu (its affinity mask allows it).
function M.cpu_allowed (cpu) return C.snabb_worker_cpu_allowed(cpu) == 1 end

function M.selftest ()
   print("selftest: core.worker")
   ffi.cdef("int getpid(void);")
   local shm = require("core.shm")
   -- Each worker writes a counter in its run directory; this process reads it there, found by the
   -- worker's PID (rundir.held_by: BASE/PID may be another process's).
   local rundir = require("observe.rundir")
   local function dir_of (pid)
      local dir = rundir.held_by(pid)
      return dir and dir:match("[^/]+$")
   end
   local pids = {}
   for i = 1, 3 do
      pids[i] = M.start("w" .. i, ([[
         local counter = require("core.counter")
         local c = counter.create("selftest/worker.counter", %d)
         counter.commit()
         while true do require("ffi").C.sleep_ns(1000000) end
      ]]):format(i * 10))
   end
   for i = 1, 3 do
      local deadline = C.get_monotonic_time() + 30
      local dir = dir_of(pids[i])
      while not dir and C.get_monotonic_time() < deadline do
         C.sleep_ns(10000000)
         dir = dir_of(pids[i])
      end
      local name = ("/%s/selftest/worker.counter"):format(assert(dir, "no run directory of a worker"))
      while not shm.exists(name) and C.get_monotonic_time() < deadline do C.sleep_ns(10000000) end
      local c = require("core.counter").open(name)
      while c.c == 0ULL and C.get_monotonic_time() < deadline do C.sleep_ns(10000000) end
      assert(c.c == i * 10ULL, ("worker %d's counter: %s"):format(i, tostring(c.c)))
   end
   for name, s in pairs(M.status()) do assert(s.alive, name) end
   M.stop("w1")
   M.stop("w2")
   local deadline = C.get_monotonic_time() + 30
   while M.status().w1.alive and C.get_monotonic_time() < deadline do C.sleep_ns(1000000) end
   while M.status().w2.alive and C.get_monotonic_time() < deadline do C.sleep_ns(1000000) end
   local s = M.status()
   assert(not s.w1.alive and s.w1.status == 128 + 9 and not s.w2.alive and s.w3.alive)
   assert(s.w1.signal == "SIGKILL" and s.w3.signal == nil)
   M.stop("w3")
   while M.status().w3.alive and C.get_monotonic_time() < deadline do C.sleep_ns(1000000) end
   -- Killed, they left their run directories: swept here (those whose lock no process holds; by
   -- name, BASE/PID could be another live process's, and was: a sandboxed test's, in CI).
   rundir.sweep()
   -- A worker that fails to run its code exits with a status; bad code is refused at start.
   -- (named by a number, as lib.ptree names its workers)
   M.start(404, "error('worker failed on purpose')")
   deadline = C.get_monotonic_time() + 30
   while M.status()[404].alive and C.get_monotonic_time() < deadline do C.sleep_ns(1000000) end
   assert(M.status()[404].status == 1 and M.status()[404].signal == nil, tostring(M.status()[404].status))
   assert(M.cpu_allowed(0) and not M.cpu_allowed(-1) and not M.cpu_allowed(1e6))
   assert(not pcall(M.start, "x", "this is not Lua"))
   assert(not pcall(M.stop, "nobody"))
   print("selftest: core.worker ok")
end

return M
