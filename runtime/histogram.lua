-- core.histogram: Snabb's histograms with logarithmic buckets, in shared memory (core.shm's type
-- `histogram`: NAME.histogram, one 4096-byte page another process can map). Between minimum and
-- maximum, 507 buckets each `growth` times as wide as the one before; bucket 0 counts what is
-- below minimum (and values <= 0), the last bucket what is above maximum. The layout is Snabb's
-- (minimum, the log of the growth factor, the total, 509 uint64 counts), so readers written for
-- Snabb's files read ours.
local ffi = require("ffi")
local shm = require("core.shm")
local log, exp, floor = math.log, math.exp, math.floor

local M = {}

M.type = shm.register("histogram", M)

local nbuckets = 509
local histogram_t = ffi.typeof([[struct {
   double minimum;
   double growth_factor_log;
   uint64_t total;
   uint64_t buckets[509];
}]])

local function growth_log (minimum, maximum, level)
   if not (type(minimum) == "number" and type(maximum) == "number" and minimum > 0
           and maximum > minimum) then
      error(("histogram: needs 0 < minimum < maximum, got %s and %s")
               :format(tostring(minimum), tostring(maximum)), level + 1)
   end
   return log(maximum / minimum) / (nbuckets - 2)
end

-- A histogram of ordinary memory covering minimum to maximum.
function M.new (minimum, maximum)
   return histogram_t(minimum, growth_log(minimum, maximum, 2))
end

-- Histogram name in shared memory, covering minimum to maximum, cleared (also when it existed).
function M.create (name, minimum, maximum)
   local g = growth_log(minimum, maximum, 2)
   local h = shm.create(name, histogram_t)
   h.minimum, h.growth_factor_log = minimum, g
   M.clear(h)
   return h
end

-- Histogram name, made by this or another process; readonly: mapped read-only.
function M.open (name, readonly)
   return shm.open(name, histogram_t, readonly)
end

-- Counts measurement in its bucket.
function M.add (h, measurement)
   local bucket = 0
   if measurement > 0 then
      bucket = floor(log(measurement / h.minimum) / h.growth_factor_log) + 1
      if bucket < 0 then bucket = 0 elseif bucket > nbuckets - 1 then bucket = nbuckets - 1 end
   end
   h.total = h.total + 1
   h.buckets[bucket] = h.buckets[bucket] + 1
end

-- An iterator over the buckets, lowest first: count (uint64; the difference from snapshot prev
-- when given), lo, hi.
function M.iterate (h, prev)
   local bucket = -1
   local factor, minimum = exp(h.growth_factor_log), h.minimum
   return function ()
      bucket = bucket + 1
      if bucket >= nbuckets then return nil end
      local lo, hi
      if bucket == 0 then
         lo, hi = 0, minimum
      else
         lo = minimum * factor ^ (bucket - 1)
         hi = bucket == nbuckets - 1 and math.huge or minimum * factor ^ bucket
      end
      local count = h.buckets[bucket]
      if prev then count = count - prev.buckets[bucket] end
      return count, lo, hi
   end
end

-- Copies h into dest (default: a new histogram) and returns it.
function M.snapshot (h, dest)
   dest = dest or histogram_t()
   ffi.copy(dest, h, ffi.sizeof(histogram_t))
   return dest
end

function M.clear (h)
   h.total = 0
   ffi.fill(h.buckets, ffi.sizeof(h.buckets))
end

-- A function that calls thunk and counts now() after less now() before.
function M.wrap_thunk (h, thunk, now)
   return function ()
      local start = now()
      thunk()
      M.add(h, now() - start)
   end
end

-- The approximate minimum, average and maximum recorded (since snapshot prev, when given).
function M.summarize (h, prev)
   local total = h.total - (prev and prev.total or 0)
   if total == 0 then return 0, 0, 0 end
   local lowest, highest, sum = nil, 0, 0
   for count, lo, hi in M.iterate(h, prev) do
      if count ~= 0 then
         lowest = lowest or lo
         highest = hi
         sum = sum + (lo + hi) / 2 * tonumber(count)
      end
   end
   return lowest, sum / tonumber(total), highest
end

ffi.metatype(histogram_t, {
   __index = {add = M.add, iterate = M.iterate, snapshot = M.snapshot, clear = M.clear,
              wrap_thunk = M.wrap_thunk, summarize = M.summarize},
   __tostring = function (h)
      return ("min: %f / avg: %f / max: %f"):format(M.summarize(h))
   end})

function M.selftest ()
   print("selftest: core.histogram")
   local h = M.new(1e-6, 1)
   assert(ffi.sizeof(h) == 4096)
   h:add(1e-7)
   h:add(0)
   h:add(1e-6 * 1.0001)
   h:add(1 - 1e-9)
   h:add(1.5)
   assert(h.buckets[0] == 2 and h.buckets[1] == 1)
   assert(h.buckets[nbuckets - 2] == 1 and h.buckets[nbuckets - 1] == 1 and h.total == 5)
   local seen, n = 0, 0
   for count, lo, hi in h:iterate() do
      assert(lo < hi)
      if n == 1 then assert(lo == 1e-6 and hi > lo) end
      if n == nbuckets - 1 then assert(hi == math.huge) end
      seen, n = seen + tonumber(count), n + 1
   end
   assert(seen == 5 and n == nbuckets)
   -- Bucket bounds contain what they counted.
   for _, v in ipairs({2e-6, 3.3e-5, 0.01, 0.5}) do
      local g = M.new(1e-6, 1)
      g:add(v)
      for count, lo, hi in g:iterate() do
         if count > 0 then assert(lo * (1 - 1e-12) <= v and v <= hi * (1 + 1e-12), v) end
      end
   end
   -- Snapshots and differences.
   local before = h:snapshot()
   h:add(1e-3)
   local diff = 0
   for count in h:iterate(before) do diff = diff + tonumber(count) end
   assert(diff == 1 and before.total == 5)
   local lo, avg, hi = h:summarize(before)
   assert(lo <= 1e-3 and 1e-3 <= hi and lo <= avg and avg <= hi)
   assert(tostring(h):match("^min: "))
   -- Timing a function.
   local t = 0
   local timed = h:wrap_thunk(function () t = t + 0.25 end, function () return t end)
   h:clear()
   timed()
   assert(h.total == 1 and M.summarize(h) <= 0.25)
   -- In shared memory: another mapping sees the counts; create clears.
   local s = M.create("core.histogram/selftest.histogram", 1, 1e6)
   s:add(10)
   local r = M.open("core.histogram/selftest.histogram", "readonly")
   assert(r.total == 1 and r.minimum == 1)
   M.create("core.histogram/selftest.histogram", 1, 1e6)
   assert(r.total == 0)
   assert(not pcall(M.new, 1, 1) and not pcall(M.create, "core.histogram/x", 0, 1))
   shm.unmap(r) shm.unmap(s)
   shm.unlink("core.histogram")
   print("selftest: core.histogram ok")
end

return M
