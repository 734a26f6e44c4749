-- observe.control: the Lua side of the control server (observe/control_server.h). The server
-- runs on a thread of its own and answers /counters, /metrics and /profile there; a request whose
-- path a handler registered here claims waits in a mailbox that engine.main polls between slices
-- (engine.on_slice: a load of one word when nothing waits), and its handler runs on the engine's
-- thread, between breaths, where it may reconfigure the graph. The client half, request(), is
-- what `snabb config` and `snabb tap` use.
--
--   control.handle(METHOD, PATH_PATTERN, function (body, captures, request) return status, body end)
--     PATH_PATTERN: a Lua pattern matched against the whole path (without the query), e.g.
--     "/tap/(%d+)"; captures: its captures; request: {method=, path=, query= {NAME = VALUE}}.
--     body returned: a string (sent as it is, JSON unless a third result names the content type)
--     or a table (sent as JSON).
--   control.request(pid_or_rundir, method, path[, body]) -> status, body | nil, err
local ffi = require("ffi")
local json = require("dkjson")
local lib = require("core.lib")
local engine = require("core.engine")
require("core.cdefs") -- snabb_error
require("observe.control_server_cdefs")
local C = ffi.C

local M = {}

M.SOCKET = "control"   -- its name in the run directory
M.per_slice = 8        -- requests handled per poll at most, so the graph keeps moving
M.client_timeout = 70  -- seconds a client waits (the server gives Lua 60 s)

local handlers = {}    -- {method=, pattern=, anchored=, prefix=, fn=}, in registration order
local running = false
local pending = C.snabb_control_pending()
local taken = ffi.new("struct snabb_control_request")

