-- Snabb-style code using timers, counters and shared memory as Snabb documents them (core.timer,
-- core.counter, core.shm, an app's shm frame), run by tests/snabb_api_test.sh once this build has
-- core.timer (helper "core" of issue 17 brings those modules).
-- luacheck: allow defined top, ignore 131 (Snabb-style module: its functions are globals)
module(..., package.seeall)

local timer = require("core.timer")
local counter = require("core.counter")
local shm = require("core.shm")
local compat_apps = require("compat_apps")

-- Counts what it receives in a counter of its shm frame (apps/NAME/rxpackets.counter).
Counted = {}
function Counted:new ()
   return setmetatable({shm = {rxpackets = {counter}, started = {counter, 5}}}, {__index = Counted})
end
function Counted:push ()
   local i = self.input.input
   while not link.empty(i) do
      packet.free(link.receive(i))
      counter.add(self.shm.rxpackets)
   end
end

function selftest ()
   print("selftest: compat_core")
   -- A repeating timer, run by engine.main between breaths.
   local fired = 0
   timer.activate(timer.new("compat", function () fired = fired + 1 end, 1e6, "repeating"))
   local c = config.new()
   config.app(c, "one", compat_apps.Once, 5)
   config.app(c, "counted", Counted)
   config.link(c, "one.output -> counted.input")
   engine.configure(c)
   local app = engine.app_table.counted
   engine.main({done = function () return fired >= 3 end, no_report = true})
   assert(counter.read(app.shm.rxpackets) == 5 and counter.read(app.shm.started) == 5)
   assert(counter.read(engine.link_table["one.output -> counted.input"].stats.txpackets) == 5)
   assert(shm.exists("apps/counted/rxpackets.counter"))
   engine.stop()
   assert(not shm.exists("apps/counted/rxpackets.counter"), "the frame goes with the app")

   -- Counters and shared memory by hand.
   local k = counter.create("compat/k.counter", 3)
   counter.add(k, 2)
   assert(counter.read(k) == 5)
   counter.set(k, 9)
   counter.commit()
   assert(counter.read(k) == 9)
   counter.delete("compat/k.counter")
   local x = shm.create("compat/x", "struct { uint64_t n; }")
   x.n = 42
   local y = shm.open("compat/x", "struct { uint64_t n; }", "read-only")
   assert(y.n == 42)
   shm.unmap(y)
   shm.unmap(x)
   shm.unlink("compat/x")
   assert(not shm.exists("compat/x"))

   -- RaptorJIT's jit.vmprofile, as Snabb's lib.scheduling switches it: a zone, samples, stop.
   local path = os.tmpname()
   jit.vmprofile.open(path)
   local spun, deadline = 0, os.clock() + 0.3
   while os.clock() < deadline do spun = bit.bxor(spun, 7) end
   jit.vmprofile.stop()
   local samples = 0
   for _, n in pairs(jit.vmprofile.read(path).total) do samples = samples + n end
   os.remove(path)
   assert(samples > 0, "jit.vmprofile: no samples in 0.3 s of CPU")
   print("selftest: compat_core ok")
end
