-- programs.main: the snabb command line. `snabb COMMAND ARGS...` runs programs.COMMAND;
-- `snabb FILE.lua ARGS...` runs a script with the whole API.
local M = {}

M.version = "0.1.0"

-- Commands in the order `snabb help` lists them.
-- engine = true: runs an app graph, so stop signals stop it cleanly (jit/safety.cc), caught
-- from the start so that one that comes while the config loads counts too.
local commands = {
   {name = "run", module = "programs.run.run", engine = true, summary = "run an app graph: snabb run CONFIG [--duration S] [--report]"},
   {name = "bench", module = "programs.bench.bench", engine = true, summary = "replay a capture through a graph and measure it: snabb bench CONFIG --pcap FILE"},
   {name = "gen-pcap", module = "programs.gen_pcap.gen_pcap", summary = "write a synthetic capture (fixed size or IMIX, N flows): snabb gen-pcap OUT.pcap"},
   {name = "basic1", module = "programs.basic1.basic1", engine = true, summary = "Source -> Tee -> Sink microbenchmark: snabb basic1 NPACKETS"},
   {name = "profile", module = "programs.profile.profile", summary = "where a run's time goes, app by app: snabb profile PID|DIR"},
   {name = "auditlog", module = "programs.auditlog.auditlog", summary = "list a JIT auditlog as jit.dump does: snabb auditlog FILE [--json] [filters]"},
   {name = "selftest", module = "programs.selftest", summary = "run modules' self-tests: snabb selftest MODULE..."},
   {name = "version", summary = "print the version"},
   {name = "help", summary = "print this help"},
}

local function usage (out)
   out:write("Usage: snabb COMMAND [ARGS...]\n       snabb FILE.lua [ARGS...]   run a Lua script with the snabb API\n" ..
             "       snabb -a FILE ...          the same, logging JIT events to FILE (snabb auditlog reads it)\n" ..
             "       snabb -p FILE ...          the same, sampling where time goes into FILE (a vmprofile)\n" ..
             "       snabb --debug ...          the same in debug mode (also SNABB_DEBUG=1): packet.free\n" ..
             "                                  refuses packets freed twice; errors show Lua tracebacks\n\nCommands:\n")
   for _, c in ipairs(commands) do out:write(("  %-10s %s\n"):format(c.name, c.summary)) end
end

-- Snabb's globals, so configs and scripts written for Snabb run as they are.
function M.set_globals ()
   _G.config = require("core.config")
   _G.engine = require("core.engine")
   _G.link = require("core.link")
   _G.packet = require("core.packet")
   _G.lib = require("core.lib")
   _G.counter = require("core.counter")
   package.preload["core.app"] = function () return require("core.engine") end
   require("jit.auditlog").install() -- jit.auditlog(path), as RaptorJIT has it
end

local function run_script (path, args)
   local chunk, err = loadfile(path)
   if not chunk then error(err, 0) end
   _G.arg = {[0] = path, unpack(args)}
   local function handler (e) -- (not a tail call: traceback level 2 is then the erring function)
      local message = debug.traceback(require("core.lib").error_message(e, 3), 2)
      return message
   end
   local ok, result = xpcall(chunk, handler, unpack(args))
   if not ok then error(result, 0) end
   return tonumber(result) or 0
end

-- Returns the process's exit status. Errors are printed as one message, without a Lua traceback
-- unless in debug mode, --debug or SNABB_DEBUG set (script errors keep theirs: they point into the
-- user's code). A run stopped by a signal other than SIGINT or SIGTERM exits with 128 + its number.
function M.main (...)
   local args = {...}
   local safety = require("jit.safety")
   safety.install()
   local name = table.remove(args, 1)
   local debug_mode = os.getenv("SNABB_DEBUG") ~= nil and os.getenv("SNABB_DEBUG") ~= ""
   if name == "--debug" then debug_mode, name = true, table.remove(args, 1) end
   -- Before any module takes packet.free into a local.
   if debug_mode then require("core.packet").set_debug(true) end
   M.set_globals()
   local ok, status = xpcall(function ()
      -- snabb -a FILE / -p FILE ...: a JIT auditlog (jit/AUDITLOG.md) or a vmprofile
      -- (jit/vmprofile.h) of whatever the rest runs.
      while name == "-a" or name == "--auditlog" or name == "-p" or name == "--vmprofile" do
         local file = table.remove(args, 1) or error(name .. ": missing FILE", 0)
         if name:match("^%-%-?a") then require("jit.auditlog").open(file) else require("jit.vmprofile").open(file) end
         name = table.remove(args, 1)
      end
      if name == nil or name == "help" or name == "--help" or name == "-h" then
         usage(name and io.stdout or io.stderr)
         return name and 0 or 2
      elseif name == "version" or name == "--version" then
         print(("snabb %s (%s)"):format(M.version, jit.version))
         return 0
      elseif name:match("%.lua$") then
         return run_script(name, args)
      end
      for _, c in ipairs(commands) do
         if c.name == name and c.module then
            if c.engine then require("snabb.core").catch_signals() end
            return require(c.module).run(args) or 0
         end
      end
      io.stderr:write(("snabb: unknown command '%s'\n\n"):format(name))
      usage(io.stderr)
      return 2
   end, function (err)
      return debug_mode and debug.traceback(err, 2) or err
   end)
   -- A graph still configured (a script that never stopped it, a run that failed) is stopped, so
   -- its apps close their files and its links are freed (LeakSanitizer reported them).
   pcall(require("core.engine").stop)
   if not ok then
      io.stderr:write(("snabb: %s\n"):format(tostring(status)))
      return 1
   end
   io.stdout:flush()
   local signo, signame, signal_status = require("snabb.core").stop_signal()
   if signo > 0 and signal_status ~= 0 then
      io.stderr:write(("snabb: stopped cleanly on %s\n"):format(signame))
      if status == 0 then status = signal_status end
   end
   return status
end

return M
