-- snabb ps: the running snabb instances this user can see (their run directories, observe.rundir),
-- each with its config, uptime, workers and health read from its counters in shared memory
-- (core.stats), after removing the run directories of processes that have died.
local argparse = require("argparse")
local cli = require("programs.cli")
local lib = require("core.lib")
local rundir = require("observe.rundir")
local stats = require("core.stats")
local json = require("dkjson")
require("core.lib_h") -- get_monotonic_time, get_unix_time
local C = require("ffi").C

local M = {}

M.summary = "list the running snabb instances (PID, config, uptime, workers, health)"

-- An engine that has not read its clock for this long is reported as stalled (it reads it every
-- 10 us while it breathes; a configure of 10,000 apps took 2-14 s here).
M.stall_seconds = 5

local function parser ()
   local p = argparse("snabb ps", "List the running snabb instances (snabb run, bench, basic1) " ..
                         "this user can see, and remove the run directories of processes that " ..
                         "have died.")
   p:flag("--json", "print them as JSON (one object per instance)")
   return p
end

-- The parent PID of process pid (/proc/PID/stat), or nil.
local function parent (pid)
   local f = io.open(("/proc/%d/stat"):format(pid))
   if not f then return nil end
   local stat = f:read("*a")
   f:close()
   return tonumber(stat:match("^%d+ %b() %S+ (%d+)"))
end

-- "3d 04:05:06", "04:05:06" or "5 s".
function M.duration (seconds)
   seconds = math.max(0, math.floor(seconds))
   if seconds < 60 then return ("%d s"):format(seconds) end
   local d, h, m, s = math.floor(seconds / 86400), math.floor(seconds / 3600) % 24,
      math.floor(seconds / 60) % 60, seconds % 60
   return (d > 0 and ("%dd "):format(d) or "") .. ("%02d:%02d:%02d"):format(h, m, s)
end

-- What an instance's counters say of its health, in words: "ok", "stalled 12 s" (the engine has
-- not breathed), "app errors: 3 (fwd)", or why there are no counters.
function M.health (s, err)
   if not s then return err end
   local problems = {}
   local e = s.engine
   if e.heartbeat_ns == 0 then
      problems[#problems+1] = "not running apps yet"
   else
      local idle = C.get_monotonic_time() - e.heartbeat_ns / 1e9
      if idle > M.stall_seconds then problems[#problems+1] = ("stalled %s"):format(M.duration(idle)) end
   end
   local errors, names = 0, {}
   for _, a in ipairs(s.apps) do
      if a.errors > 0 then errors, names[#names+1] = errors + a.errors, a.name end
   end
   if errors > 0 then
      problems[#problems+1] = ("app errors: %s (%s)"):format(lib.comma_value(errors), table.concat(names, ", "))
   end
   return #problems == 0 and "ok" or table.concat(problems, "; ")
end

-- The instances, each {pid, dir, stats (or nil), error, config, uptime (s), workers, health}.
function M.list ()
   local list = rundir.instances()
   local by_pid = {}
   for _, i in ipairs(list) do by_pid[i.pid] = i end
   local now = C.get_unix_time()
   for _, i in ipairs(list) do
      i.workers = 0
      local s, err = stats.read(i.dir)
      if not s then
         -- Observation is on (there is a run directory) but the counters are not published yet,
         -- or it is a snabb whose runs have none: say which, without the path.
         err = err:match("No such file") and "no counters (starting, or not a run)" or err
      end
      i.stats, i.error = s, err
      i.config = s and s.config ~= "" and s.config or nil
      i.uptime = s and s.engine.started_ns > 0 and now - s.engine.started_ns / 1e9 or nil
      i.health = M.health(s, err)
   end
   -- Workers: the instances whose parent is this one (core.worker's processes); a supervisor's
   -- (snabb run of several graphs) named as its run directory's workers/NAME names them, listed
   -- right after it.
   local children = {}
   for _, i in ipairs(list) do
      local p = by_pid[parent(i.pid) or -1]
      if p then
         p.workers = p.workers + 1
         i.supervisor = p.pid
         children[p] = children[p] or {}
         table.insert(children[p], i)
         for _, w in ipairs(p.stats and p.stats.workers or {}) do
            if w.pid == i.pid then i.worker = w.name end
         end
      end
   end
   local ordered = {}
   local function add (i)
      ordered[#ordered+1] = i
      for _, child in ipairs(children[i] or {}) do add(child) end
   end
   for _, i in ipairs(list) do
      if not (i.supervisor and by_pid[i.supervisor]) then add(i) end
   end
   return ordered
end

function M.run (args)
   local opts = cli.parse(parser(), args)
   if not opts then return 2 end
   local removed = rundir.sweep()
   local list = M.list()
   if opts.json then
      for _, i in ipairs(list) do
         io.stdout:write(json.encode({pid = i.pid, rundir = i.dir, config = i.config,
                                      uptime = i.uptime, workers = i.workers, health = i.health,
                                      supervisor = i.supervisor, worker = i.worker}), "\n")
      end
   elseif #list > 0 then
      local rows = {}
      for _, i in ipairs(list) do
         -- (A supervisor's worker, listed under it: its name before its config.)
         local config = (i.worker and "worker " .. i.worker .. ": " or "") .. (i.config or "-")
         rows[#rows+1] = {tostring(i.pid), config, i.uptime and M.duration(i.uptime) or "-",
                          tostring(i.workers), i.health, i.dir}
      end
      io.stdout:write(lib.table_text({"pid", "config", "uptime", "workers", "health", "run directory"},
                                     rows, {[1] = true, [3] = true, [4] = true}))
   else
      io.stdout:write("no snabb instances running\n")
   end
   if removed > 0 then
      io.stderr:write(("snabb ps: removed %d run director%s of processes that had died\n"):format(
         removed, removed == 1 and "y" or "ies"))
   end
   return 0
end

return M
