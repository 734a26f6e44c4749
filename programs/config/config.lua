-- snabb config PID|DIR get|load [FILE]: the control server's client for a running instance's
-- configuration (observe.control): `get` prints its config file, apps and links (GET /config);
-- `load FILE` sends FILE's text to be configured live (POST /config) and prints what changed, or
-- the config's error as snabb run words it (file:line).
local argparse = require("argparse")
local cli = require("programs.cli")
local control = require("observe.control")
local json = require("dkjson")
local lib = require("core.lib")

local M = {}

M.summary = "show or replace a running instance's graph: snabb config PID get|load FILE"

local function parser ()
   local p = argparse("snabb config", "Show or replace the app graph of a running snabb run.")
      :add_help("-h --help")
   p:argument("target", "the instance: its PID or its run directory")
   p:argument("action", "get: print its config; load: configure it with FILE, live")
      :choices({"get", "load"})
   p:argument("file", "with load: a config file, as snabb run takes it"):args("?")
   p:flag("--json", "with get: the JSON the control server answers")
   return p
end

-- A failure of the instance's (a config with an error, an unexpected status): one line, exit 1.
local function failed (text)
   io.stderr:write("snabb config: ", text, "\n")
   return 1
end

local message = control.error_message -- the answer's error message, or the body itself

local function get (opts)
   local status, body = control.request(opts.target, "GET", "/config")
   if not status then cli.fail(body) end
   if status ~= 200 then return failed(("GET /config: %d %s"):format(status, message(body))) end
   if opts.json then io.stdout:write(body) return 0 end
   local doc = json.decode(body)
   io.stdout:write(("config %s\n\n"):format(doc.file))
   local rows = {}
   for _, a in ipairs(doc.apps) do rows[#rows+1] = {a.name, a.class} end
   io.stdout:write(lib.table_text({"app", "class"}, rows))
   if #doc.links > 0 then
      rows = {}
      for _, l in ipairs(doc.links) do rows[#rows+1] = {l} end
      io.stdout:write("\n", lib.table_text({"link"}, rows))
   end
   return 0
end

local function list (names) return #names > 0 and table.concat(names, ", ") or nil end

local function load (opts)
   if not opts.file then cli.fail("load needs a config FILE (snabb config PID load FILE)") end
   local f, err = io.open(opts.file)
   if not f then cli.fail(err) end
   local text = f:read("*a")
   f:close()
   local path = "/config?file=" .. opts.file:gsub("[^%w%-%._~/]", function (c)
      return ("%%%02X"):format(c:byte())
   end)
   local status, body = control.request(opts.target, "POST", path, text)
   if not status then cli.fail(body) end
   if status ~= 200 then return failed(message(body)) end
   local doc = json.decode(body)
   local lines = {}
   for _, what in ipairs({"started", "stopped", "restarted", "reconfigured"}) do
      local names = list(doc.apps[what])
      if names then lines[#lines+1] = ("  apps %s: %s"):format(what, names) end
   end
   for _, what in ipairs({"added", "removed"}) do
      local names = list(doc.links[what])
      if names then lines[#lines+1] = ("  links %s: %s"):format(what, names) end
   end
   local packets = doc.packets
   if #doc.links.removed > 0 then
      lines[#lines+1] = ("  packets queued in the links removed: %s carried to the new graph's, %s dropped")
         :format(lib.comma_value(packets.carried), lib.comma_value(packets.dropped))
   end
   io.stdout:write(("snabb config: %s configured%s\n"):format(opts.file,
      #lines > 0 and "" or "; nothing changed"))
   if #lines > 0 then io.stdout:write(table.concat(lines, "\n"), "\n") end
   return 0
end

function M.run (args)
   local opts = cli.parse(parser(), args)
   if not opts then return 2 end
   if opts.action == "get" then return get(opts) end
   return load(opts)
end

return M
