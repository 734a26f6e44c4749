-- snabb inspect RUNDIR|PID|FILES [RUN2] [--listen HOST:PORT]: a web page to explore a run's profile and traces,
-- served from the binary (the page, its script and style are compiled in: programs/inspect/
-- assets; no network needed). It serves through the control server (observe/control_server.h,
-- the one HTTP server of snabb) of its own process: on its run directory's Unix socket and on a
-- loopback TCP port, whose URL it prints. Its API, all GET, under /inspect/: the page and its
-- assets, and JSON from programs.inspect.data (the run's profile by app, its traces, one trace's
-- listings) and programs.inspect.aborts (its aborts and blacklists); the server's own GET
-- /counters, /metrics and /profile read the inspected run's directory. Anything else is answered
-- 404 or 405; no file is ever served by its path.
-- snabb inspect A B compares two runs (programs.inspect.compare; each run's own API under
-- /inspect/api/a/ and /inspect/api/b/); a run may be the files of snabb -a FILE -p FILE
-- (programs.inspect.runs); a running PID's counters are sampled once a second into a history
-- (programs.inspect.history) from the loop below.
local ffi = require("ffi")
require("core.lib_h") -- sleep_ns, get_monotonic_time
local argparse = require("argparse")
local cli = require("programs.cli")
local control = require("observe.control")
local rundir = require("observe.rundir")
local runtime = require("snabb.runtime")
local data = require("programs.inspect.data")
local compare = require("programs.inspect.compare")
local history = require("programs.inspect.history")
local runs_mod = require("programs.inspect.runs")
local C = ffi.C

local M = {}

M.summary = "explore a run's profile and traces in a browser, or compare two: "
   .. "snabb inspect RUN [RUN2] [--listen HOST:PORT]"
-- Ctrl-C (SIGINT, SIGTERM) asks it to stop (runtime.stop_requested), so its run directory goes.
M.engine = true

M.poll_interval = 0.002 -- seconds between looks at the control server's mailbox

M.PREFIX = "/inspect/"

-- The assets by name, with their content types (assets.lua is generated from the files at build
-- time: programs/inspect/assets/BUILD).
local TYPES = {html = "text/html; charset=utf-8", js = "text/javascript; charset=utf-8",
               css = "text/css; charset=utf-8"}

local function endpoints ()
   return "GET /inspect/ (the page), /inspect/api/apps, /inspect/api/traces, /inspect/api/trace/N, "
          .. "/inspect/api/source?chunk=@FILE, "
          .. "/inspect/api/aborts, /inspect/api/history, /inspect/api/runs (with two runs: "
          .. "/inspect/api/compare and each run's under /inspect/api/a/ and /inspect/api/b/), and "
          .. "the inspected run's /counters, /metrics, /profile"
end

local function not_found (path)
   return 404, {error = ("no endpoint GET %s; snabb inspect serves %s"):format(path, endpoints())}
end

-- One run's API under prefix (/inspect/api/ or /inspect/api/a/ ...): its profile by app, traces,
-- one trace, its counters over time (programs.inspect.history).
local function run_api (prefix, run, hist)
   control.handle("GET", prefix .. "apps", function () return 200, data.apps(run) end)
   control.handle("GET", prefix .. "traces", function () return 200, data.traces(run) end)
   control.handle("GET", prefix .. "aborts", function ()
      return 200, require("programs.inspect.aborts").view(run, data)
   end)
   control.handle("GET", prefix .. "source", function (_, _, request)
      local chunk = request.query.chunk
      if not chunk or chunk == "" then return 400, {error = "GET /inspect/api/source?chunk=@FILE.lua"} end
      local v = data.source(run, chunk)
      if not v then return 404, {error = ("no source %s in %s"):format(chunk, run.dir)} end
      return 200, v
   end)
   control.handle("GET", prefix .. "trace/(%d+)", function (_, captures)
      local t = data.trace(run, tonumber(captures[1]))
      if not t then return 404, {error = ("no trace %s in %s"):format(captures[1], run.dir)} end
      return 200, t
   end)
   control.handle("GET", prefix .. "history", function (_, _, request)
      return 200, history.json(hist, tonumber(request.query.since))
   end)
end

