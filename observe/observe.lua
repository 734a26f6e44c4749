-- observe.observe: the always-on observability of a run (snabb run, snabb bench, snabb basic1). Each
-- process gets a run directory holding
--   audit.log                 the JIT auditlog (observe/AUDITLOG.md)
--   vmprofile/NAME.vmprofile  a profile zone per app, and `engine` for everything between app calls
--   vmprofile/addresses       the samples in traces by machine-code address (observe/vmprofile.h)
--   apps.json                 per-app engine counters and where each app's code is, rewritten once
--                             a second and at the end
-- which `snabb profile PID|DIR` reads, also while the process runs, and `lock`, held for the run's
-- life (its layout, making and finding: observe.rundir, observe/rundir.h). The default directory,
-- /var/run/snabb/PID (or $TMPDIR/snabb-UID/PID when not root), is made afresh and removed at exit,
-- and those of dead processes are removed when a run starts; a directory given with --rundir is
-- kept, and locked against a second process. Run directories are private (0700, files 0600)
-- unless --group lets a group read them (0750, 0640).
local ffi = require("ffi")
local engine = require("core.engine")
local lib = require("core.lib")
-- apps.json's encoder: a copy of dkjson of its own that the JIT leaves alone. Written once a
-- second, compiled it gained nothing and cost every run its compilation and 13 of basic1 100e6's
-- 64 traces and 18 aborts in the auditlog, inside the engine's time (1.6% of its 0.73 s).
local json = (function ()
   for _, searcher in ipairs(package.loaders) do
      local chunk = searcher("dkjson")
      if type(chunk) == "function" then
         jit.off(chunk, true) -- and every function the chunk defines
         return chunk("dkjson")
      end
   end
   error("dkjson not found")
end)()
local vmprofile = require("observe.vmprofile")
local policy = require("observe.policy")
local rundir = require("observe.rundir")
local stats = require("core.stats")
require("core.cdefs") -- snabb_engine_stats, snabb_tsc_hz
local C = ffi.C

ffi.cdef("int getpid(void);")

local M = {}

local METHODS = {"new", "pull", "push", "tick", "stop", "reconfig", "report", "link"}

-- The running observation: {rd= (the run directory: observe.rundir.open), dir=, program=,
-- started=, zones={[app]=id}, apps=, exit= (os.exit before)}
local state

