-- programs.inspect.history: each app's cycles per packet and share of engine cycles over time, for
-- `snabb inspect PID` (GET /inspect/api/history): the inspector reads the running snabb's counters
-- in shared memory (core.stats, what snabb top reads: runtime/stats.h) once a second from its own
-- poll loop, whether a page is open or not, into a bounded history, so a page opened late still
-- shows what the inspector saw since it started. Rates are snabb top's (programs.top.top.rates):
-- the difference of two readings over the time between them; cycles per packet leaves out the
-- cycles of calls that moved no packet (idle_cycles), as top does.
--
--   local h = history.new(dir)   -- dir: a run directory; sampled only while its process runs
--   history.poll(h, now)          -- from the server's loop: samples when a second has passed
--   history.json(h, since)        -- the points after time since (unix seconds), for the page
-- A run directory whose process has ended (or a snabb -a -p file run) has no live history: the
-- answer says so (live = false, why).
local ffi = require("ffi")
require("core.lib_h") -- get_unix_time, get_monotonic_time
local stats = require("core.stats")
require("observe.rundir_cdefs") -- snabb_rundir_owned_by
local top = require("programs.top.top")
local C = ffi.C

local M = {}

M.interval = 1      -- seconds between samples
M.max_points = 3600 -- points kept (an hour at one a second); the oldest go first
M.max_values = 200000 -- app-points kept at most (a table each: tens of MB; 10,000 apps: 20 points)

-- Whether dir is the run directory of a running process (its lock held by the PID its counters
-- name).
local function live (dir, s)
   return s and s.pid and C.snabb_rundir_owned_by(dir, s.pid) == 1
end

function M.new (dir)
   local h = {dir = dir, points = {}, first = 1, count = 0, next_at = 0, why = nil}
   if not dir then
      h.why = "the files of snabb -a/-p hold no counters: no history over time"
      return h
   end
   local s = stats.read(dir)
   if not live(dir, s) then
      h.why = s and ("%s: its process (%d) has ended; counters over time are sampled live, "
                     .. "from a running snabb's PID"):format(dir, s.pid)
              or ("%s: no counters in shared memory (a finished run's directory keeps apps.json "
                  .. "only); counters over time are sampled live, from a running snabb's PID"):format(dir)
      return h
   end
   h.pid, h.old, h.t_old = s.pid, s, C.get_monotonic_time()
   h.started = C.get_unix_time()
   h.next_at = h.t_old + M.interval
   return h
end

-- One point from two readings dt seconds apart: the time, and per app {cycles per packet, share,
-- Mpps in, Mpps out} and its counters then (packets in and out, cycles, idle cycles), so a client
-- can check the rates against the counters.
local function point (new, old, dt)
   local r = top.rates(new, old, dt)
   local apps = {}
   local counters = {}
   for _, a in ipairs(new.apps) do counters[a.name] = a end
   for _, a in ipairs(r.apps) do
      local c = counters[a.name]
      apps[a.name] = {cycles_per_packet = a.cycles_per_packet, share = a.share,
                      mpps_in = a.mpps_in, mpps_out = a.mpps_out, packets_in = c.packets_in,
                      packets_out = c.packets_out, cycles = c.cycles, idle_cycles = c.idle_cycles}
   end
   return {t = C.get_unix_time(), dt = dt, apps = apps}
end

-- Samples when the interval has passed (now: monotonic seconds); stops when the run ends.
function M.poll (h, now)
   if h.why or now < h.next_at then return end
   local s = stats.read(h.dir)
   if not live(h.dir, s) then
      h.why = ("process %d has ended; the history stops at its last second"):format(h.pid)
      h.ended = true
      return
   end
   local p = point(s, h.old, now - h.t_old)
   h.points[h.first + h.count] = p
   h.count = h.count + 1
   local napps = 0
   for _ in pairs(p.apps) do napps = napps + 1 end
   h.limit = math.max(1, math.min(M.max_points, math.floor(M.max_values / math.max(1, napps))))
   while h.count > h.limit do
      h.points[h.first] = nil
      h.first, h.count = h.first + 1, h.count - 1
   end
   h.old, h.t_old = s, now
   h.next_at = now + M.interval
end

-- The history as the page gets it: {live, why, pid, interval, started, max_points, points} with
-- the points after since (unix seconds; nil: all).
function M.json (h, since)
   local points = {}
   for i = h.first, h.first + h.count - 1 do
      local p = h.points[i]
      if not since or p.t > since then points[#points+1] = p end
   end
   return {live = h.why == nil, ended = h.ended, why = h.why, pid = h.pid, interval = M.interval,
           started = h.started, max_points = h.limit or M.max_points, points = points,
           count = h.count}
end

function M.selftest ()
   print("selftest: programs.inspect.history")
   local h = M.new(nil)
   assert(M.json(h).live == false and M.json(h).why:match("no history"))
   -- A ring of three: the oldest go first.
   local saved, saved_values = M.max_points, M.max_values
   M.max_points = 3
   h = {dir = "x", points = {}, first = 1, count = 0, next_at = 0, t_old = 0, old = {}}
   local n = 0
   local real_read, real_point = stats.read, point
   stats.read = function () n = n + 1 return {pid = 1, n = n} end
   point = function (s) return {t = s.n, apps = {}} end -- luacheck: ignore
   local real_live = live
   live = function () return true end -- luacheck: ignore
   for i = 1, 5 do M.poll(h, i) end
   local j = M.json(h)
   assert(#j.points == 3 and j.points[1].t == 3 and j.points[3].t == 5, #j.points)
   assert(#M.json(h, 4).points == 1)
   -- Bounded by values too: 3 apps a point, 7 values kept: 2 points.
   M.max_points, M.max_values = 100, 7
   point = function (s) return {t = s.n, apps = {a = {}, b = {}, c = {}}} end -- luacheck: ignore
   for i = 6, 9 do M.poll(h, i) end
   j = M.json(h)
   assert(#j.points == 2 and j.points[2].t == 9 and j.max_points == 2, #j.points)
   stats.read, point, live, M.max_points, M.max_values = real_read, real_point, real_live, saved, saved_values
   print("selftest: ok")
end

return M