-- The literal head of a pattern (what every path it matches starts with): the server sends Lua
-- only paths with such a prefix and answers the rest itself.
local function prefix_of (pattern)
   local head = pattern:match("^[^%^%$%(%)%%%.%[%]%*%+%-%?]*")
   local rest = pattern:sub(#head + 1, #head + 1)
   -- "x*", "x?", "x-" make the last literal character optional.
   if rest == "*" or rest == "?" or rest == "-" then head = head:sub(1, -2) end
   return head
end

function M.handle (method, pattern, fn)
   if type(method) ~= "string" or not method:match("^%u+$") then
      error(("control.handle: method must be an HTTP method in capitals, got %s"):format(lib.describe(method)), 2)
   end
   if type(pattern) ~= "string" or pattern:sub(1, 1) ~= "/" then
      error(("control.handle: path pattern must start with '/', got %s"):format(lib.describe(pattern)), 2)
   end
   if type(fn) ~= "function" then
      error(("control.handle: handler must be a function, got %s"):format(lib.describe(fn)), 2)
   end
   for _, h in ipairs(handlers) do
      if h.method == method and h.pattern == pattern then h.fn = fn return end
   end
   local h = {method = method, pattern = pattern, anchored = "^" .. pattern .. "$",
              prefix = prefix_of(pattern), fn = fn}
   handlers[#handlers+1] = h
   if running then C.snabb_control_route(h.prefix) end
end

local function decode_query (query)
   local q = {}
   for pair in query:gmatch("[^&]+") do
      local k, v = pair:match("^([^=]*)=?(.*)$")
      local function unescape (s)
         return (s:gsub("+", " "):gsub("%%(%x%x)", function (h) return string.char(tonumber(h, 16)) end))
      end
      q[unescape(k)] = unescape(v)
   end
   return q
end

local function error_body (message) return json.encode({error = message}) .. "\n" end

-- The reader of an answer's error (a client's): the message error_body wrote, else the body.
function M.error_message (body)
   local doc = json.decode(body)
   return type(doc) == "table" and doc.error or (body:gsub("\n$", ""))
end

-- The answer to one request: status, body, content type (nil: JSON).
function M.dispatch (method, path, body, query)
   local allowed = {}
   for _, h in ipairs(handlers) do
      local captures = {path:match(h.anchored)}
      if #captures > 0 then
         if h.method == method then
            local request = {method = method, path = path, query = decode_query(query or "")}
            local ok, status, answer, content_type = xpcall(h.fn, debug.traceback, body, captures, request)
            if not ok then
               io.stderr:write(("snabb control: %s %s: %s\n"):format(method, path, tostring(status)))
               return 500, error_body(("%s %s failed: %s"):format(method, path,
                  tostring(status):match("^[^\n]*"):gsub("^[^\n]-%.lua:%d+: ", "")))
            end
            if type(answer) == "table" then answer = json.encode(answer) .. "\n" end
            if type(status) ~= "number" or type(answer) ~= "string" then
               return 500, error_body(("%s %s: its handler returned %s, %s (want a status and a body)")
                  :format(method, path, lib.describe(status), lib.describe(answer)))
            end
            return status, answer, content_type
         end
         if not allowed[h.method] then allowed[h.method], allowed[#allowed+1] = true, h.method end
      end
   end
   if #allowed > 0 then
      return 405, error_body(("%s %s: only %s"):format(method, path, table.concat(allowed, ", ")))
   end
   return 404, error_body(("no endpoint %s %s"):format(method, path))
end

-- engine.on_slice: answers what waits, at most per_slice requests each time.
function M.poll ()
   if pending[0] == 0 then return end
   for _ = 1, M.per_slice do
      if C.snabb_control_take(taken) == 0 then return end
      local status, body, content_type = M.dispatch(ffi.string(taken.method), ffi.string(taken.path),
                                                    ffi.string(taken.body, taken.body_len),
                                                    ffi.string(taken.query))
      C.snabb_control_reply(taken.id, status, content_type, body, #body)
   end
end

-- "HOST:PORT" or "PORT" (host 127.0.0.1): host, port; or nil and a message.
function M.parse_listen (s)
   local host, port = s:match("^%[?([%x:.]+)%]?:(%d+)$")
   if not host then host, port = "127.0.0.1", s:match("^(%d+)$") end
   port = tonumber(port)
   if not port or port > 65535 then
      return nil, ("--listen must be HOST:PORT (HOST an IP address) or PORT (e.g. 127.0.0.1:9090; "
                   .. "port 0 to 65,535), got '%s'"):format(s)
   end
   return host, port
end

-- What configuring `new` over `old` does, in words for a client: apps started, stopped,
-- restarted, reconfigured; links added and removed.
local function changes (old, new)
   local apps = {started = {}, stopped = {}, restarted = {}, reconfigured = {}}
   local links = {added = {}, removed = {}}
   local stopped = {}
   for _, action in ipairs(engine.compute_config_actions(old, new)) do
      local what, args = action[1], action[2]
      if what == "stop_app" then stopped[args[1]] = true
      elseif what == "start_app" then
         local list = stopped[args[1]] and apps.restarted or apps.started
         list[#list+1], stopped[args[1]] = args[1], nil
      elseif what == "reconfig_app" then apps.reconfigured[#apps.reconfigured+1] = args[1]
      elseif what == "new_link" then links.added[#links.added+1] = args[1]
      elseif what == "free_link" then links.removed[#links.removed+1] = args[1]
      end
   end
   for name in pairs(stopped) do apps.stopped[#apps.stopped+1] = name end
   table.sort(apps.stopped)
   return {apps = apps, links = links}
end

-- GET /config and POST /config for a run of config file `file`; load(name, text) runs a config
-- file's text as snabb run runs a file (errors as file:line) and returns the config.
function M.config_handlers (file, load)
   M.handle("GET", "/config", function ()
      local c = engine.configuration
      local apps, links = {}, {}
      for _, a in ipairs(engine.app_stats()) do apps[#apps+1] = {name = a.name, class = a.class} end
      for spec in pairs(c.links) do links[#links+1] = spec end
      table.sort(links)
      return 200, {file = file, apps = apps, links = links}
   end)
   M.handle("POST", "/config", function (body, _, request)
      local name = request.query.file or "POST /config"
      local ok, c = pcall(load, name, body)
      if not ok then return 400, error_body(tostring(c)) end
      local old = engine.configuration
      local diff
      ok, diff = pcall(changes, old, c)
      if not ok then return 400, error_body(tostring(diff)) end
      local err
      local before = engine.retired_link_stats()
      ok, err = pcall(engine.configure, c)
      -- (The engine's configuration is a copy: a new table once configure has applied one.)
      local applied = engine.configuration ~= old
      if applied then file = name end
      -- The packets queued in the links removed: handed to a link of the new graph, or dropped.
      local after = engine.retired_link_stats()
      diff.packets = {carried = after.carried - before.carried, dropped = after.dropped - before.dropped}
      if not ok then
         -- Either nothing changed (the config failed its checks) or the graph is the new one
         -- but an app failed to start (restarted after engine.restart_delay).
         return 400, json.encode({error = tostring(err), applied = applied,
                                  changed = applied and diff or nil}) .. "\n"
      end
      diff.file = name
      return 200, diff
   end)
end

-- Starts the server for run directory dir. options: listen ("HOST:PORT", TCP too), config and
-- load (GET/POST /config: the config file and the loader of a config's text), data_dir (the run
-- directory GET /counters, /metrics and /profile read, default dir: snabb inspect's is another
-- run's). Returns the TCP port when listening.
function M.start (dir, options)
   options = options or {}
   local host, port = nil, -1
   if options.listen then
      host, port = M.parse_listen(options.listen)
      if not host then error(port, 0) end
   end
   if C.snabb_control_start_for(dir, options.data_dir or dir, host, port) ~= 0 then
      error(ffi.string(C.snabb_error()), 0)
   end
   running = true
   pending = C.snabb_control_pending()
   if options.config then M.config_handlers(options.config, options.load) end
   for _, h in ipairs(handlers) do C.snabb_control_route(h.prefix) end
   engine.on_slice = M.poll
   return options.listen and C.snabb_control_tcp_port() or nil
end

function M.stop ()
   if engine.on_slice == M.poll then engine.on_slice = nil end
   running = false
   C.snabb_control_stop()
   pending = C.snabb_control_pending()
end

-- The client.

-- Whether path names anything (a socket too, which io.open cannot open: ENXIO).
local function present (path)
   local f, err = io.open(path)
   if f then f:close() return true end
   return not err:match("No such file or directory")
end

-- The control socket of a PID or a run directory; nil and a message when there is none.
function M.socket_path (target)
   local pid = tonumber(target)
   if pid and not present(tostring(target) .. "/" .. M.SOCKET) then
      if pid ~= math.floor(pid) or pid <= 0 or not present(("/proc/%d"):format(pid)) then
         return nil, ("no snabb instance with PID %s"):format(tostring(target))
      end
      local ok, dir = pcall(require("observe.rundir").find, pid)
      if not ok then return nil, ("no snabb instance with PID %d (%s)"):format(pid, dir) end
      if not present(dir .. "/" .. M.SOCKET) then
         return nil, ("process %d has no control server (snabb run serves one; bench and basic1 do "
                      .. "not)"):format(pid)
      end
      return dir .. "/" .. M.SOCKET
   end
   return tostring(target) .. "/" .. M.SOCKET
end

function M.request (target, method, path, body)
   local socket, err = M.socket_path(target)
   if not socket then return nil, err end
   local out, len = ffi.new("char*[1]"), ffi.new("uint64_t[1]")
   local status = C.snabb_control_call(socket, method, path, body, body and #body or 0,
                                          M.client_timeout * 1000, out, len)
   if status < 0 then return nil, ffi.string(C.snabb_error()) end
   local text = ffi.string(out[0], len[0])
   C.snabb_control_free(out[0])
   return status, text
end

function M.selftest ()
   print("selftest: observe.control")
   assert(prefix_of("/tap/(%d+)") == "/tap/" and prefix_of("/config") == "/config")
   assert(prefix_of("/taps?") == "/tap" and prefix_of("/a%.b") == "/a")
   assert(select(2, M.parse_listen("80x")):match("^%-%-listen must be HOST:PORT"))
   local h, p = M.parse_listen("127.0.0.1:9090")
   assert(h == "127.0.0.1" and p == 9090)
   h, p = M.parse_listen("9091")
   assert(h == "127.0.0.1" and p == 9091)
   M.handle("GET", "/x/(%d+)", function (_, captures, request) return 200, {id = captures[1], q = request.query.a} end)
   M.handle("POST", "/x/(%d+)", function () error("boom") end)
   local status, body = M.dispatch("GET", "/x/12", "", "a=b%20c")
   assert(status == 200 and json.decode(body).id == "12" and json.decode(body).q == "b c", body)
   status, body = M.dispatch("DELETE", "/x/12", "", "")
   assert(status == 405 and body:match("only GET, POST"), body)
   status, body = M.dispatch("POST", "/x/12", "", "")
   assert(status == 500 and json.decode(body).error == "POST /x/12 failed: boom", body)
   status = M.dispatch("GET", "/x/1a", "", "")
   assert(status == 404)
   local _, err = M.request(999999999, "GET", "/counters")
   assert(err == "no snabb instance with PID 999999999", err)
   print("selftest: observe.control ok")
end

return M
