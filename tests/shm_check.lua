-- tests/shm_check.lua: the two sides of tests/shm_test.sh, Snabb-style code sharing counters and a
-- histogram through core.shm between processes.
--   snabb shm_check.lua writer   makes them, prints its PID and the counter's path, then for each
--                                line read: adds to the counter and commits ("more"), or
--                                main.exit ("exit": commits first)
--   snabb shm_check.lua reader PID   prints what process PID's objects hold, found by PID
local counter = require("core.counter")
local histogram = require("core.histogram")
local shm = require("core.shm")
local ffi = require("ffi")

local role, pid = main.parameters[1], main.parameters[2]
if role == "writer" then
   ffi.cdef("int getpid(void);")
   local c = counter.create("test/packets.counter", 41)
   counter.add(c)
   local frame = shm.create_frame("test/app", {rx = {counter}, latency = {histogram, 1, 1000}})
   counter.add(frame.rx, 7)
   frame.latency:add(10)
   frame.latency:add(500)
   counter.commit()
   print(ffi.C.getpid(), shm.path("test/packets.counter"))
   io.stdout:flush()
   for line in io.lines() do
      if line == "more" then
         counter.add(c, 8)
         counter.add(frame.rx) -- not committed until the next commit
         counter.commit()
         counter.add(frame.rx, 100)
         print("committed")
         io.stdout:flush()
      elseif line == "exit" then
         main.exit(3)
      end
   end
elseif role == "reader" then
   local c = counter.open(("/%s/test/packets.counter"):format(pid))
   local frame = shm.open_frame(("/%s/test/app"):format(pid))
   local lo, _, hi = frame.latency:summarize()
   print(("packets %s rx %s latency %d %s %s"):format(tostring(counter.read(c)),
      tostring(counter.read(frame.rx)), tonumber(frame.latency.total), lo <= 10, hi >= 500))
else
   error("usage: snabb shm_check.lua writer | reader PID (the run directory's name: PID or PID-N)")
end