-- Registers the page and the API for runs (data.open or data.open_files gave them; a second one
-- is compared with the first), with histories (programs.inspect.history) beside them.
function M.handlers (runs, histories)
   local assets = require("programs.inspect.assets")
   local function asset (name)
      return function ()
         return 200, assets[name], TYPES[name:match("%.(%w+)$")]
      end
   end
   control.handle("GET", "/inspect/", asset("index.html"))
   control.handle("GET", "/inspect", asset("index.html"))
   -- Chart.js, as the bench's HTML report has it (programs/bench/report/BUILD: one copy in the
   -- binary), loaded by the page when it draws a chart.
   control.handle("GET", "/inspect/chart%.js", function ()
      return 200, require("programs.bench.report.chartjs"), TYPES.js
   end)
   control.handle("GET", "/inspect/([%w_]+%.[%w]+)", function (_, captures)
      local name = captures[1]
      if not assets[name] or name == "index.html" then return not_found("/inspect/" .. name) end
      return asset(name)()
   end)
   local described = {}
   for i, run in ipairs(runs) do
      described[i] = {id = i == 1 and "a" or "b", dir = run.dir, files = run.files}
   end
   control.handle("GET", "/inspect/api/runs", function () return 200, {runs = described} end)
   if runs[2] then
      control.handle("GET", "/inspect/api/compare", function ()
         return 200, compare.compare(runs[1], runs[2])
      end)
      run_api("/inspect/api/a/", runs[1], histories[1])
      run_api("/inspect/api/b/", runs[2], histories[2])
   end
   run_api("/inspect/api/", runs[1], histories[1])
   -- Every other path (but the server's own /counters, /metrics and /profile, of the inspected
   -- run): a 404 naming what it serves, rather than the server's list of snabb run's endpoints.
   control.handle("GET", "/", asset("index.html")) -- (its links are absolute)
   control.handle("GET", "/(.*)", function (_, captures) return not_found("/" .. captures[1]) end)
end

function M.run (args)
   local p = argparse("snabb inspect", "Explore a run's profile by app and its JIT traces (bytecode, "
                      .. "IR, machine code) in a browser, from its run directory; or compare two "
                      .. "runs (snabb inspect A B).")
      :add_help("-h --help")
   p:argument("target", "the run: a running snabb's PID, a run directory (snabb run --rundir DIR, "
                 .. "kept or copied), or the files of snabb -a FILE -p FILE; two runs: compared")
      :args("*")
   p:option("--auditlog", "a JIT auditlog written by snabb -a FILE (a run without a run directory)")
      :argname("FILE")
   p:option("--vmprofile", "a vmprofile written by snabb -p FILE (the same run's)"):argname("FILE")
   p:option("--listen", "serve on TCP HOST:PORT or PORT (default 127.0.0.1:0, a free port)")
      :default("127.0.0.1:0")
   local opts = cli.parse(p, args)
   if not opts then return 2 end
   local host, port = control.parse_listen(opts.listen)
   if not host then cli.fail(port) end
   local resolved, specs = pcall(runs_mod.resolve, opts.target, opts)
   if not resolved then cli.fail(specs) end
   local runs, histories = {}, {}
   for i, spec in ipairs(specs) do
      local run_ok, run
      if spec.dir then
         run_ok, run = pcall(data.open, spec.dir)
      else
         run_ok, run = true, data.open_files(spec.files, spec.target)
      end
      if not run_ok then cli.fail(run) end
      -- Read and decoded once before serving (a live run's files again as they change), so that
      -- the page's first load does not wait for it.
      local read_ok, err = pcall(function () data.apps(run) data.traces(run) end)
      if not read_ok then cli.fail(("%s: %s"):format(run.dir, err)) end
      runs[i], histories[i] = run, history.new(spec.dir)
   end
   -- The control server's /counters, /metrics and /profile: the first run with a directory's.
   local dir
   for _, run in ipairs(runs) do if not run.files then dir = dir or run.dir end end
   -- Its own run directory holds its control socket (the inspected one may be live, or not ours
   -- to write in).
   local own = rundir.instance()
   M.handlers(runs, histories)
   local started, tcp = pcall(control.start, own.dir, {listen = opts.listen, data_dir = dir})
   if not started then
      io.stderr:write(("snabb inspect: %s\n"):format(tcp))
      return 1
   end
   io.stdout:write(("snabb inspect: %s at http://%s:%d%s (and on %s/%s); Ctrl-C ends it\n"):format(
      runs[2] and ("%s against %s"):format(runs[2].dir, runs[1].dir) or runs[1].dir,
      host:find(":") and "[" .. host .. "]" or host, tcp, M.PREFIX, own.dir, control.SOCKET))
   io.stdout:flush()
   while not runtime.stop_requested() do
      control.poll()
      local now = C.get_monotonic_time()
      for _, h in ipairs(histories) do history.poll(h, now) end
      C.sleep_ns(M.poll_interval * 1e9)
   end
   control.stop()
   return 0
end

return M
