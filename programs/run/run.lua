-- snabb run CONFIG [--duration S] [--report]: runs the app graph that a Lua file returns.
local argparse = require("argparse")
local cli = require("programs.cli")
local config = require("core.config")
local engine = require("core.engine")
local lib = require("core.lib")
local observe = require("jit.observe")

local M = {}

local function parser ()
   local p = argparse("snabb run", "Run an app graph described by a Lua config file.")
      :add_help("-h --help")
   p:argument("config", "Lua file that returns a config (made with config.new())")
   p:argument("args", "arguments for the config file (its ...)"):args("*")
   p:option("-d --duration", "stop after this many seconds, a number > 0 (default: run until interrupted)")
      :convert(cli.seconds("--duration"))
   p:flag("-r --report", "print what each app and link did at the end")
   observe.add_options(p)
   require("jit.safety").add_options(p)
   require("drivers.dpdk.dpdk").add_options(p)
   return p
end

-- Runs a config file and returns the config it builds; errors name the file and line.
function M.load_config (path, args)
   local chunk, err = loadfile(path)
   if not chunk then error(err, 0) end
   local ok, c = xpcall(chunk, lib.error_message, unpack(args or {}))
   if not ok then error(c, 0) end
   if not config.is_config(c) then
      error(("%s: returned %s, not a config; end the file with `return c` where c = config.new()")
         :format(path, c == nil and "nothing" or type(c)), 0)
   end
   return c
end

function M.run (args)
   local p = parser()
   local opts = cli.parse(p, args)
   if not opts then return 2 end
   require("jit.safety").apply_options(opts)
   observe.run(opts, "snabb run " .. opts.config, function ()
      require("drivers.dpdk.dpdk").apply_options(opts)
      engine.configure(M.load_config(opts.config, opts.args))
      engine.main({duration = opts.duration, report = opts.report})
      engine.stop()
   end)
   return 0
end

return M
