-- apps.tap.tap: capture taps on the running graph (`snabb tap PID APP.PORT out.pcap`, README.md).
-- start() puts a tap (apps/tap/tap.h) on the link leaving an app's output port: the engine runs
-- it as a node right behind the link's writer (engine.on_publish adds it to the graph the C++
-- engine gets), so it copies each packet the writer queues, in place, into a pcap file. The
-- config's graph is not touched: no app is added, no link moved, nothing restarted. Ending a tap
-- (stop, its count reached, its link removed by a reconfiguration, the engine stopped) takes the
-- node out again and closes the file, complete. The control server's POST/GET/DELETE /tap come
-- here (M.register).
local ffi = require("ffi")
require("core.cdefs")
require("apps.tap.cdefs")
local engine = require("core.engine")
local lib = require("core.lib")
local timer = require("core.timer")
local S = require("syscall")
local C = ffi.C

local M = {}

M.housekeeping_interval = 0.1 -- seconds between flushes and checks of the taps (a core.timer)
M.lease = 10 -- seconds: a tap no one has asked about (status) for this long is ended

local taps = {}         -- id -> tap record (below)
local ids = {}          -- ids of the taps on, in order
local next_id = 1

local function address (cdata) return tonumber(ffi.cast("uintptr_t", ffi.cast("void *", cdata))) end

