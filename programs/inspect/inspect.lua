-- snabb inspect RUNDIR|PID [--listen HOST:PORT]: a web page to explore a run's profile and traces,
-- served from the binary (the page, its script and style are compiled in: programs/inspect/
-- assets; no network needed). It serves through the control server (observe/control_server.h,
-- the one HTTP server of snabb) of its own process: on its run directory's Unix socket and on a
-- loopback TCP port, whose URL it prints. Its API, all GET, under /inspect/: the page and its
-- assets, and JSON from programs.inspect.data (the run's profile by app, its traces, one trace's
-- listings) and programs.inspect.aborts (its aborts and blacklists); the server's own GET
-- /counters, /metrics and /profile read the inspected run's directory. Anything else is answered
-- 404 or 405; no file is ever served by its path.
local ffi = require("ffi")
require("core.lib_h") -- sleep_ns
local argparse = require("argparse")
local cli = require("programs.cli")
local control = require("observe.control")
local rundir = require("observe.rundir")
local runtime = require("snabb.runtime")
local data = require("programs.inspect.data")
local C = ffi.C

local M = {}

M.summary = "explore a run's profile and traces in a browser: snabb inspect RUNDIR|PID [--listen HOST:PORT]"
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
          .. "/inspect/api/aborts, "
          .. "and the inspected run's /counters, /metrics, /profile"
end

local function not_found (path)
   return 404, {error = ("no endpoint GET %s; snabb inspect serves %s"):format(path, endpoints())}
end

-- Registers the page and the API for the run at dir (data.open checked it).
function M.handlers (run)
   local assets = require("programs.inspect.assets")
   local function asset (name)
      return function ()
         return 200, assets[name], TYPES[name:match("%.(%w+)$")]
      end
   end
   control.handle("GET", "/inspect/", asset("index.html"))
   control.handle("GET", "/inspect", asset("index.html"))
   control.handle("GET", "/inspect/([%w_]+%.[%w]+)", function (_, captures)
      local name = captures[1]
      if not assets[name] or name == "index.html" then return not_found("/inspect/" .. name) end
      return asset(name)()
   end)
   control.handle("GET", "/inspect/api/apps", function () return 200, data.apps(run) end)
   control.handle("GET", "/inspect/api/traces", function () return 200, data.traces(run) end)
   control.handle("GET", "/inspect/api/aborts", function ()
      return 200, require("programs.inspect.aborts").view(run, data)
   end)
   control.handle("GET", "/inspect/api/trace/(%d+)", function (_, captures)
      local t = data.trace(run, tonumber(captures[1]))
      if not t then return 404, {error = ("no trace %s in %s"):format(captures[1], run.dir)} end
      return 200, t
   end)
   -- Every other path (but the server's own /counters, /metrics and /profile, of the inspected
   -- run): a 404 naming what it serves, rather than the server's list of snabb run's endpoints.
   control.handle("GET", "/", asset("index.html")) -- (its links are absolute)
   control.handle("GET", "/(.*)", function (_, captures) return not_found("/" .. captures[1]) end)
end

function M.run (args)
   local p = argparse("snabb inspect", "Explore a run's profile by app and its JIT traces (bytecode, "
                      .. "IR, machine code) in a browser, from its run directory.")
      :add_help("-h --help")
   p:argument("target", "the run: a running snabb's PID or a run directory (snabb run --rundir DIR, "
                 .. "kept or copied)")
   p:option("--listen", "serve on TCP HOST:PORT or PORT (default 127.0.0.1:0, a free port)")
      :default("127.0.0.1:0")
   local opts = cli.parse(p, args)
   if not opts then return 2 end
   local host, port = control.parse_listen(opts.listen)
   if not host then cli.fail(port) end
   local ok, dir = pcall(rundir.find, opts.target)
   -- (rundir.find words it for snabb profile, which also reads vmprofile files; this does not.)
   if not ok then cli.fail((tostring(dir):gsub(" nor a vmprofile file %(snabb %-p FILE%)", ""))) end
   local run_ok, run = pcall(data.open, dir)
   if not run_ok then cli.fail(run) end
   -- Read and decoded once before serving (a live run's files again as they change), so that
   -- the page's first load does not wait for it.
   local read_ok, err = pcall(function () data.apps(run) data.traces(run) end)
   if not read_ok then cli.fail(("%s: %s"):format(dir, err)) end
   -- Its own run directory holds its control socket (the inspected one may be live, or not ours
   -- to write in).
   local own = rundir.instance()
   M.handlers(run)
   local started, tcp = pcall(control.start, own.dir, {listen = opts.listen, data_dir = dir})
   if not started then
      io.stderr:write(("snabb inspect: %s\n"):format(tcp))
      return 1
   end
   io.stdout:write(("snabb inspect: %s at http://%s:%d%s (and on %s/%s); Ctrl-C ends it\n"):format(
      dir, host:find(":") and "[" .. host .. "]" or host, tcp, M.PREFIX, own.dir, control.SOCKET))
   io.stdout:flush()
   while not runtime.stop_requested() do
      control.poll()
      C.sleep_ns(M.poll_interval * 1e9)
   end
   control.stop()
   return 0
end

return M
