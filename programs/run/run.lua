-- snabb run CONFIG [--duration S] [--report]: runs the app graph that a Lua file returns.
--
-- It ends by itself when every source of the graph is done: a source is an app that feeds links
-- and that no link feeds (PcapReader, Replay, Source, a NIC driver's receive side); it is done when
-- its object says self.done = true (PcapReader at the end of its file, Replay at its limit). A
-- source that never says so (Source, drivers) keeps the run going, as does --keep-running. What is
-- still in the links then gets at most DRAIN_SECONDS to arrive. On a terminal a progress line shows
-- packets in (sent by the sources) and out (received by the sinks, apps that feed no link); a
-- summary follows at the end. An app that failed makes the exit status 1 (--allow-errors: 0).
-- A config that returns {workers = {NAME = config, ...}} runs each graph in a worker process of its
-- own under a supervisor (programs/run/supervisor.lua); --cpu pins them (or the one graph).
local argparse = require("argparse")
local cli = require("programs.cli")
local config = require("core.config")
local engine = require("core.engine")
local link = require("core.link")
local lib = require("core.lib")
local observe = require("observe.observe")
local progress = require("programs.progress")

local M = {}

-- For `snabb help` (programs/main.lua finds the command by its folder).
M.summary = "run an app graph, or one per worker: snabb run CONFIG [--duration S] [--report] [--cpu LIST]"
-- It runs an app graph: stop signals stop it cleanly, caught before it starts.
M.engine = true

M.DRAIN_SECONDS = 1

-- --cpu 0,2: CPUs this process may run on (its affinity), as a list of numbers.
local function cpu_list (s)
   local worker = require("core.worker")
   local cpus = {}
   for item in (s .. ","):gmatch("([^,]*),") do
      local cpu = tonumber(item)
      if not cpu or cpu ~= math.floor(cpu) or cpu < 0 then
         return nil, ("--cpu must be a list of CPU numbers like 0,1, got '%s'"):format(s)
      end
      if not worker.cpu_allowed(cpu) then
         return nil, ("--cpu: CPU %d is not one this process may run on (see nproc, taskset -p)"):format(cpu)
      end
      cpus[#cpus+1] = cpu
   end
   return cpus
end
M.cpu_list = cpu_list

-- Pins this process, which runs one graph, to the CPU of --cpu (cpus: cpu_list's; nil: not pinned).
function M.pin (cpus)
   if not cpus then return end
   if #cpus ~= 1 then
      cli.fail(("--cpu lists %d CPUs for one graph (a config with workers takes one per worker)"):format(#cpus))
   end
   assert(require("core.worker").set_cpu(cpus[1]))
end

local function parser ()
   local p = argparse("snabb run", "Run an app graph described by a Lua config file.")
      :add_help("-h --help")
   p:argument("config", "Lua file that returns a config (made with config.new())")
   p:argument("args", "arguments for the config file (its ...)"):args("*")
   p:option("-d --duration", "stop after this many seconds, a number > 0 (default: run until every source is "
               .. "done, or interrupted)")
      :convert(cli.seconds("--duration"))
   p:flag("-r --report", "print what each app and link did at the end")
   p:flag("--keep-running", "keep running when every source is done (default: stop then)")
   p:flag("--allow-errors", "exit 0 even when apps failed (default: exit 1)")
   p:option("--cpu", "pin the graph, or each worker's graph in name order, to these CPUs (one each)")
      :argname("LIST"):convert(cpu_list)
   p:option("--listen", "serve the control API on TCP too, at HOST:PORT or PORT (host 127.0.0.1); "
               .. "always on the Unix socket RUNDIR/control (observe/README.md)")
      :argname("HOST:PORT")
      :convert(function (s)
         local host, err = require("observe.control").parse_listen(s)
         if not host then return nil, err end
         return s
      end)
   cli.add_observe_options(p)
   cli.add_watchdog_option(p)
   cli.add_dpdk_options(p)
   return p
end

-- Runs a config file (or text, the file's text: a POST /config) and returns the config it
-- builds (with workers: or the table {workers = {NAME = config}} it returns, checked); errors name
-- the file and line.
function M.load_config (path, args, text, workers)
   local chunk, err
   if text then chunk, err = loadstring(text, "@" .. path) else chunk, err = loadfile(path) end
   if not chunk then error(err, 0) end
   local ok, c = xpcall(chunk, lib.error_message, unpack(args or {}))
   if not ok then error(c, 0) end
   if workers and type(c) == "table" and not config.is_config(c) and c.workers ~= nil then
      require("programs.run.supervisor").names(path, c)
      return c
   end
   if not config.is_config(c) then
      error(("%s: returned %s, not a config; end the file with `return c` where c = config.new()")
         :format(path, c == nil and "nothing" or type(c)), 0)
   end
   return c
end

-- The running graph's sources (apps that feed links and that no link feeds) and sinks (apps fed by
-- links that feed none), by name; worked out again only when the configuration changes.
local edges = {}
function M.edges ()
   local c = engine.configuration
   if edges.config ~= c then
      local fed, feeding, sources, sinks = {}, {}, {}, {}
      for _, l in pairs(c.links) do fed[l.to_app], feeding[l.from_app] = true, true end
      for name in pairs(c.apps) do
         if feeding[name] and not fed[name] then sources[#sources+1] = name end
         if fed[name] and not feeding[name] then sinks[#sinks+1] = name end
      end
      table.sort(sources)
      table.sort(sinks)
      edges = {config = c, sources = sources, sinks = sinks}
   end
   return edges.sources, edges.sinks
end

-- True when the graph has sources and every one is done (its object's done field).
function M.sources_done ()
   local sources = M.edges()
   for _, name in ipairs(sources) do
      local object = engine.app_table[name]
      if not (object and object.done == true) then return false end
   end
   return #sources > 0
end

function M.links_empty ()
   for _, l in pairs(engine.link_table) do
      if not link.empty(l) then return false end
   end
   return true
end

-- What went through the graph so far: packets in (sent by the sources), out (received by the
-- sinks), dropped by full links, queued in links, errors of apps; with the sources, sinks and
-- links that reconfigurations (snabb config load) took away.
function M.totals ()
   local sources, sinks = M.edges()
   local t = {input = 0, output = 0, dropped = 0, queued = 0, errors = 0}
   for _, a in ipairs(engine.app_stats(sources)) do t.input = t.input + a.packets_out end
   for _, a in ipairs(engine.app_stats(sinks)) do t.output = t.output + a.packets_in end
   for _, a in ipairs(engine.app_stats()) do t.errors = t.errors + a.errors end
   for _, l in ipairs(engine.link_stats()) do t.dropped, t.queued = t.dropped + l.txdrop, t.queued + l.queued end
   -- Links, sources and sinks that a reconfiguration took away.
   local gone = engine.retired_app_stats()
   t.input, t.output = t.input + gone.source_packets_out, t.output + gone.sink_packets_in
   t.gone_sources, t.gone_sinks = gone.source_packets_out > 0, gone.sink_packets_in > 0
   t.dropped = t.dropped + engine.retired_link_stats().txdrop
   return t
end

-- "a, b, c" or "a, b, c and 9,997 more".
local function names_text (names)
   if #names == 0 then return "none" end
   local shown = {unpack(names, 1, math.min(#names, 3))}
   local text = table.concat(shown, ", ")
   return #names > 3 and ("%s and %s more"):format(text, lib.comma_value(#names - 3)) or text
end

function M.print_summary (out, path, seconds, why, t)
   local cv = lib.comma_value
   local sources, sinks = M.edges()
   local function mpps (n) return ("%.3f"):format(seconds > 0 and n / seconds / 1e6 or 0) end
   out:write(("snabb run: %s ran %.2f s; %s\n"):format(path, seconds, why))
   out:write(lib.table_text({"", "packets", "Mpps", "apps"},
                            {{"in", cv(t.input), mpps(t.input), "sent by " .. names_text(sources)
                                 .. (t.gone_sources and " and sources that left the graph" or "")},
                             {"out", cv(t.output), mpps(t.output), "received by " .. names_text(sinks)
                                 .. (t.gone_sinks and " and sinks that left the graph" or "")}},
                            {false, true, true, false}))
   out:write(("dropped %s (full links), still queued %s, app errors %s\n"):format(
      cv(t.dropped), cv(t.queued), cv(t.errors)))
end

-- Runs the graph until --duration, a stop signal, or (without --keep-running) its sources are
-- done and what they sent has arrived; prints the progress line, the report and the summary.
-- Returns why it stopped and how long it ran.
local function run_graph (opts)
   local line = progress.new()
   local start = engine.now()
   local next_progress, done_at, last = start + progress.interval, nil, {t = start, input = 0, output = 0}
   engine.main({duration = opts.duration, no_report = true, done = function ()
      local t = engine.now()
      if line and t >= next_progress then
         local totals, dt = M.totals(), t - last.t
         line:show(progress.line(t - start, (totals.input - last.input) / dt / 1e6,
                                 (totals.output - last.output) / dt / 1e6,
                                 {{"packets", lib.comma_value(totals.output)},
                                  {"dropped", lib.comma_value(totals.dropped)},
                                  {"errors", lib.comma_value(totals.errors)}}))
         last, next_progress = {t = t, input = totals.input, output = totals.output}, t + progress.interval
      end
      if opts.keep_running then return false end
      done_at = done_at or (M.sources_done() and t) or nil
      return done_at and (M.links_empty() or t - done_at >= M.DRAIN_SECONDS)
   end})
   if line then line:clear() end
   local seconds = engine.now() - start
   if done_at then
      return ("stopped when its sources were done (%s)"):format(names_text((M.edges()))), seconds
   elseif opts.duration and seconds >= opts.duration then
      return ("stopped after --duration %g"):format(opts.duration), seconds
   end
   return "stopped by a signal", seconds
end

-- Starts the control server (observe.control) for run directory dir with options; a --listen
-- that cannot be had (a port in use, an address not of this machine) is the option's mistake.
function M.start_control (dir, opts, options)
   local control = require("observe.control")
   local started, port = pcall(control.start, dir, options)
   if not started then
      if tostring(port):match("^%-%-listen ") then cli.fail(port) end
      error(port, 0)
   end
   if port then
      io.stderr:write(("snabb run: control API on http://%s:%d/\n"):format(
         (control.parse_listen(opts.listen)), port))
   end
end

function M.run (args)
   local p = parser()
   local opts = cli.parse(p, args)
   if not opts then return 2 end
   cli.apply_watchdog(opts)
   -- A failed app is restarted after engine.restart_delay and the rest keeps running (a config
   -- may set restart_on_error = false for Snabb's behaviour: the first error ends the run).
   engine.restart_on_error = true
   local control = require("observe.control")
   return observe.run(cli.observe_options(opts, "snabb run " .. opts.config), function ()
      cli.apply_dpdk(opts)
      local c = M.load_config(opts.config, opts.args, nil, true)
      if not config.is_config(c) then
         local supervisor = require("programs.run.supervisor")
         return supervisor.run(opts, c, supervisor.names(opts.config, c))
      end
      M.pin(opts.cpu)
      -- --eal's EAL starts here (on --cpu's CPU) unless the config started it (a supervisor's
      -- workers start theirs: the supervisor stays out of DPDK).
      if opts.eal then require("drivers.dpdk.dpdk").start() end
      engine.configure(c)
      require("apps.tap.tap").register(control) -- POST, GET, DELETE /tap: snabb tap
      -- The control server (observe.control) from here on; stopped before the run directory goes.
      M.start_control(observe.dir(), opts, {
         listen = opts.listen, config = opts.config,
         load = function (name, text) return M.load_config(name, nil, text) end})
      local ok, why, seconds = pcall(run_graph, opts)
      control.stop()
      if not ok then error(why, 0) end
      if opts.report then engine.report(); io.stdout:write("\n") end
      M.print_summary(io.stdout, opts.config, seconds, why, M.totals())
      local failures = engine.failures()
      engine.stop()
      if #failures == 0 then return 0 end
      local names = {}
      for i, f in ipairs(failures) do
         names[i] = ("%s (%s error%s)"):format(f.name, lib.comma_value(f.errors), f.errors == 1 and "" or "s")
      end
      io.stderr:write(("snabb run: %s failed: %s; the first error: %s%s\n"):format(
         #failures == 1 and "an app" or lib.comma_value(#failures) .. " apps", table.concat(names, ", "),
         failures[1].message:match("^[^\n]*"), opts.allow_errors and " (--allow-errors: exit status 0)" or ""))
      return opts.allow_errors and 0 or 1
   end)
end

return M
