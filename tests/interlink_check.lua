-- tests/interlink_check.lua (run by interlink_test.sh): interlinks between worker processes of a
-- group (apps/interlink, core.group). This script plays the supervisor: it creates a group in DIR
-- (its argument) and starts core.worker processes that attach to it, each running a graph:
-- a counted source (exactly the packets the script allows) -> transmitter, or receiver -> a
-- counting sink. They report through a shared box of counters (DIR/box). It checks:
--   1. transmitter first: it fills the ring and its link and waits (no drop); the receiver, started
--      later, receives exactly what was sent;
--   2. receiver first, on another interlink: the same;
--   3. a second transmitter on a ring that has a live one is refused, naming the interlink;
--   4. the receiver of 2, killed (-9): the transmitter reports it (its peer_deaths counter, and a
--      line on stderr that interlink_test.sh checks); its replacement (same slot, reclaimed, same
--      ring) receives exactly what is sent after; the transmitter killed: the receiver reports it;
--   5. every packet the group carved is back in a free list once the workers are gone and
--      reclaimed (nothing lost, nothing freed twice).
-- It prints "transmitter PID", "receiver PID" for the processes whose deaths stderr must report.
local ffi = require("ffi")
local C = ffi.C
require("core.lib_h")
local group = require("core.group")
local worker = require("core.worker")
local ring = require("apps.interlink.ring")
local counter = require("core.counter")

local dir = assert(main.parameters[1], "usage: interlink_check.lua DIR")
local N, N2 = 200000, 50000

assert(group.create(dir, {workers = 5, packets = 20000}))
local box_t = "struct { int64_t limit[8], sent[8], received[8]; char error[512]; }"
local box = ffi.cast(box_t .. " *", C.snabb_shm_map(dir .. "/box", ffi.sizeof(box_t), 1, 0, 384, 448, -1))

-- The graph of worker `slot`: "tx" (counted source -> transmitter) or "rx" (receiver -> sink).
local function code (slot, role, name)
   return ([[
      local ffi, C = require("ffi"), require("ffi").C
      assert(require("core.group").attach(%q, %d))
      local slot, box_t = %d, %q
      local box = ffi.cast(box_t .. " *", C.snabb_shm_map(%q .. "/box", ffi.sizeof(box_t), 1, 0, 384, 448, -1))
      local Counted = {}
      function Counted:new () return setmetatable({sent = 0}, {__index = Counted}) end
      function Counted:pull ()
         local o = self.output.output
         local n = math.min(link.nwritable(o), tonumber(box.limit[slot]) - self.sent)
         for _ = 1, n do
            local p = packet.allocate()
            p.length = 60
            link.transmit(o, p)
         end
         self.sent = self.sent + n
         box.sent[slot] = self.sent
      end
      local Count = {}
      function Count:new () return setmetatable({}, {__index = Count}) end
      function Count:push ()
         local i = self.input.input
         local n = link.nreadable(i)
         for _ = 1, n do packet.free(link.receive(i)) end
         box.received[slot] = box.received[slot] + n
      end
      local c = config.new()
      if %q == "tx" then
         config.app(c, "source", Counted)
         config.app(c, "tx", require("apps.interlink.transmitter"), {name = %q})
         config.link(c, "source.output -> tx.input")
      else
         config.app(c, "rx", require("apps.interlink.receiver"), %q)
         config.app(c, "sink", Count)
         config.link(c, "rx.output -> sink.input")
      end
      local ok, err = pcall(engine.configure, c)
      if not ok then
         ffi.copy(box.error, tostring(err):sub(1, 511))
         os.exit(1)
      end
      engine.busywait = false
      engine.main()
   ]]):format(dir, slot, slot, box_t, dir, role, name, name)
end

local function wait_for (what, ready)
   local deadline = C.get_monotonic_time() + 60
   while not ready() do
      assert(C.get_monotonic_time() < deadline, "timed out waiting for " .. what)
      C.sleep_ns(2000000)
   end
end

local pids = {}
local function start (slot, role, name)
   local pid = worker.start("w" .. slot, code(slot, role, name))
   pids[#pids+1] = pid
   return pid
end

local function stopped (slot)
   worker.stop("w" .. slot)
   wait_for("worker " .. slot .. " to end", function () return not worker.status()["w" .. slot].alive end)
end

-- The counters the group's rings keep (in the group's directory).
local function stats (name) return ring.stats(dir .. "/interlink/" .. name) end
-- Gives back what dead worker `slot` had, less what is in the rings (as the supervisor does).
local function reclaim (slot)
   local entries, n = ring.in_flight(dir)
   return group.reclaim(dir, slot, {in_flight = entries, n_in_flight = n})
