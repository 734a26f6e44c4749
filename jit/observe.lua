-- jit.observe: the always-on observability of a run (snabb run, snabb bench, snabb basic1). Each
-- process gets a run directory holding
--   audit.log                 the JIT auditlog (jit/AUDITLOG.md)
--   vmprofile/NAME.vmprofile  a profile zone per app, and `engine` for everything between app calls
--   apps.json                 per-app engine counters and where each app's code is, rewritten once
--                             a second and at the end
-- which `snabb profile PID|DIR` reads, also while the process runs. The default directory,
-- /var/run/snabb/PID (or $TMPDIR/snabb-UID/PID where /var/run/snabb is not writable), is made
-- afresh and removed at exit; a directory given with --rundir is kept.
local ffi = require("ffi")
local engine = require("core.engine")
local lib = require("core.lib")
local json = require("dkjson")
local vmprofile = require("jit.vmprofile")
local policy = require("jit.policy")
local C = ffi.C

ffi.cdef[[
int mkdir(const char *path, unsigned int mode);
char *strerror(int errnum);
int getpid(void);
unsigned int getuid(void);
]]

local M = {}

local METHODS = {"new", "pull", "push", "tick", "stop", "reconfig", "report", "link"}

local function mkdir (path)
   if C.mkdir(path, 493) ~= 0 and ffi.errno() ~= 17 then -- 0755; EEXIST is fine
      return nil, ("%s: %s"):format(path, ffi.string(C.strerror(ffi.errno())))
   end
   return true
end

-- mkdir -p; returns true, or nil and a message.
local function make_dirs (path)
   local parent = path:match("^(.*)/[^/]+$")
   if parent and parent ~= "" then
      local ok, err = make_dirs(parent)
      if not ok then return nil, err end
   end
   return mkdir(path)
end

-- The run directory of process `pid` (default: this one).
-- Whether files can be created in dir (a read-only mount says EEXIST to mkdir of what exists).
local function writable (dir)
   local probe = dir .. "/.snabb-probe"
   local f = io.open(probe, "w")
   if f then f:close() os.remove(probe) end
   return f ~= nil
end

-- Where run directories go: /var/run/snabb, or $TMPDIR/snabb-UID where that is not writable.
function M.base_dir ()
   if make_dirs("/var/run/snabb") and writable("/var/run/snabb") then return "/var/run/snabb" end
   return ("%s/snabb-%d"):format(os.getenv("TMPDIR") or "/tmp", C.getuid())
end

-- A new run directory BASE/PID, made here and so ours alone. Processes in other PID namespaces
-- can have our PID: then the first free BASE/PID-2, BASE/PID-3, ...
local function new_run_dir ()
   local base = M.base_dir()
   assert(make_dirs(base))
   local pid = C.getpid()
   for n = 1, 100 do
      local dir = n == 1 and ("%s/%d"):format(base, pid) or ("%s/%d-%d"):format(base, pid, n)
      if C.mkdir(dir, 493) == 0 then return dir end
      if ffi.errno() ~= 17 then
         error(("run directory %s: %s"):format(dir, ffi.string(C.strerror(ffi.errno()))), 0)
      end
   end
   error(("run directory: %s/%d... all taken"):format(base, pid), 0)
end

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

local state -- the running observation: {dir=, keep=, program=, zones={[app]=id}, started=}

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
                auditlog = state.auditlog and "audit.log" or nil, apps = apps}
   local tmp = state.dir .. "/apps.json.tmp"
   local f = io.open(tmp, "w")
   if not f then return end
   f:write(json.encode(doc, {indent = true}), "\n")
   f:close()
   os.rename(tmp, state.dir .. "/apps.json")
end

-- Starts observing. options: dir (kept after the run; default: a temporary run directory),
-- program (a description for reports), auditlog and vmprofile (default true), hz.
function M.start (options)
   options = options or {}
   assert(not state, "jit.observe: already started")
   local dir = options.dir
   if dir then
      local ok, err = make_dirs(dir)
      if not ok then error(("run directory: %s"):format(err), 0) end
   else
      dir = new_run_dir()
   end
   assert(mkdir(dir .. "/vmprofile"))
   state = {dir = dir, keep = options.dir ~= nil, program = options.program or "snabb",
            started = os.time(), zones = {}, files = {}, apps = {}}
   -- A log opened with snabb -a FILE keeps going; otherwise the run gets its own.
   local auditlog = require("jit.auditlog")
   if options.auditlog ~= false and not auditlog.is_open() then
      auditlog.open(dir .. "/audit.log")
      state.auditlog = true
   end
   if options.vmprofile ~= false then
      -- A zone per app while it is in the graph; its file stays for the report, and an app of
      -- the same name that comes back adds to it.
      local made = {}
      local function zone (name)
         local path = ("%s/vmprofile/%s.vmprofile"):format(dir, name)
         local ok, id = pcall(vmprofile.zone, path, name, made[path])
         if not ok then error((tostring(id):gsub("^[^\n]-:%d+: ", "")), 0) end
         if not made[path] then state.files[#state.files+1], made[path] = path, true end
         return id
      end
      vmprofile.select(zone("engine"))
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

-- Writes the final counters, stops sampling and logging, and removes a temporary run directory.
function M.stop ()
   if not state then return end
   write_stats()
   engine.on_tick, engine.on_stop, engine.profile_zone = nil, nil, nil
   engine.profile_zone_release, engine.on_leave = nil, nil
   vmprofile.close()
   if state.auditlog then require("jit.auditlog").close() end
   if not state.keep then
      for _, path in ipairs(state.files) do os.remove(path) end
      for _, name in ipairs({"audit.log", "apps.json", "vmprofile"}) do
         os.remove(state.dir .. "/" .. name)
      end
      os.remove(state.dir)
   end
   state = nil
end

-- The command-line options of programs that observe their runs.
function M.add_options (parser)
   parser:option("--rundir", "keep the run directory (audit.log, vmprofile/, apps.json) in DIR "
                    .. "(default: a temporary one, /var/run/snabb/PID)"):argname("DIR")
   parser:flag("--no-auditlog", "do not log JIT events")
   parser:flag("--no-vmprofile", "do not sample where the time goes")
end

-- Runs fn() observed as the parsed options say, stopping (and cleaning up) even when it fails.
function M.run (opts, program, fn)
   M.start({dir = opts.rundir, program = program, auditlog = not opts.no_auditlog,
            vmprofile = not opts.no_vmprofile})
   local results = {xpcall(fn, function (e) return e end)}
   M.stop()
   if not results[1] then error(results[2], 0) end
   return unpack(results, 2)
end

return M