-- Where an app's code is: each source file with the first and last line of its methods
-- (worked out once per class: apps.json is rewritten every second).
local code_cache = setmetatable({}, {__mode = "k"})
local function code_of (class)
   if code_cache[class] then return code_cache[class] end
   local files, order = {}, {}
   for _, method in ipairs(METHODS) do
      local f = rawget(class, method)
      if type(f) == "function" then
         local info = debug.getinfo(f, "S")
         local source = info.source:gsub("^@", "")
         if info.what == "Lua" then
            local r = files[source]
            if not r then
               r = {source = source, first = info.linedefined, last = info.lastlinedefined}
               files[source] = r
               order[#order+1] = r
            end
            r.first, r.last = math.min(r.first, info.linedefined), math.max(r.last, info.lastlinedefined)
         end
      end
   end
   code_cache[class] = order
   return order
end

-- Keeps an app's figures (engine.app_stats) for apps.json. Apps that have left the graph keep
-- their last figures (taken as they leave), so a run's report covers all of them.
local function record (a)
   local c = engine.configuration
   local spec = c and c.apps[a.name]
   a.code = spec and code_of(spec.class) or {}
   a.zone = state.zones[a.name] and a.name or nil
   state.apps[a.name] = a
end

local function write_stats ()
   for _, a in ipairs(engine.app_stats()) do record(a) end
   local apps = {}
   for _, a in pairs(state.apps) do apps[#apps+1] = a end
   table.sort(apps, function (x, y) return x.name < y.name end)
   local s = C.snabb_engine_stats()
   local doc = {pid = C.getpid(), program = state.program, started = state.started, updated = os.time(),
                tsc_hz = C.snabb_tsc_hz(), engine = {breaths = tonumber(s.breaths), cycles = tonumber(s.cycles)},
                auditlog = state.auditlog and rundir.AUDITLOG or nil, apps = apps}
   -- As a full disk, a failure is left for the next second's try.
   rundir.replace(state.rd, rundir.APPS, json.encode(doc, {indent = true}) .. "\n")
end

-- Starts observing. options: dir (kept after the run; default: a temporary run directory),
-- group (who else may read it), program (a description for reports), auditlog and vmprofile
-- (default true), hz, config (the config file's path, for readers of the counters).
function M.start (options)
   options = options or {}
   assert(not state, "observe.observe: already started")
   local rd = rundir.open(options.dir, options.group)
   local dir = rd.dir
   -- From here on, M.stop cleans up whatever this function has done when it stops.
   local exit = os.exit
   state = {rd = rd, dir = dir, program = options.program or "snabb", started = os.time(),
            zones = {}, apps = {}, exit = exit}
   -- os.exit in a config or an app still ends the run cleanly, final counters written (an exit
   -- from C removes the directory too: observe/rundir.cc).
   os.exit = function (...) pcall(M.stop) return exit(...) end -- luacheck: ignore 122
   -- The engine's, apps' and links' counters in the run directory (runtime/stats.h).
   stats.publish(rd, {config = options.config})
   -- A log opened with snabb -a FILE keeps going; otherwise the run gets its own.
   local auditlog = require("observe.auditlog")
   if options.auditlog ~= false and not auditlog.is_open() then
      rundir.create(rd, rundir.AUDITLOG)
      state.auditlog = true
      auditlog.open(dir .. "/" .. rundir.AUDITLOG)
   end
   if options.vmprofile ~= false then
      state.vmprofile_fd = rundir.mkdir(rd, rundir.VMPROFILE)
      -- A zone per app while it is in the graph; its file stays for the report, and an app of
      -- the same name that comes back adds to it.
      local made = {}
      local function zone (name)
         local file = rundir.zone_file(name)
         if not made[file] then rundir.create(rd, file, state.vmprofile_fd) end
         local ok, id = pcall(vmprofile.zone, rundir.zone_path(dir, name), name, made[file])
         if not ok then error((tostring(id):gsub("^[^\n]-:%d+: ", "")), 0) end
         made[file] = true
         return id
      end
      vmprofile.select(zone("engine"))
      rundir.create(rd, rundir.ADDRESSES, state.vmprofile_fd)
      local ok, err = pcall(vmprofile.addresses, rundir.addresses_path(dir))
      if not ok then error((tostring(err):gsub("^[^\n]-:%d+: ", "")), 0) end
      vmprofile.start(options.hz)
      engine.profile_zone = function (name)
         state.zones[name] = state.zones[name] or zone(name)
         return state.zones[name]
      end
      engine.profile_zone_release = function (name)
         if state.zones[name] then vmprofile.close_zone(state.zones[name]) end
         state.zones[name] = nil
      end
   end
   engine.on_leave = function (names)
      for _, a in ipairs(engine.app_stats(names)) do record(a) end
   end
   policy.apply()
   -- apps.json once a second, or less often where writing it would take more than 2% of the
   -- time: it took 0.26 s for 10,000 apps (then it is written every 13 s).
   local stats_at, policy_due = 0, lib.throttle(5)
   engine.on_tick = function ()
      local t = engine.now()
      if t >= stats_at then
         write_stats()
         stats_at = t + math.max(1, 50 * (engine.now() - t))
      end
      if policy_due() then policy.check() end
   end
   engine.on_stop = write_stats
   return dir
end

function M.dir () return state and state.dir end

-- Writes the final counters, stops sampling and logging, removes a temporary run directory and
-- lets go of the lock. Whenever it is called (also half-way through M.start), it undoes what was
-- done.
function M.stop ()
   if not state then rundir.close() return end
   local s = state
   local ok, err = pcall(write_stats)
   -- core.shm's counters, final values in their files (a kept --rundir is read afterwards).
   if package.loaded["core.counter"] then package.loaded["core.counter"].commit() end
   state = nil
   os.exit = s.exit -- luacheck: ignore 122
   engine.on_tick, engine.on_stop, engine.profile_zone = nil, nil, nil
   engine.profile_zone_release, engine.on_leave = nil, nil
   vmprofile.close()
   stats.unpublish()
   if s.auditlog then require("observe.auditlog").close() end
   if s.vmprofile_fd then C.close(s.vmprofile_fd) end
   rundir.close(s.rd)
   if not ok then error(err, 0) end
end

-- Runs fn() observed as options say (those of M.start), stopping (and cleaning up) even when it
-- fails.
function M.run (options, fn)
   local results = {xpcall(function ()
      M.start(options)
      return fn()
   end, function (e) return e end)}
   M.stop()
   if not results[1] then error(results[2], 0) end
   return unpack(results, 2)
end

return M
