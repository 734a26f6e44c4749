-- tools/bench-interlink.lua (run by tools/bench-interlink): 64-byte packets from a Source to a
-- sink, (a) in one worker process over an in-process link, (b) in two worker processes of a group
-- over an interlink (Source -> transmitter | receiver -> sink), each worker pinned to a core of its
-- own, in alternating rounds of the same run; prints each round's rates, the medians and their
-- ratio. The sink counts into shared memory, which this process samples after a warm-up.
-- Arguments: SECONDS (per run, default 3), ROUNDS (default 5).
local ffi = require("ffi")
local C = ffi.C
require("core.lib_h")
local group = require("core.group")
local lib = require("core.lib")
local worker = require("core.worker")
ffi.cdef("char *mkdtemp(char *template);")

local seconds = tonumber(main.parameters[1] or 3)
local rounds = tonumber(main.parameters[2] or 5)
local ncpu = tonumber(lib.readcmd("nproc", "*l"))
local WARMUP = 0.5

local template = ffi.new("char[?]", 64, "/tmp/snabb-bench-interlink-XXXXXX")
assert(C.mkdtemp(template) ~= nil)
local dir = ffi.string(template)
assert(group.create(dir, {workers = 2, packets = 200000}))
local box_t = "struct { int64_t received; int32_t stop; int32_t ready[2]; }"
local box = ffi.cast(box_t .. " *", C.snabb_shm_map(dir .. "/box", ffi.sizeof(box_t), 1, 0, 384, 448, -1))

-- A worker's code: pinned to cpu, in the group as slot (or not, slot nil), running part of the
-- graph ("all": source -> sink; "tx": source -> transmitter; "rx": receiver -> sink).
local function code (part, cpu, slot)
   return ([[
      local ffi, C = require("ffi"), require("ffi").C
      local part, cpu, slot = %q, %d, %s
      if slot then assert(require("core.group").attach(%q, slot)) end
      ffi.cdef("int sched_setaffinity(int pid, size_t size, const uint64_t *mask);")
      local mask = ffi.new("uint64_t[16]")
      mask[0] = bit.lshift(1ULL, cpu)
      assert(C.sched_setaffinity(0, ffi.sizeof(mask), mask) == 0)
      local box_t = %q
      local box = ffi.cast(box_t .. " *", C.snabb_shm_map(%q .. "/box", ffi.sizeof(box_t), 1, 0, 384, 448, -1))
      local basic = require("apps.basic.basic_apps")
      -- basic.Sink, counting into the box once a push.
      local Sink = {}
      function Sink:new () return setmetatable({}, {__index = Sink}) end
      function Sink:push ()
         local i = self.input.input
         local n = link.nreadable(i)
         for _ = 1, n do packet.free(link.receive(i)) end
         box.received = box.received + n
      end
      local c = config.new()
      if part ~= "rx" then config.app(c, "source", basic.Source, {size = 64}) end
      if part ~= "tx" then config.app(c, "sink", Sink) end
      if part == "all" then config.link(c, "source.output -> sink.input") end
      if part == "tx" then
         config.app(c, "tx", require("apps.interlink.transmitter"), "bench")
         config.link(c, "source.output -> tx.input")
      elseif part == "rx" then
         config.app(c, "rx", require("apps.interlink.receiver"), "bench")
         config.link(c, "rx.output -> sink.input")
      end
      engine.configure(c)
      box.ready[slot or 0] = 1
      engine.main({done = function () return box.stop ~= 0 end, no_report = true})
      engine.configure(config.new())
   ]]):format(part, cpu, tostring(slot), dir, box_t, dir)
end

-- (sleep_ns takes an int: at most 2.1 s at a time.)
local function sleep (s)
   local deadline = C.get_monotonic_time() + s
   while C.get_monotonic_time() < deadline do
      C.sleep_ns(math.min(deadline - C.get_monotonic_time(), 0.1) * 1e9)
   end
end

local function wait_for (ready)
   local deadline = C.get_monotonic_time() + 60
   while not ready() do
      assert(C.get_monotonic_time() < deadline, "a worker did not start")
      for name, s in pairs(worker.status()) do
         assert(s.alive or s.status == 0, ("worker %s failed (status %s)"):format(name, s.status))
      end
      C.sleep_ns(1000000)
   end