end

-- 1. The transmitter first: it fills the ring (and its input link) and waits.
box.limit[0] = N
local tx1 = start(0, "tx", "first")
wait_for("the transmitter to fill the ring", function ()
   local s = stats("first")
   return s and s.queued == ring.SIZE and box.sent[0] == ring.SIZE + C.LINK_RING_SIZE
end)
C.sleep_ns(100000000)
assert(box.sent[0] == ring.SIZE + C.LINK_RING_SIZE, "a transmitter without receiver pushes back")
local rx1 = start(1, "rx", "first")
wait_for("the receiver to get all", function () return box.received[1] >= N end)
local s = stats("first")
assert(box.sent[0] == N and box.received[1] == N and s.txpackets == N and s.rxpackets == N and
       s.queued == 0, ("sent %d, received %d, ring %d/%d"):format(
          tonumber(box.sent[0]), tonumber(box.received[1]), s.txpackets, s.rxpackets))
assert(s.tx_pid == tx1 and s.rx_pid == rx1)

-- 2. The receiver first, on another interlink.
local rx2 = start(3, "rx", "second")
wait_for("the receiver to attach", function () local t = stats("second") return t and t.rx_pid == rx2 end)
box.limit[2] = N
local tx2 = start(2, "tx", "second")
wait_for("the second receiver to get all", function () return box.received[3] >= N end)
s = stats("second")
assert(box.sent[2] == N and box.received[3] == N and s.txpackets == N and s.rxpackets == N)

-- 3. A second transmitter on "second", whose transmitter runs, is refused.
start(4, "tx", "second")
wait_for("the second transmitter to fail", function () return not worker.status().w4.alive end)
local err = ffi.string(box.error)
assert(err:find(("interlink 'second': it has a transmitter already (process %d)"):format(tx2), 1, true),
       err)
assert(stats("second").tx_pid == tx2, "the refused transmitter took nothing")

-- 4. The receiver killed: its transmitter reports it; its replacement gets what is sent after.
print("receiver " .. rx2)
io.stdout:flush()
stopped(3)
-- A counter of live process pid's run directory, by shm name (rundir.held_by: BASE/PID may be
-- another process's); nil until it has one.
local function counter_of (pid, path)
   local run = require("observe.rundir").held_by(pid)
   return run and ("/%s/%s"):format(run:match("[^/]+$"), path)
end
local deaths = function () return counter_of(tx2, "apps/tx/peer_deaths.counter") end
wait_for("the transmitter to count its receiver's death", function ()
   local ok, c = pcall(counter.open, deaths())
   return ok and counter.read(c) == 1ULL
end)
-- All it had goes back: its free list, and what its apps held (marked: runtime/group.h).
local held = group.stats(dir).workers[3]
local n, from = reclaim(3)
assert(n == held.held and from.free == held.free and held.held >= held.free,
       ("reclaimed %d (%d free), held %d (%d free)"):format(n, from.free, held.held, held.free))
box.received[3] = 0
local rx3 = start(3, "rx", "second")
wait_for("the replacement to attach", function () return stats("second").rx_pid == rx3 end)
box.limit[2] = N + N2
wait_for("the replacement to get the rest", function () return box.received[3] >= N2 end)
s = stats("second")
assert(box.received[3] == N2 and s.txpackets == N + N2 and s.rxpackets == N + N2 and
       s.rx_attaches == 2 and s.tx_attaches == 1, "the replacement got " .. tonumber(box.received[3]))
print("transmitter " .. tx2)
io.stdout:flush()
stopped(2)
wait_for("the receiver to log its transmitter's death", function ()
   local ok, c = pcall(counter.open, counter_of(rx3, "apps/rx/peer_deaths.counter"))
   return ok and counter.read(c) == 1ULL
end)

-- 5. Nothing lost: every packet carved is free once the workers are gone and reclaimed.
for _, slot in ipairs({0, 1, 3}) do stopped(slot) end
for slot = 0, 4 do reclaim(slot) end
local g = group.stats(dir)
assert(g.packets > 0 and g.free == g.packets and g.twice == 0,
       ("carved %d, free %d, twice %d"):format(g.packets, g.free, g.twice))
for slot = 0, 4 do assert(g.workers[slot].free == 0 and g.workers[slot].pid == 0) end
-- (Killed, the workers left their run directories: swept, those whose lock no process holds; by
-- PID, BASE/PID may be a live process's of another PID namespace, in Bazel's sandbox.)
require("observe.rundir").sweep()
print(("interlink_check: ok (%d packets carved, all free)"):format(g.packets))
