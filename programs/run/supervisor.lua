-- programs.run.supervisor: `snabb run` of a config that returns {workers = {NAME = config, ...}}:
-- one graph per worker process (core.worker: this binary run afresh), each with its own engine and
-- LuaJIT VM, pinned to its CPU with --cpu, its packets in the group's shared memory (core.group:
-- made here in the supervisor's run directory before any worker starts, attached by each worker
-- before its first packet), so that interlinks (apps.interlink) carry them between workers as
-- pointers. The supervisor (the `snabb run` process) starts the workers in name order (worker
-- index 0, 1, ...), restarts one that dies after a backoff (BACKOFF_FIRST doubling to BACKOFF_MAX,
-- back to the first after BACKOFF_RESET seconds up), with one line on stderr naming the cause (the
-- signal, the Lua error, the exit status) and how many packets group.reclaim gave back of all it
-- had (free, in its links, in its apps' hands);
-- on SIGINT/SIGTERM or --duration it tells every worker to stop (status/stop, then SIGTERM,
-- SIGKILL after STOP_SECONDS), waits for each and prints one summary: per worker and in total,
-- packets in (sent by sources), out (received by sinks), dropped, queued, in interlinks, lost with
-- dead workers, and where the group's packets are. A worker's end is also its kernel's doing when
-- the supervisor dies first (PR_SET_PDEATHSIG: SIGHUP, a clean stop): none outlives it.
-- Workers that share a DPDK EAL (drivers/dpdk: dpdk.init{processes = N}, one primary and
-- secondaries on one file prefix; each says so in status/NAME.dpdk once its graph is configured)
-- are restarted as a group when one of them dies, the primary or a secondary: the others are
-- stopped (SIGTERM, a clean stop), and all start again once all have stopped (dpdk_group).
--
-- The supervisor's run directory holds, besides its own files:
--   workers/NAME          a symbolic link to worker NAME's run directory (made by the worker)
--   status/NAME.totals    what the worker counted when it stopped cleanly (Lua table text)
--   status/NAME.report    its --report tables
--   status/NAME.error     the Lua error that ended it
--   status/NAME.started   made once its graph is configured: a worker whose graph never was and
--                         that failed ends the run (a config's mistake, found by configure)
--   status/NAME.dpdk      made then when its DPDK EAL is shared with other processes: dpdk.shared
--                         ({process = "primary" or "secondary", prefix = the file prefix, ...})
--   status/stop           made when the workers are to stop
-- and the group's memory (group.create's). core.stats.read of the supervisor's directory adds
-- every worker's apps and links as NAME/APP (snabb top SUPERVISOR_PID); snabb ps lists the
-- workers under it; GET /counters and /metrics on its control socket carry a worker label.
local ffi = require("ffi")
local S = require("syscall")
local cli = require("programs.cli")
local config = require("core.config")
local engine = require("core.engine")
local lib = require("core.lib")
local stats = require("core.stats")
local worker = require("core.worker")
local runtime = require("snabb.runtime")
require("core.lib_h") -- get_monotonic_time, sleep_ns
local C = ffi.C

local M = {}

M.BACKOFF_FIRST, M.BACKOFF_MAX, M.BACKOFF_RESET = 0.1, 5, 30
-- How often a worker looks for the supervisor's stop; how long until SIGTERM follows it, and
-- until SIGKILL (a worker's --watchdog ends a stuck app before that).
M.STOP_POLL, M.TERM_SECONDS, M.STOP_SECONDS = 0.01, 2, 30

local group = require("core.group") -- (contract 1: runtime/group.lua)
local ring = require("apps.interlink.ring")

local function now () return C.get_monotonic_time() end

-- Checks what a config file returned as a set of workers' graphs ({workers = {NAME = config}});
-- returns their names, sorted (worker index i + 1), or raises a message naming the file.
function M.names (path, t)
   local names = {}
   if type(t.workers) ~= "table" then
      error(("%s: workers must be a table {NAME = config, ...}, got %s"):format(path, type(t.workers)), 0)
   end
   for name, c in pairs(t.workers) do
      if type(name) ~= "string" or not name:match("^[%w_-]+$") then
         error(("%s: workers: '%s' is not a worker name (letters, digits, _ and -)"):format(path, tostring(name)), 0)
      end
      if not config.is_config(c) then
         error(("%s: workers.%s is %s, not a config (made with config.new())"):format(path, name, type(c)), 0)
      end
      names[#names+1] = name
   end
   if #names == 0 then error(("%s: workers is empty: name at least one graph"):format(path), 0) end
   table.sort(names)
   return names
end

-- What the apps of config c are to the summary: sources (feed links, fed by none) and sinks (fed,
-- feed none), interlink transmitters (tx: what they take leaves the worker) and receivers (rx:
-- what they send came from another), by name.
function M.roles (c)
   local fed, feeding = {}, {}
   for _, l in pairs(c.links) do fed[l.to_app], feeding[l.from_app] = true, true end
   local tx_class = package.loaded["apps.interlink.transmitter"]
   local rx_class = package.loaded["apps.interlink.receiver"]
   local r = {sources = {}, sinks = {}, tx = {}, rx = {}}
   for name, spec in pairs(c.apps) do
      if tx_class and spec.class == tx_class then r.tx[name] = true
      elseif rx_class and spec.class == rx_class then r.rx[name] = true
      elseif feeding[name] and not fed[name] then r.sources[name] = true
      elseif fed[name] and not feeding[name] then r.sinks[name] = true end
   end
   return r
end

-- Whether an interlink app's ring (its object's r: apps/interlink/ring.lua) is empty.
local function ring_empty (object)
   local r = object and object.r
   return r ~= nil and bit.tobit(r.write - r.read) == 0
end

-- In a worker: whether its sources are done (each says so, as snabb run's, and each interlink
-- receiver's transmitter has left its ring: stopped, not dead).
function M.sources_done (roles)
   local any = false
   for name in pairs(roles.sources) do
      local object = engine.app_table[name]
      if not (object and object.done == true) then return false end
      any = true
   end
   for name in pairs(roles.rx) do
      local r = (engine.app_table[name] or {}).r
      if not (r and r.tx_pid == 0 and r.tx_attaches > 0) then return false end
      any = true
   end
   return any
end

-- In a worker: whether its links and its interlinks' rings are empty (what its sources sent has
-- gone through, and its transmitters' receivers took all).
function M.drained (roles)
   if not require("programs.run.run").links_empty() then return false end
   for _, set in ipairs({roles.tx, roles.rx}) do
      for name in pairs(set) do
         if not ring_empty(engine.app_table[name]) then return false end
      end
   end
   return true
end

-- A worker's figures from its counters (core.stats.read of its run directory) and its roles:
-- {input, output, dropped, queued, errors, sent (into interlinks), received (from interlinks),
-- ring (in its links' rings by their cursors: what a dead worker held there)}.
function M.totals (s, roles)
   local t = {input = 0, output = 0, dropped = 0, queued = 0, errors = 0, sent = 0, received = 0, ring = 0}
   for _, a in ipairs(s.apps) do
      if roles.sources[a.name] then t.input = t.input + a.packets_out end
      if roles.sinks[a.name] then t.output = t.output + a.packets_in end
      if roles.tx[a.name] then t.sent = t.sent + a.packets_in end
      if roles.rx[a.name] then t.received = t.received + a.packets_out end
      t.errors = t.errors + a.errors
   end
   for _, l in ipairs(s.links) do
      t.dropped, t.queued, t.ring = t.dropped + l.txdrop, t.queued + l.queued, t.ring + l.ring
   end
   return t
end

local FIELDS = {"input", "output", "dropped", "queued", "errors", "sent", "received"}

local function add (into, t)
   for _, k in ipairs(FIELDS) do into[k] = (into[k] or 0) + (t[k] or 0) end
   return into
end

-- Lua text of a value (lib.print_object's), for a worker's code and its status files.
local function serialise (t)
   local parts = {}
   lib.print_object(t, {write = function (_, ...)
      for _, text in ipairs({...}) do parts[#parts+1] = text end
   end})
   return table.concat(parts)
end

local function write_file (path, text)
   local f = io.open(path .. ".tmp", "w")
   if f and f:write(text) and f:close() then return os.rename(path .. ".tmp", path) end
end

local function read_file (path)
   local f = io.open(path)
   if not f then return nil end
   local text = f:read("*a")
   f:close()
   return text
end

local function read_table (path)
   local text = read_file(path)
   local chunk = text and loadstring("return " .. text)
   local ok, t = pcall(chunk or error)
   return ok and type(t) == "table" and t or nil
end
M.read_table = read_table

-- Waits until the graphs of the workers `names` are configured (their status/NAME.started), the
-- supervisor says stop, or a minute has passed (snabb bench's source, which would otherwise send
-- into interlinks whose receivers are not there yet).
function M.await_started (dir, names)
   local deadline = now() + 60
   for _, name in ipairs(names) do
      while not S.stat(("%s/status/%s.started"):format(dir, name)) do
         if S.stat(dir .. "/status/stop") or now() >= deadline then return end
         C.sleep_ns(1e6)
      end
   end
end

-- The worker: o = {name, index, dir (the supervisor's run directory), config, args, cpu,
-- keep_running, report, watchdog, eal, no_dpdk_telemetry, group (--group), bench (snabb bench's harness
-- part for this worker: programs/bench/workers.lua)}.
function M.worker (o)
   local run = require("programs.run.run")
   local observe = require("observe.observe")
   local ok, err = xpcall(function ()
      if o.cpu then assert(worker.set_cpu(o.cpu)) end
      -- Before any packet is allocated: from here on the pool is the group's.
      local attached, why = group.attach(o.dir, o.index)
      if not attached then error(("group.attach: %s"):format(why), 0) end
      engine.restart_on_error = true
      cli.apply_watchdog(o)
      cli.apply_dpdk(o) -- (--eal: the options of the EAL the config's DPDK ports start)
      local c = run.load_config(o.config, o.args, nil, true).workers[o.name]
      -- snabb bench: its source and sink join the graph of the worker with its endpoint.
      local bench = o.bench and require("programs.bench.bench")
      if bench then bench.add_harness(c, o.bench) end
      local roles = M.roles(c)
      observe.run({program = ("snabb run %s (worker %s)"):format(o.config, o.name), config = o.config,
                   group = o.group}, function ()
         -- workers/NAME -> this run directory, replacing the last one's.
         local link = ("%s/workers/%s"):format(o.dir, o.name)
         S.unlink(link .. ".tmp")
         assert(S.symlink(observe.dir(), link .. ".tmp"))
         assert(S.rename(link .. ".tmp", link))
         engine.configure(c)
         write_file(("%s/status/%s.started"):format(o.dir, o.name), "") -- (its graph runs)
         local dpdk = package.loaded["drivers.dpdk.dpdk"]
         if dpdk and dpdk.shared then -- (its EAL is shared with other workers': restarted together)
            write_file(("%s/status/%s.dpdk"):format(o.dir, o.name), serialise(dpdk.shared))
         end
         if o.bench and o.bench.wait then M.await_started(o.dir, o.bench.wait) end
         local done_at, check_at, told = nil, 0, false
         local stop_file = o.dir .. "/status/stop"
         -- Up to here the kernel's SIGHUP ends this process when the supervisor dies
         -- (PR_SET_PDEATHSIG); from here the engine would take it as a stop, but a supervisor
         -- killed outright sends it once per thread of its that ends (the child passes from one to
         -- the next), and a second stop signal ends a process at once. So: no signal, and the
         -- supervisor's end is seen as a new parent, with its stop file.
         local parent = S.getppid()
         S.prctl("set_pdeathsig", 0)
         if S.getppid() ~= parent then return end
         engine.main({no_report = true, done = function ()
            -- The supervisor's stop (a file: a signal on top of a Ctrl-C that reached this
            -- process too would be a second one, which ends a process at once), or its end.
            local t = engine.now()
            if t >= check_at then
               check_at = t + M.STOP_POLL
               told = S.stat(stop_file) ~= nil or S.getppid() ~= parent
               if told then return true end
            end
            if o.keep_running then return false end
            -- (Drained, or given DRAIN_SECONDS: a graph that stopped taking packets, e.g. an app
            -- that reads no input, would otherwise hold its worker and those upstream forever.
            -- Packets left in a ring stay for its receiver; those in links are counted queued.)
            done_at = done_at or (M.sources_done(roles) and engine.now()) or nil
            return done_at and (M.drained(roles) or engine.now() - done_at >= run.DRAIN_SECONDS)
         end})
         local s = assert(stats.read(observe.dir()))
         local t = M.totals(s, roles)
         t.finished = done_at ~= nil and not told
         if o.report then
            write_file(("%s/status/%s.report"):format(o.dir, o.name),
                       engine.report_tables(engine.app_stats(), engine.link_stats()))
         end
         if bench then
            write_file(("%s/status/%s.bench"):format(o.dir, o.name), serialise(bench.harness_figures()))
         end
         write_file(("%s/status/%s.totals"):format(o.dir, o.name), serialise(t))
      end)
   end, function (e) return lib.error_message(e) end)
   if not ok then
      -- (The supervisor says it: one line, or the whole message when it ends the run.)
      write_file(("%s/status/%s.error"):format(o.dir, o.name), tostring(err))
      os.exit(1)
   end
end

-- Why worker w ended, in one line: "killed by SIGKILL", "failed: MESSAGE", "exited with status 3".
local function cause (dir, w, st)
   if st.signal then return "killed by " .. st.signal end
   local err = read_file(("%s/status/%s.error"):format(dir, w.name))
   if err then return "failed: " .. err:match("^[^\n]*") end
   if st.status == 0 then return "exited (status 0) before it was told to stop" end
   return ("exited with status %d"):format(st.status)
end

-- Runs the workers of set (what the config file returned) as opts (snabb run's options) say, in
-- the run directory that observe.observe opened. Returns the exit status. hooks (snabb bench's)
-- may add bench = {...} to a worker's options (hooks.bench[NAME]), be called as the supervisor
-- polls (hooks.tick(dir): a reason returned stops the workers), and take the place of the
-- summary once every worker has stopped (hooks.finish(dir, workers, seconds, why, fatal); its
-- result is run's).
function M.run (opts, set, names, hooks)
   hooks = hooks or {}
   local observe = require("observe.observe")
   local control = require("observe.control")
   local cpus = opts.cpu
   if cpus and #cpus ~= #names then
      cli.fail(("--cpu lists %d CPU%s for %d workers (%s): one per worker, in name order"):format(
         #cpus, #cpus == 1 and "" or "s", #names, table.concat(names, ", ")))
   end
   do
      local dir = observe.dir()
      local mode = tonumber(S.stat(dir).mode) % 512
      -- (A kept --rundir has an earlier run's: its group and rings removed, the others emptied.)
      for _, sub in ipairs({"workers", "status", "group", "interlink"}) do
         for _, name in ipairs(stats.children(dir .. "/" .. sub)) do os.remove(dir .. "/" .. sub .. "/" .. name) end
         if sub == "group" or sub == "interlink" then
            os.remove(dir .. "/" .. sub)
         elseif not S.stat(dir .. "/" .. sub) then
            assert(S.mkdir(dir .. "/" .. sub, mode))
         end
      end
      local created, err = group.create(dir, {workers = #names})
      if not created then error(("group.create: %s"):format(err), 0) end
      require("programs.run.run").start_control(dir, opts, {listen = opts.listen})
      local workers = {}
      local function start (w)
         os.remove(("%s/status/%s.error"):format(dir, w.name))
         os.remove(("%s/status/%s.totals"):format(dir, w.name))
         os.remove(("%s/status/%s.dpdk"):format(dir, w.name))
         local code = ("require(\"programs.run.supervisor\").worker(%s)"):format(serialise({
            name = w.name, index = w.index, dir = dir, config = opts.config, args = opts.args,
            cpu = w.cpu, keep_running = opts.keep_running or nil, report = opts.report or nil,
            watchdog = opts.watchdog, eal = opts.eal, no_dpdk_telemetry = opts.no_dpdk_telemetry or nil,
            group = opts.group, bench = hooks.bench and hooks.bench[w.name]}))
         w.pid = worker.start(w.name, code)
         w.started, w.restart_at = now(), nil
      end
      for i, name in ipairs(names) do
         workers[i] = {name = name, index = i - 1, cpu = cpus and cpus[i], restarts = 0,
                       backoff = M.BACKOFF_FIRST, past = {}, lost = 0, roles = M.roles(set.workers[name]),
                       returned = {free = 0, links = 0, held = 0}}
         start(workers[i])
      end
      local t0 = now()
      local deadline = opts.duration and t0 + opts.duration
      local why, fatal
      -- Gives back to the group every packet ended worker w had (core.group: in its free list,
      -- its links, its apps' hands), so that a death does not shrink the pool; leaves out those in
      -- interlinks (the ring's, or a live receiver's). links: its links' directory, if it left
      -- one. Returns how many (and counts them in w.returned).
      local function reclaim (w, links)
         local entries, n_entries = ring.in_flight(dir)
         local ok, n, from = pcall(group.reclaim, dir, w.index,
                                   {links = links, in_flight = entries, n_in_flight = n_entries})
         if not ok then
            io.stderr:write(("snabb run: worker %s: %s\n"):format(w.name, n))
            return 0
         end
         for k, v in pairs(from) do w.returned[k] = w.returned[k] + v end
         return n
      end
      -- Counts what a dead worker's counters (its run directory, left by its death) say it did,
      -- then gives back its packets (reclaim). Returns how many.
      local function account (w, pid)
         local wdir = ("%s/workers/%s"):format(dir, w.name)
         local s = stats.read(wdir)
         if not (s and s.pid == pid) then return reclaim(w) end
         local t = M.totals(s, w.roles)
         -- In its links when it died: lost as traffic (counted by the rings' cursors: the
         -- counters are synced once a breath, so queued may be some packets behind).
         w.lost = w.lost + t.ring
         t.queued = 0
         add(w.past, t)
         local n = reclaim(w, wdir .. "/engine/links")
         require("observe.rundir").sweep()
         return n
      end
      -- Workers that share a DPDK EAL (the same file prefix in status/NAME.dpdk, written by each
      -- once its graph is configured, and remembered) are restarted together when one dies: a
      -- dead primary takes the port with it, a new primary cannot start while secondaries hold
      -- the EAL's hugepages, and a killed secondary's mbufs are lost to the pool its replacement
      -- takes from (it finds "0 left": they never go back to the ring). So the others
      -- are stopped (SIGTERM: a clean stop, their totals kept), and all start again once all
      -- have stopped, after the dead one's backoff. Returns the members' names and the dead
      -- one's DPDK process type, or nil when w shares no EAL with a running worker.
      local function dpdk_release (g)
         for _, o in ipairs(g.members) do
            if o.restart_at ~= math.huge then return end
         end
         for _, o in ipairs(g.members) do o.restart_at, o.dpdk_group = now() + g.delay, nil end
      end
      local function dpdk_group (w, delay)
         for _, o in ipairs(workers) do
            o.dpdk = read_table(("%s/status/%s.dpdk"):format(dir, o.name)) or o.dpdk
         end
         if not w.dpdk then return nil end
         local g, member_names = {members = {}, delay = delay}, {}
         for _, o in ipairs(workers) do
            if o.dpdk and o.dpdk.prefix == w.dpdk.prefix and not (o.finished or o.stopped or o.fatal) then
               g.members[#g.members+1], member_names[#member_names+1] = o, o.name
            end
         end
         if #g.members == 1 then return nil end
         for _, o in ipairs(g.members) do
            o.dpdk_group = g
            if o == w then
               o.restart_at = math.huge -- (until every member has stopped)
            elseif o.restart_at then
               o.restart_at = math.huge -- (dead already, waiting for its own restart)
            elseif worker.status()[o.name].alive then
               C.kill(o.pid, 15)
            end
         end
         dpdk_release(g)
         return table.concat(member_names, ", "), w.dpdk.process
      end
      -- A member stopped for its group's restart: what it did is counted (its totals when it
      -- stopped cleanly, else its counters), its free packets go back to the group; once every
      -- member has stopped, all start after the delay.
      local function dpdk_stopped (w)
         local totals_file = ("%s/status/%s.totals"):format(dir, w.name)
         local totals = read_table(totals_file)
         if totals then
            add(w.past, totals)
            os.remove(totals_file)
            reclaim(w)
         else
            account(w, w.pid)
         end
         w.restarts, w.restart_at = w.restarts + 1, math.huge
         dpdk_release(w.dpdk_group)
      end
      while true do
         if fatal then why = "stopped: a worker failed as it started" break end
         if runtime.stop_requested() then why = "stopped by a signal" break end
         if deadline and now() >= deadline then why = ("stopped after --duration %g"):format(opts.duration) break end
         local status = worker.status()
         local running = 0
         for _, w in ipairs(workers) do
            local st = status[w.name]
            if w.dpdk_group and not w.restart_at and not st.alive then
               dpdk_stopped(w)
            elseif w.restart_at then
               if now() >= w.restart_at then start(w) end
            elseif not w.finished and not st.alive then
               local totals = read_table(("%s/status/%s.totals"):format(dir, w.name))
               if st.status == 0 and totals and totals.finished then
                  w.finished, w.totals = true, totals -- (its sources were done)
               elseif not w.fatal and not read_file(("%s/status/%s.started"):format(dir, w.name))
                  and read_file(("%s/status/%s.error"):format(dir, w.name)) then
                  -- A graph that never ran fails the same way again (a config's mistake that
                  -- only configure finds): the run ends, the error said whole.
                  w.fatal = true
                  fatal = ("worker %s failed as it started: %s"):format(
                     w.name, read_file(("%s/status/%s.error"):format(dir, w.name)))
               elseif runtime.stop_requested() then
                  -- (A Ctrl-C reaches the workers too, and one may have stopped first: counted
                  -- below as the others, not restarted.)
                  w.stopped = true
               else
                  local up = now() - w.started
                  if up >= M.BACKOFF_RESET then w.backoff = M.BACKOFF_FIRST end
                  local reclaimed = account(w, w.pid)
                  local delay = w.backoff
                  w.backoff = math.min(w.backoff * 2, M.BACKOFF_MAX)
                  w.restarts, w.restart_at = w.restarts + 1, now() + delay
                  local members, process = dpdk_group(w, delay)
                  local role = members and ", DPDK's " .. process or ""
                  local group_text = members and ("the DPDK group (file prefix %s): %s, "):format(
                     w.dpdk.prefix, members) or ""
                  io.stderr:write(("snabb run: worker %s (PID %d, up %.1f s%s) %s; %s packets reclaimed; "
                                   .. "restarting %sin %g s\n"):format(w.name, w.pid, up, role, cause(dir, w, st),
                                                                     lib.comma_value(reclaimed), group_text, delay))
               end
            end
            if not (w.finished or w.stopped or w.fatal) then running = running + 1 end
         end
         if running == 0 then why = "stopped when every worker's sources were done" break end
         control.poll()
         if hooks.tick then why = hooks.tick(dir) if why then break end end
         -- observe.observe's once a second (apps.json, by which snabb top and profile find a run).
         if engine.on_tick then engine.on_tick() end
         C.sleep_ns(10e6)
      end
      local seconds = now() - t0
      -- Stop: status/stop tells the running workers; SIGTERM after TERM_SECONDS to those still
      -- running (one still loading its graph: it stops as its engine starts), SIGKILL after
      -- STOP_SECONDS.
      write_file(dir .. "/status/stop", "")
      local term_at, kill_at = now() + M.TERM_SECONDS, now() + M.STOP_SECONDS
      while true do
         local left = {}
         for _, w in ipairs(workers) do
            if not w.finished and not w.restart_at and worker.status()[w.name].alive then left[#left+1] = w end
         end
         if #left == 0 then break end
         if now() >= term_at then
            for _, w in ipairs(left) do C.kill(w.pid, 15) end
            term_at = math.huge
         end
         if now() >= kill_at then
            for _, w in ipairs(left) do
               io.stderr:write(("snabb run: worker %s (PID %d) did not stop in %d s: killed\n"):format(
                  w.name, w.pid, M.STOP_SECONDS))
               worker.stop(w.name)
            end
            kill_at = math.huge
         end
         C.sleep_ns(10e6)
      end
      control.stop()
      if hooks.finish then return hooks.finish(dir, workers, seconds, why, fatal) end
      -- What each worker did: its last run's totals, and those of the runs before (dead ones).
      local total, rows = {}, {}
      local status = worker.status()
      for _, w in ipairs(workers) do
         local t = w.totals or read_table(("%s/status/%s.totals"):format(dir, w.name))
         if not t and not w.restart_at and not w.fatal then
            -- It did not stop cleanly (killed): its counters as it left them.
            local st = status[w.name]
            io.stderr:write(("snabb run: worker %s (PID %d) %s as it was stopped\n"):format(
               w.name, w.pid, cause(dir, w, st)))
            account(w, w.pid)
         end
         local wt = add(add({}, w.past), t or {})
         wt.lost = w.lost
         add(total, wt)
         total.lost = (total.lost or 0) + w.lost
         total.returned = total.returned or {free = 0, links = 0, held = 0}
         for k, v in pairs(w.returned) do total.returned[k] = total.returned[k] + v end
         local cv = lib.comma_value
         rows[#rows+1] = {w.name, tostring(w.pid), w.cpu and tostring(w.cpu) or "-", cv(w.restarts),
                          cv(wt.input), cv(wt.output), cv(wt.dropped), cv(wt.queued), cv(wt.sent),
                          cv(wt.received), cv(wt.lost), cv(wt.errors)}
         w.t = wt
      end
      local cv = lib.comma_value
      rows[#rows+1] = {"total", "", "", "", cv(total.input), cv(total.output), cv(total.dropped),
                       cv(total.queued), cv(total.sent), cv(total.received), cv(total.lost), cv(total.errors)}
      if opts.report then
         for _, w in ipairs(workers) do
            local text = read_file(("%s/status/%s.report"):format(dir, w.name))
            if text then io.stdout:write(("worker %s:\n%s\n"):format(w.name, text)) end
         end
      end
      local function mpps (n) return ("%.3f"):format(seconds > 0 and n / seconds / 1e6 or 0) end
      io.stdout:write(("snabb run: %s ran %.2f s with %d worker%s; %s\n"):format(opts.config, seconds, #workers,
                                                                                    #workers == 1 and "" or "s", why))
      io.stdout:write(lib.table_text({"worker", "pid", "cpu", "restarts", "in", "out", "dropped", "queued",
                                      "to interlinks", "from interlinks", "lost", "errors"},
                                     rows, {false, true, true, true, true, true, true, true, true, true, true, true}))
      -- (What entered interlinks and did not come out: in their rings, or freed as the ring's last
      -- side stopped.)
      io.stdout:write(("in %s (%s Mpps) = out %s (%s Mpps) + dropped %s + queued %s (links) + %s (interlinks) "
                       .. "+ lost %s (in dead workers' links)\n"):format(
                          cv(total.input), mpps(total.input), cv(total.output), mpps(total.output),
                          cv(total.dropped), cv(total.queued), cv(total.sent - total.received), cv(total.lost)))
      -- The pool, once every worker has stopped: a packet is free (in the group's list or a
      -- worker's; all a dead worker had was given back) or in an interlink; any other is
      -- unaccounted (kept by an app of a worker that stopped: a leak).
      local gs = group.stats(dir)
      if gs then
         local free, held = {}, gs.packets - gs.free
         for i, w in ipairs(workers) do
            local n = (gs.workers[w.index] or {}).free or 0
            free[i], held = ("%s %s"):format(w.name, cv(n)), held - n
         end
         -- (What is still in interlinks' rings: a ring is emptied and removed as its last side stops.)
         local interlinks = 0
         for _, name in ipairs(stats.children(dir .. "/interlink")) do
            interlinks = interlinks + ((ring.stats(dir .. "/interlink/" .. name) or {}).queued or 0)
         end
         local r = total.returned
         io.stdout:write(("packet pool: %s carved; free: %s in the group, %s; not free: %s (in interlinks %s, "
                          .. "unaccounted %s); given back from dead workers: %s (free %s, in links %s, "
                          .. "in apps' hands %s)\n"):format(
                             cv(gs.packets), cv(gs.free), table.concat(free, ", "), cv(held), cv(interlinks),
                             cv(held - interlinks), cv(r.free + r.links + r.held), cv(r.free), cv(r.links),
                             cv(r.held)))
         if gs.twice > 0 then
            io.stderr:write(("snabb run: %s free-list entries name a packet that another names too\n"):format(
               cv(gs.twice)))
         end
      end
      if fatal then
         io.stderr:write(("snabb run: %s\n"):format(fatal))
         return 1
      end
      local errors = total.errors > 0 and not opts.allow_errors
      if errors then
         io.stderr:write(("snabb run: app errors in workers: %s\n"):format(cv(total.errors)))
      end
      return errors and 1 or 0
   end
end

return M
