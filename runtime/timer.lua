-- core.timer: Snabb's timers. A timer (timer.new) calls fn(timer) once its delay has passed, once
-- or, 'repeating', every delay; activate() schedules it, cancel() takes it off. Time goes in ticks
-- of ns_per_tick (1 ms) on the monotonic clock (get_time_ns): a timer's delay is rounded up to
-- whole ticks, and due timers run when run() is called, in the order of their ticks, then of
-- activation. The engine calls run() between its slices of at most a millisecond, as Snabb's does
-- every breath; the global `timer` is this module. The wheel is a table of tick -> timers due then
-- (Snabb's layout, also its fields: ticks, ns_per_tick, timers, so code that drives the clock by
-- hand with run_to_time, as Snabb's ptree does, works). One difference: a timer activated for the
-- current tick from inside a timer's fn runs at the next run() (Snabb's loses it).
local ffi = require("ffi")
require("core.lib_h")
local C = ffi.C
local floor, ceil = math.floor, math.ceil

local M = {}

M.ticks = false     -- the current tick; false until a timer is first activated
M.ns_per_tick = 1e6 -- one tick: a millisecond
M.timers = {}       -- tick -> {timer, ...} due at that tick

-- Snabb's timer.init() is gone in Snabb too (the module starts itself); say so.
function M.init ()
   error("timer.init() is gone: the timer module starts by itself", 2)
end

-- A timer: fn(timer) after nanos (rounded up to whole ticks); mode 'repeating' runs it every nanos.
function M.new (name, fn, nanos, mode)
   if type(fn) ~= "function" then
      error(("timer.new: timer '%s' needs a function, got %s"):format(tostring(name), type(fn)), 2)
   end
   if type(nanos) ~= "number" or nanos < 0 then
      error(("timer.new: timer '%s' needs a delay in nanoseconds >= 0, got %s")
               :format(tostring(name), tostring(nanos)), 2)
   end
   return {name = name, fn = fn, ticks = ceil(nanos / M.ns_per_tick), repeating = mode == "repeating"}
end

-- Schedules timer t to run t.ticks ticks from now. An active timer cannot be activated again.
function M.activate (t)
   assert(t.next_tick == nil, "timer already activated")
   if not M.ticks then M.ticks = floor(tonumber(C.get_time_ns()) / M.ns_per_tick) end
   local tick = M.ticks + t.ticks
   local due = M.timers[tick]
   if due then due[#due+1] = t else M.timers[tick] = {t} end
   t.next_tick = tick
end

-- Takes timer t off the wheel; true when it was active. (A timer due in the tick being run is in
-- no list any more: clearing next_tick is what keeps it from running.)
function M.cancel (t)
   local tick = t.next_tick
   if tick == nil then return nil end
   local due = M.timers[tick]
   for i = 1, due and #due or 0 do
      if due[i] == t then
         table.remove(due, i)
         if #due == 0 then M.timers[tick] = nil end
         break
      end
   end
   t.next_tick = nil
   return true
end

-- Runs the timers due up to time ns (monotonic nanoseconds), tick by tick.
function M.run_to_time (ns)
   local last = floor(tonumber(ns) / M.ns_per_tick)
   local timers = M.timers
   local tick = M.ticks
   while tick <= last do
      M.ticks = tick
      local due = timers[tick]
      if due then
         timers[tick] = nil
         for i = 1, #due do
            local t = due[i]
            if t.next_tick == tick then -- (not cancelled by an earlier fn)
               t.next_tick = nil
               t.fn(t)
               if t.repeating and t.next_tick == nil then M.activate(t) end
            end
         end
      end
      if next(timers) == nil then M.ticks = last break end
      tick = tick + 1
   end
end

-- Runs the timers that are due.
function M.run ()
   if M.ticks then M.run_to_time(C.get_time_ns()) end
end

function M.selftest ()
   print("selftest: core.timer")
   local saved_ticks, saved_timers = M.ticks, M.timers
   M.ticks, M.timers = 0, {}
   -- Ten thousand repeating timers, every one to ten thousand ticks, run for 100,000 ticks in
   -- uneven steps: each runs exactly as often as its period fits.
   local count, expected = 0, 0
   local function fn () count = count + 1 end
   for period = 1, 10000 do
      M.activate(M.new("t" .. period, fn, M.ns_per_tick * period, "repeating"))
      expected = expected + floor(100000 / period)
   end
   local now, step = 0, 0
   while now < 100000 do
      step = step % 5 + 1
      now = math.min(100000, now + step)
      local before = count
      M.run_to_time(now * M.ns_per_tick)
      assert(count > before)
   end
   assert(count == expected, ("%d calls, expected %d"):format(count, expected))
   -- One-shot timers run once, in tick order; cancel; delays round up to a tick.
   M.ticks, M.timers = 0, {}
   local order = {}
   local a = M.new("a", function () order[#order+1] = "a" end, 2.5e6)
   local b = M.new("b", function () order[#order+1] = "b" end, 1e6)
   local c = M.new("c", function () order[#order+1] = "c" end, 1e6)
   assert(a.ticks == 3 and not a.repeating)
   M.activate(a) M.activate(b) M.activate(c)
   assert(not pcall(M.activate, a), "activating twice is refused")
   assert(M.cancel(c) == true and M.cancel(c) == nil)
   M.run_to_time(2e6)
   assert(table.concat(order) == "b")
   M.run_to_time(10e6)
   assert(table.concat(order) == "ba" and next(M.timers) == nil)
   -- A fn may cancel a timer due at the same tick; a repeating timer stops when its fn clears
   -- t.repeating (as in Snabb, cancel() from its own fn does not: it is not on the wheel then).
   M.ticks, M.timers = 0, {}
   local runs = 0
   local d = M.new("d", function () runs = runs + 1 end, 1e6)
   local e
   e = M.new("e", function (t) assert(t == e) M.cancel(d) end, 1e6, "repeating")
   M.activate(e) M.activate(d)
   M.run_to_time(1e6)
   assert(runs == 0 and e.next_tick == 2)
   local f
   f = M.new("f", function (t) runs = runs + 1 if runs == 3 then t.repeating = false end end, 1e6,
             "repeating")
   M.cancel(e)
   M.activate(f)
   M.run_to_time(100e6)
   assert(runs == 3 and f.next_tick == nil)
   -- The real clock: a timer of 1 ms has run after 2 ms of run().
   M.ticks, M.timers = false, {}
   local fired = false
   M.activate(M.new("clock", function () fired = true end, 1e6))
   local deadline = C.get_monotonic_time() + 0.002
   while C.get_monotonic_time() < deadline do M.run() end
   M.run()
   assert(fired)
   assert(not pcall(M.init))
   assert(not pcall(M.new, "x", nil, 1))
   M.ticks, M.timers = saved_ticks, saved_timers
   print("selftest: core.timer ok")
end

return M