end

-- CPU seconds process pid has run (/proc/PID/stat: utime and stime, in 1/100 s).
local function cpu_seconds (pid)
   local f = assert(io.open(("/proc/%d/stat"):format(pid)))
   local stat = f:read("*a")
   f:close()
   local fields = {}
   for field in stat:match("%) (.*)$"):gmatch("%S+") do fields[#fields+1] = field end
   return (tonumber(fields[12]) + tonumber(fields[13])) / 100 -- fields 14 and 15 of the line
end

local run_id = 0
-- Starts the workers, samples the sink's count from WARMUP to WARMUP + seconds, stops them.
-- Returns Mpps.
local function run (workers)
   box.received, box.stop, box.ready[0], box.ready[1] = 0, 0, 0, 0
   local names, pids = {}, {}
   for i, w in ipairs(workers) do
      run_id = run_id + 1
      names[i] = "bench" .. run_id
      pids[i] = worker.start(names[i], code(w.part, w.cpu, w.slot))
   end
   local function cpu ()
      local least = math.huge
      for _, pid in ipairs(pids) do least = math.min(least, cpu_seconds(pid)) end
      return least
   end
   wait_for(function () return box.ready[0] == 1 and (#workers == 1 or box.ready[1] == 1) end)
   sleep(WARMUP)
   local t0, n0, c0 = C.get_monotonic_time(), box.received, cpu()
   sleep(seconds)
   local t1, n1, c1 = C.get_monotonic_time(), box.received, cpu()
   box.stop = 1
   wait_for(function ()
      local status = worker.status()
      for _, name in ipairs(names) do if status[name].alive then return false end end
      return true
   end)
   local entries, n = require("apps.interlink.ring").in_flight(dir)
   for _, w in ipairs(workers) do
      if w.slot then group.reclaim(dir, w.slot, {in_flight = entries, n_in_flight = n}) end
   end
   return tonumber(n1 - n0) / (t1 - t0) / 1e6, (c1 - c0) / (t1 - t0)
end

local one_cpu, other_cpu = ncpu - 1, math.max(ncpu - 2, 0)
-- Each run's share of its cores: the CPU time of its worker that ran least, over the time
-- measured. A two-worker run moves packets only while both workers run, so where other work
-- takes a core from either, this falls below 100% and the rate with it.
local rows, inproc, interlink = {}, {}, {}
local loadavg = lib.firstline("/proc/loadavg")
for r = 1, rounds do
   local share1, share2
   inproc[r], share1 = run({{part = "all", cpu = one_cpu}})
   interlink[r], share2 = run({{part = "tx", cpu = other_cpu, slot = 0},
                               {part = "rx", cpu = one_cpu, slot = 1}})
   rows[r] = {tostring(r), ("%.2f"):format(inproc[r]), ("%.0f%%"):format(100 * share1),
              ("%.2f"):format(interlink[r]), ("%.0f%%"):format(100 * share2),
              ("%.2f"):format(interlink[r] / inproc[r])}
end
io.write(lib.table_text({"round", "in-process Mpps", "cpu", "interlink Mpps", "cpu", "ratio"},
                        rows, {true, true, true, true, true, true}))
local mi, ml = lib.median(inproc), lib.median(interlink)
local g = group.stats(dir)
print(("medians of %d rounds of %g s, 64-byte packets: in-process link %.2f Mpps (1 worker, cpu %d), " ..
       "interlink %.2f Mpps (2 workers, cpus %d and %d): %.2fx"):format(
   rounds, seconds, mi, one_cpu, ml, other_cpu, one_cpu, ml / mi))
print(("load average before: %s; after: %s"):format(loadavg, lib.firstline("/proc/loadavg")))
print(("group: %d packets carved, %d free after the runs (%s)"):format(
   g.packets, g.free, g.hugetlb and "hugetlbfs" or "shared memory, MADV_COLLAPSE"))
C.snabb_shm_unlink(dir)
