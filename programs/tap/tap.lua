-- snabb tap PID|DIR APP.PORT OUT.pcap [--count N]: captures what a running instance's app sends
-- on an output port into a pcap file, without stopping its graph (apps/tap/README.md). The
-- instance writes the file (apps.tap.tap, through its control server: POST /tap); this client
-- asks how it goes (GET /tap/ID) until N packets are written or Ctrl-C, then ends it (DELETE
-- /tap/ID), which closes the file whole, and prints what was written.
local ffi = require("ffi")
require("core.lib_h") -- sleep_ns
local argparse = require("argparse")
local cli = require("programs.cli")
local control = require("observe.control")
local json = require("dkjson")
local lib = require("core.lib")
local runtime = require("snabb.runtime")
local C = ffi.C

local M = {}

M.summary = "capture what crosses a link of a running instance: snabb tap PID APP.PORT OUT.pcap [--count N]"
-- Ctrl-C (SIGINT, SIGTERM) asks it to stop: it ends the tap, so the file is complete.
M.engine = true

M.poll_interval = 0.2 -- seconds between GET /tap/ID (the instance ends a tap no one asks about
                      -- for apps.tap.tap's lease, 10 s: a client killed without a word)

local function parser ()
   local p = argparse("snabb tap", "Capture what an app of a running snabb run sends on an output port "
                         .. "into a pcap file, while the graph runs.")
      :add_help("-h --help")
   p:argument("target", "the instance: its PID or its run directory")
   p:argument("port", "the output port APP.PORT whose link to capture (e.g. source.output)")
   p:argument("file", "the pcap file to write (created or truncated, by the instance)")
   p:option("-c --count", "stop after this many packets (default: until Ctrl-C)")
      :convert(cli.count("--count"))
   return p
end

local message = control.error_message -- the answer's error message, or the body itself

-- The file as the instance must open it: relative to our working directory, not its.
local function absolute (path)
   if path:sub(1, 1) == "/" then return path end
   pcall(ffi.cdef, "char *getcwd(char *buf, size_t size);")
   local buf = ffi.new("char[?]", 4096)
   if C.getcwd(buf, 4096) == nil then cli.fail("cannot find the working directory for " .. path) end
   return ffi.string(buf) .. "/" .. path
end

local function request (opts, method, path, body)
   local status, answer = control.request(opts.target, method, path, body)
   if not status then cli.fail(answer) end
   return status, answer
end

function M.run (args)
   local opts = cli.parse(parser(), args)
   if not opts then return 2 end
   local file = absolute(opts.file)
   local status, body = request(opts, "POST", "/tap",
                                json.encode({link = opts.port, file = file, count = opts.count}))
   if status == 400 then cli.fail((message(body):gsub("^snabb tap: ", ""))) end
   if status ~= 200 then
      io.stderr:write(("snabb tap: POST /tap: %d %s\n"):format(status, message(body)))
      return 1
   end
   local tap = json.decode(body)
   local path = "/tap/" .. tap.id
   io.stderr:write(("snabb tap: capturing %s into %s%s; Ctrl-C ends it\n"):format(
      tap.link, opts.file, opts.count and (" (%s packets)"):format(lib.comma_value(opts.count)) or ""))
   while not tap.done and not runtime.stop_requested() do
      C.sleep_ns(M.poll_interval * 1e9)
      status, body = request(opts, "GET", path)
      if status ~= 200 then
         io.stderr:write(("snabb tap: GET %s: %d %s\n"):format(path, status, message(body)))
         return 1
      end
      tap = json.decode(body)
   end
   status, body = request(opts, "DELETE", path)
   if status == 200 then tap = json.decode(body) end
   io.stdout:write(("snabb tap: %s packets (%s bytes) of %s into %s; %s%s\n"):format(
      lib.comma_value(tap.packets), lib.comma_value(tap.bytes), tap.link, opts.file,
      runtime.stop_requested() and "stopped" or tap.ended or "stopped",
      tap.packets > 0 and ("; the tap took %.1f cycles a packet"):format(tap.cycles_per_packet) or ""))
   if tap.missed > 0 then
      io.stderr:write(("snabb tap: %s packets were received before the tap saw them (sent from a "
                       .. "tick, or to the app itself): not in the file\n"):format(lib.comma_value(tap.missed)))
   end
   if tap.error then
      io.stderr:write(("snabb tap: %s\n"):format(tap.error))
      return 1
   end
   return 0
end

return M