-- The link leaving APP.PORT (or named by a whole spec "a.out -> b.in") in the running graph: its
-- spec and the app that writes it; or nil and a message in the user's terms.
local function find_link (where)
   if type(where) ~= "string" then return nil, "link must be a string APP.PORT" end
   local app, port = where:match("^%s*([%a_][%w_]*)%.([%w_]+)%s*$")
   if not app then app, port = where:match("^%s*([%a_][%w_]*)%.([%w_]+)%s*%->") end
   if not app then
      return nil, ("'%s' is not an output port APP.PORT (e.g. source.output)"):format(where)
   end
   local c, outputs = engine.configuration, {}
   if not c.apps[app] then
      local names = {}
      for name in pairs(c.apps) do names[#names+1] = name end
      table.sort(names)
      return nil, ("no app '%s' in the running graph (its apps: %s)"):format(app,
         #names > 0 and table.concat(names, ", ") or "none")
   end
   for spec, l in pairs(c.links) do
      if l.from_app == app then
         if l.from_port == port then return spec, app end
         outputs[#outputs+1] = l.from_port
      end
   end
   table.sort(outputs)
   return nil, ("app '%s' has no link on an output port '%s' (%s)"):format(app, port,
      #outputs > 0 and "its linked outputs: " .. table.concat(outputs, ", ") or "it feeds no link")
end

-- A tap's figures, as status() and the control server give them.
local function describe (t) -- (the node's stats stay with t after it ends)
   local s = t.handle and C.snabb_tap_stats(t.handle) or t.final
   local packets = tonumber(s.packets)
   return {id = t.id, link = t.spec, file = t.file, count = tonumber(s.limit),
           packets = packets, bytes = tonumber(s.bytes), missed = tonumber(s.missed),
           done = t.ended ~= nil or s.done ~= 0, ended = t.ended, error = t.error,
           -- the tap's calls (the engine's TSC reads around them), per packet written
           cycles_per_packet = packets > 0 and tonumber(t.stats.cycles) / packets or 0}
end

local housekeeping

-- Ends tap t: takes it out of the graph (unless `republish` is false: the caller is publishing),
-- closes its file, keeps its final figures. `why`: what ended it.
local function finish (t, why, republish)
   if t.ended then return end
   t.ended = why
   for i, id in ipairs(ids) do if id == t.id then table.remove(ids, i) break end end
   t.final = ffi.new("struct tap_stats")
   ffi.copy(t.final, C.snabb_tap_stats(t.handle), ffi.sizeof("struct tap_stats"))
   local handle = t.handle
   t.handle = nil
   if C.snabb_tap_close(handle) ~= 0 then t.error = ffi.string(C.snabb_error()) end
   if republish ~= false then engine.republish() end
   if #ids == 0 and housekeeping then timer.cancel(housekeeping); housekeeping = nil end
end

-- engine.on_publish: puts each tap's node right after its writer's node; ends the taps whose link
-- has left the graph.
local function add_nodes (nodes)
   if #ids == 0 then return end
   local behind = {}   -- writer's name -> tap nodes
   for _, id in ipairs({unpack(ids)}) do
      local t = taps[id]
      if engine.link_table[t.spec] ~= t.link or not engine.configuration.links[t.spec] then
         finish(t, "its link was removed by a reconfiguration", false)
      else
         behind[t.writer] = behind[t.writer] or {}
         table.insert(behind[t.writer], t.node)
      end
   end
   local all = {}
   for _, node in ipairs(nodes) do
      all[#all+1] = node
      for _, tap_node in ipairs(behind[node.name] or {}) do all[#all+1] = tap_node end
   end
   for i, node in ipairs(all) do nodes[i] = node end
end

-- Between slices: writes out what the taps buffered, ends those at their count and those no one
-- has asked about for M.lease seconds (their client is gone).
local function tend ()
   local t0 = engine.now()
   for _, id in ipairs({unpack(ids)}) do
      local t = taps[id]
      if C.snabb_tap_flush(t.handle) ~= 0 then
         t.error = ffi.string(C.snabb_error())
         finish(t, "writing its file failed")
      elseif C.snabb_tap_stats(t.handle).done ~= 0 then
         finish(t, "its count was reached")
      elseif t0 - t.asked > M.lease then
         finish(t, ("no one asked about it for %d s"):format(M.lease))
      end
   end
end

-- Starts a tap on the link leaving `where` (APP.PORT) into pcap file `file`, at most `count`
-- packets (nil or 0: until stopped). Returns its id, or nil and a message.
function M.start (where, file, count)
   count = count or 0
   if type(count) ~= "number" or count < 0 or count ~= math.floor(count) or count >= 2^53 then
      return nil, ("count must be a whole number of packets >= 0, got %s"):format(lib.describe(count))
   end
   if type(file) ~= "string" or file == "" then
      return nil, ("file must be a file name, got %s"):format(lib.describe(file))
   end
   local spec, writer = find_link(where)
   if not spec then return nil, writer end
   -- Opening a FIFO would wait for its reader, and writing to it too, on the engine's thread.
   local st = S.stat(file)
   if st and not (st.isreg or st.ischr) then
      return nil, ("%s: not a regular file (a %s); a tap writes a pcap file"):format(file,
         st.isfifo and "FIFO" or st.isdir and "directory" or st.issock and "socket" or "special file")
   end
   local r = engine.link_table[spec]
   local handle = C.snabb_tap_open(file, r, count)
   if handle == nil then return nil, ffi.string(C.snabb_error()) end
   local id = next_id
   next_id = next_id + 1
   local stats = ffi.new("struct app_stats")
   local t = {id = id, spec = spec, writer = writer, file = file, link = r, handle = handle,
              stats = stats, asked = engine.now()}
   -- The node: a Lua app object whose pull and push are the C function (vm/lua_app.h), pushed
   -- when the link has packets (its push entry's link), with no ports of its own (so its calls
   -- count no packets in app or engine figures).
   t.node = {name = "tap " .. spec, app = {}, stats = address(stats), inputs = {}, outputs = {},
             push = {{links = {address(r)}}}, c_pull = address(C.snabb_tap_run),
             c_push = address(C.snabb_tap_run), c_arg = address(handle)}
   taps[id], ids[#ids+1] = t, id
   engine.on_publish = add_nodes
   engine.republish()
   if not housekeeping then
      housekeeping = timer.new("taps", tend, M.housekeeping_interval * 1e9, "repeating")
      timer.activate(housekeeping)
   end
   return id
end

-- The figures of tap `id` ({id, link, file, count, packets, bytes, missed, done, ended, error}),
-- or nil and a message. Asking keeps the tap's lease.
function M.status (id)
   local t = taps[tonumber(id)]
   if not t then return nil, ("no tap %s"):format(tostring(id)) end
   t.asked = engine.now()
   if t.handle then
      if C.snabb_tap_flush(t.handle) ~= 0 then
         t.error = ffi.string(C.snabb_error())
         finish(t, "writing its file failed")
      elseif C.snabb_tap_stats(t.handle).done ~= 0 then
         finish(t, "its count was reached")
      end
   end
   return describe(t)
end

-- Ends tap `id` and forgets it; its final figures, or nil and a message.
function M.stop (id)
   local t = taps[tonumber(id)]
   if not t then return nil, ("no tap %s"):format(tostring(id)) end
   finish(t, t.handle and C.snabb_tap_stats(t.handle).done ~= 0 and "its count was reached" or "stopped")
   taps[t.id] = nil
   return describe(t)
end

-- The ids of the taps on.
function M.list () return {unpack(ids)} end

-- The control server's endpoints (observe.control): POST /tap {link, file, count} -> {id, ...};
-- GET /tap/ID -> its figures; DELETE /tap/ID -> ends it, its final figures.
function M.register (control)
   local json = require("dkjson")
   control.handle("POST", "/tap", function (body)
      local request, _, err = json.decode(body or "")
      if type(request) ~= "table" then
         return 400, {error = "POST /tap: the body must be JSON {link, file, count}: " ..
                         tostring(err or "not an object")}
      end
      local id, message = M.start(request.link, request.file, request.count)
      if not id then return 400, {error = "snabb tap: " .. message} end
      return 200, describe(taps[id])
   end)
   control.handle("GET", "/tap/(%d+)", function (_, captures)
      local status, message = M.status(captures[1])
      if not status then return 404, {error = message} end
      return 200, status
   end)
   control.handle("DELETE", "/tap/(%d+)", function (_, captures)
      local status, message = M.stop(captures[1])
      if not status then return 404, {error = message} end
      return 200, status
   end)
end

-- The records of a pcap file we wrote (native order, microseconds): {header .. data} strings.
local function records (path)
   local f = assert(io.open(path, "rb"))
   local s = f:read("*a")
   f:close()
   local list, at = {}, 24
   while at + 16 <= #s do
      local caplen = ffi.cast("const uint32_t *", ffi.cast("const char *", s) + at + 8)[0]
      list[#list+1] = s:sub(at + 1, at + 16 + caplen)
      at = at + 16 + caplen
   end
   assert(at == #s, path .. ": ends inside a record")
   return list, s:sub(1, 24)
end

function M.selftest ()
   print("selftest: apps.tap.tap")
   local config = require("core.config")
   local link = require("core.link")
   local packet = require("core.packet")
   local basic = require("apps.basic.basic_apps")
   local pcap = require("apps.pcap.pcap")
   local input = "tests/data/pcap/v6.pcap"
   local out = os.tmpname()
   -- A forwarder between reader and sink, so the tapped link has a reader of its own.
   local Fwd = {}
   function Fwd.new () return setmetatable({}, {__index = Fwd}) end
   function Fwd:push ()
      local i, o = self.input.input, self.output.output
      for _ = 1, link.nreadable(i) do link.transmit(o, link.receive(i)) end
   end

   -- Every record crossing reader.output, as it was in the capture (a tap writes the packet's own
   -- timestamp, as PcapWriter does): the tap's file is the capture, record for record.
   local c = config.new()
   config.app(c, "reader", pcap.PcapReader, input)
   config.app(c, "fwd", Fwd)
   config.app(c, "sink", basic.Sink)
   config.link(c, "reader.output -> fwd.input")
   config.link(c, "fwd.output -> sink.input")
   engine.configure(c)
   local id = assert(M.start("reader.output", out))
   engine.main({done = function () return engine.app_table.reader.done end, no_report = true})
   local final = assert(M.stop(id))
   local want, got = records(input), records(out)
   assert(#want == 161 and #got == #want and final.packets == #want and final.missed == 0,
          ("%d records in, %d tapped (%d written, %d missed)"):format(#want, #got, final.packets, final.missed))
   for i = 1, #want do assert(got[i] == want[i], "record " .. i .. " differs") end
   assert(final.ended == "stopped" and M.status(id) == nil and #M.list() == 0)
   assert(engine.app_stats({"sink"})[1].packets_in == #want) -- the graph was not disturbed
   engine.configure(config.new())

   -- Under way, while the graph runs: numbered packets from a source, a tap started and stopped
   -- between slices; its file holds an unbroken run of numbers. Then one with a count.
   local Numbers = {}
   function Numbers.new () return setmetatable({n = 0}, {__index = Numbers}) end
   function Numbers:pull ()
      local o = self.output.output
      for _ = 1, link.nwritable(o) do
         local p = packet.allocate()
         p.length = 64
         ffi.cast("uint32_t *", p.data)[0] = self.n
         self.n = self.n + 1
         link.transmit(o, p)
      end
   end
   c = config.new()
   config.app(c, "numbers", Numbers)
   config.app(c, "fwd", Fwd)
   config.app(c, "sink", basic.Sink)
   config.link(c, "numbers.output -> fwd.input")
   config.link(c, "fwd.output -> sink.input")
   engine.configure(c)
   local started, stopped, counted
   local t0 = engine.now()
   engine.main({no_report = true, done = function ()
      local t = engine.now() - t0
      if not started and t > 0.02 then started = assert(M.start("fwd.output", out)) end
      if started and not stopped and M.status(started).packets > 5000 then stopped = assert(M.stop(started)) end
      if stopped and not counted then counted = assert(M.start("numbers.output", out .. ".2", 1000)) end
      return counted and M.status(counted).done
   end})
   got = records(out)
   assert(#got == stopped.packets and #got > 1000, #got .. " records, " .. stopped.packets .. " written")
   local function number (r) return ffi.cast("const uint32_t *", ffi.cast("const char *", r) + 16)[0] end
   for i = 2, #got do assert(number(got[i]) == number(got[i-1]) + 1, "a gap after record " .. (i - 1)) end
   local status = M.stop(counted)
   got = records(out .. ".2")
   assert(#got == 1000 and status.packets == 1000 and status.ended == "its count was reached",
          #got .. " " .. status.ended)
   for i = 2, #got do assert(number(got[i]) == number(got[i-1]) + 1, "a gap after record " .. (i - 1)) end

   -- Off, a tap leaves nothing behind: the graph the C++ engine gets is the config's, node for
   -- node; on, one node more, right behind the link's writer.
   local runtime = require("snabb.runtime")
   local set_graph, published = runtime.set_graph, nil
   runtime.set_graph = function (nodes)
      published = {}
      for i, node in ipairs(nodes) do published[i] = node.name end
      return set_graph(nodes)
   end
   engine.republish()
   local plain = table.concat(published, ",")
   assert(plain == "numbers,fwd,sink", plain)
   -- A reconfiguration that removes the tapped link ends the tap (its file complete); one that
   -- keeps the link keeps the tap.
   id = assert(M.start("fwd.output", out))
   assert(table.concat(published, ",") == "numbers,fwd,tap fwd.output -> sink.input,sink", table.concat(published, ","))
   engine.main({duration = 0.01, no_report = true})
   config.app(c, "sink", basic.Sink) -- the same: nothing changes
   engine.configure(c)
   assert(M.status(id).ended == nil)
   c.links["fwd.output -> sink.input"] = nil
   engine.configure(c)
   status = M.status(id)
   assert(status.ended == "its link was removed by a reconfiguration" and status.packets > 0, status.ended)
   assert(#records(out) == status.packets)
   M.stop(id)
   engine.republish()
   assert(table.concat(published, ",") == "numbers,sink,fwd", table.concat(published, ",")) -- (sink: fed no more)
   runtime.set_graph = set_graph

   -- Mistakes, in the user's terms.
   local function refused (where, file, count, pattern)
      local ok, err = M.start(where, file, count)
      assert(not ok and err:match(pattern), tostring(err))
   end
   refused("nope.output", out, nil, "^no app 'nope' in the running graph %(its apps: fwd, numbers, sink%)$")
   refused("numbers.outptu", out, nil,
           "^app 'numbers' has no link on an output port 'outptu' %(its linked outputs: output%)$")
   refused("sink.output", out, nil, "^app 'sink' has no link on an output port 'output' %(it feeds no link%)$")
   refused("fwd", out, nil, "is not an output port APP.PORT")
   refused("numbers.output", "/nonexistent/x.pcap", nil, "^/nonexistent/x%.pcap: No such file or directory$")
   refused("numbers.output", "/tmp", nil, "^/tmp: not a regular file %(a directory%); a tap writes a pcap file$")
   local fifo = out .. ".fifo"
   assert(S.mknod(fifo, "fifo,rusr,wusr"))
   refused("numbers.output", fifo, nil, "^" .. fifo:gsub("%p", "%%%0") .. ": not a regular file %(a FIFO%)")
   os.remove(fifo)
   refused("numbers.output", out, -1, "^count must be a whole number")
   refused("numbers.output", out, 1.5, "^count must be a whole number")
   assert(select(2, M.status(99)) == "no tap 99" and select(2, M.stop(99)) == "no tap 99")
   engine.configure(config.new())
   os.remove(out)
   os.remove(out .. ".2")
   print("selftest: apps.tap.tap ok")
end

return M
