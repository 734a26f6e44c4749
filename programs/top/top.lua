-- snabb top [PID|DIR]: a live view of a running instance, from its counters in shared memory
-- (core.stats, runtime/stats.h), which it reads without disturbing the dataplane: per app Mpps in
-- and out, cycles per packet, calls per breath and share of the engine's cycles; per link Mpps,
-- Gbit/s, drops and what is queued; the engine's breaths a second and breath latency; the apps'
-- own counters (app-defined, drivers': apps/NAME/X.counter) that moved. Every rate is
-- the difference of two readings over the time between them, as top measures it. On a terminal it
-- redraws every --interval seconds and takes keys (sort order, quit); otherwise (a pipe, a file) it
-- prints one frame after another, --count of them.
local ffi = require("ffi")
local argparse = require("argparse")
local cli = require("programs.cli")
local lib = require("core.lib")
local rundir = require("observe.rundir")
local stats = require("core.stats")
local ps = require("programs.ps.ps")
require("core.lib_h") -- get_monotonic_time, get_unix_time
local C = ffi.C

-- (Other modules, ljsyscall among them, may have declared these already.)
for _, decl in ipairs({"struct pollfd { int fd; short events; short revents; };",
                       "int poll(struct pollfd *fds, unsigned long nfds, int timeout);",
                       "long read(int fd, void *buf, unsigned long count);"}) do
   pcall(ffi.cdef, decl)
end

local M = {}

M.summary = "a live view of a running instance's apps, links and engine: snabb top [PID]"

-- The sort orders: key -> {name, the apps' order, the links' order}.
local function by (field, ascending)
   return function (a, b)
      if a[field] ~= b[field] then
         if ascending then return a[field] < b[field] end
         return a[field] > b[field]
      end
      return a.name < b.name
   end
end
M.sorts = {
   s = {"share", by("share"), by("mpps")},
   i = {"Mpps in", by("mpps_in"), by("mpps")},
   o = {"Mpps out", by("mpps_out"), by("mpps")},
   c = {"cycles/packet", by("cycles_per_packet"), by("mpps")},
   d = {"drops", by("share"), by("drops")},
   n = {"name", by("name", true), by("name", true)},
}

local function parser ()
   local p = argparse("snabb top", "A live view of a running snabb instance (snabb run, bench, " ..
                         "basic1): its apps, links and engine, refreshed every second. Keys: " ..
                         "s i o c d n sort by share, Mpps in, Mpps out, cycles/packet, drops, " ..
                         "name; q (or Ctrl-C) quits.")
   p:argument("target", "the instance: its PID or run directory (default: the only one running)")
      :args("?")
   p:option("--interval", "seconds between refreshes"):argname("SECONDS"):default("1")
      :convert(cli.seconds("--interval"))
   p:option("--count", "frames to show, then exit (default: until q, Ctrl-C or the instance ends)")
      :argname("N"):convert(cli.count("--count"))
   p:option("--sort", "the order of the rows: share, in, out, cycles, drops or name")
      :argname("KEY"):default("share")
      :choices({"share", "in", "out", "cycles", "drops", "name"})
   return p
end
local SORT_KEYS = {share = "s", ["in"] = "i", out = "o", cycles = "c", drops = "d", name = "n"}

-- The run directory of target (a PID or a directory), or of the only instance running; nil and
-- a message in the user's terms.
function M.find (target)
   if target then
      local pid = tonumber(target)
      if not pid then
         -- A path: stats.read says what it lacks.
         if target:match("/") or stats.children(target)[1] then return target end
         return nil, ("'%s' is neither a PID nor a run directory"):format(target)
      end
      if pid ~= math.floor(pid) or pid < 1 or pid > 2^31 then
         return nil, ("'%s' is not a PID (a whole number from 1)"):format(target)
      end
      local ok, dir = pcall(rundir.find, ("%d"):format(pid))
      if not ok then return nil, tostring(dir) end
      return dir
   end
   local list = rundir.instances()
   if #list == 1 then return list[1].dir end
   if #list == 0 then return nil, "no snabb instance is running (snabb ps lists them)" end
   local pids = {}
   for i, instance in ipairs(list) do pids[i] = tostring(instance.pid) end
   return nil, ("%d instances are running (PIDs %s): name one, snabb top PID"):format(#list,
      table.concat(pids, ", "))
end

-- The p-th quantile (0..1) of the breaths counted between two histograms, in cycles (each
-- bucket's upper limit), or nil when no breath moved packets.
local function quantile (new, old, p)
   local total = 0
   for i = 1, #new.breath_buckets do total = total + new.breath_buckets[i] - old.breath_buckets[i] end
   if total == 0 then return nil end
   local seen = 0
   for i = 1, #new.breath_buckets do
      seen = seen + new.breath_buckets[i] - old.breath_buckets[i]
      if seen >= p * total then return new.bucket_limits[i] end
   end
end

-- One frame's figures from two readings `dt` seconds apart: {apps, links, engine} with rates.
function M.rates (new, old, dt)
   local function index (list)
      local t = {}
      for _, x in ipairs(list) do t[x.name] = x end
      return t
   end
   local old_apps, old_links = index(old.apps), index(old.links)
   local breaths = new.engine.breaths - old.engine.breaths
   local apps, links, cycles = {}, {}, 0
   for _, a in ipairs(new.apps) do
      -- An app that came in between the readings counts from 0.
      local o = old_apps[a.name] or {calls = 0, cycles = 0, idle_cycles = 0, packets_in = 0,
                                     packets_out = 0, errors = 0}
      local d_in, d_out = a.packets_in - o.packets_in, a.packets_out - o.packets_out
      local d_cycles = a.cycles - o.cycles
      local packets = math.max(d_in, d_out)
      apps[#apps+1] = {name = a.name, mpps_in = d_in / dt / 1e6, mpps_out = d_out / dt / 1e6,
                       cycles_per_packet = packets > 0 and (d_cycles - (a.idle_cycles - o.idle_cycles)) / packets or 0,
                       calls_per_breath = breaths > 0 and (a.calls - o.calls) / breaths or 0,
                       cycles = d_cycles, errors = a.errors, share = 0}
      cycles = cycles + d_cycles
   end
   for _, a in ipairs(apps) do a.share = cycles > 0 and a.cycles / cycles or 0 end
   -- The apps' own counters (apps/NAME/X.counter: app-defined, drivers') that moved.
   local counters = {}
   for _, a in ipairs(new.apps) do
      local before = (old_apps[a.name] or {}).counters or {}
      for name, value in pairs(a.counters or {}) do
         local d = value - (before[name] or value)
         if d ~= 0 then
            counters[#counters+1] = {name = a.name .. " " .. name, app = a.name, counter = name,
                                     value = value, rate = d / dt}
         end
      end
   end
   table.sort(counters, function (x, y) return x.name < y.name end)
   for _, l in ipairs(new.links) do
      local o = old_links[l.name] or {txpackets = 0, txbytes = 0, txdrop = 0}
      -- What was offered to the link (txpackets: queued, received or dropped), as --report counts.
      links[#links+1] = {name = l.name, mpps = (l.txpackets - o.txpackets) / dt / 1e6,
                         gbps = (l.txbytes - o.txbytes) * 8 / dt / 1e9,
                         drops = (l.txdrop - o.txdrop) / dt, txpackets = l.txpackets,
                         txdrop = l.txdrop, queued = l.queued}
   end
   local hz = new.engine.tsc_hz
   local function us (c) return c and c / hz * 1e6 end
   return {apps = apps, links = links, counters = counters,
           engine = {breaths = breaths / dt, mpps = (new.engine.packets - old.engine.packets) / dt / 1e6,
                     p50 = us(quantile(new.engine, old.engine, 0.5)),
                     p99 = us(quantile(new.engine, old.engine, 0.99)),
                     max = us(quantile(new.engine, old.engine, 1))}}
end

local function fixed (x, digits) return ("%." .. digits .. "f"):format(x) end

-- The text of one frame (lines, without the screen's control codes).
function M.frame (s, r, dt, sort, number)
   local order = M.sorts[sort]
   local lines = {}
   local up = s.engine.started_ns > 0 and ps.duration(C.get_unix_time() - s.engine.started_ns / 1e9) or "-"
   -- (What a narrow window cuts is the end of a line: the config's path goes last.)
   lines[#lines+1] = ("snabb top: PID %d  up %s  (frame %d: rates over %.3f s, sorted by %s; keys: "
                      .. "s i o c d n, q quits)  %s"):format(s.pid, up, number or 1, dt, order[1],
                                                           s.config ~= "" and s.config or "")
   local e = r.engine
   local function latency (x) return x and fixed(x, 2) .. " us" or "-" end
   lines[#lines+1] = ("engine: %s breaths/s, %s Mpps received by apps, breath latency p50 %s, p99 %s, max %s")
      :format(lib.comma_value(math.floor(e.breaths + 0.5)), fixed(e.mpps, 3), latency(e.p50),
              latency(e.p99), latency(e.max))
   lines[#lines+1] = ""
   table.sort(r.apps, order[2])
   local rows = {}
   for _, a in ipairs(r.apps) do
      rows[#rows+1] = {a.name, fixed(a.mpps_in, 3), fixed(a.mpps_out, 3), fixed(a.cycles_per_packet, 1),
                       fixed(a.calls_per_breath, 2), fixed(a.share * 100, 1) .. "%", lib.comma_value(a.errors)}
   end
   local text = lib.table_text({"app", "Mpps in", "Mpps out", "cycles/pkt", "calls/breath", "share", "errors"},
                               rows, {false, true, true, true, true, true, true})
   for line in text:gmatch("([^\n]*)\n") do lines[#lines+1] = line end
   lines[#lines+1] = ""
   table.sort(r.links, order[3])
   rows = {}
   for _, l in ipairs(r.links) do
      rows[#rows+1] = {l.name, fixed(l.mpps, 3), fixed(l.gbps, 3), lib.comma_value(math.floor(l.drops + 0.5)),
                       lib.comma_value(l.txpackets), lib.comma_value(l.txdrop), lib.comma_value(l.queued)}
   end
   text = lib.table_text({"link", "Mpps", "Gbit/s", "drops/s", "txpackets", "txdrop", "queued"},
                         rows, {false, true, true, true, true, true, true})
   for line in text:gmatch("([^\n]*)\n") do lines[#lines+1] = line end
   if #r.counters > 0 then
      lines[#lines+1] = ""
      rows = {}
      for _, c in ipairs(r.counters) do
         rows[#rows+1] = {c.app, c.counter, lib.comma_value(c.value), lib.comma_value(math.floor(c.rate + 0.5))}
      end
      text = lib.table_text({"app", "counter (that moved)", "value", "per second"}, rows,
                            {false, false, true, true})
      for line in text:gmatch("([^\n]*)\n") do lines[#lines+1] = line end
   end
   return lines
end

-- The terminal: raw keys (stty, restored at the end), the alternate screen, its size.
local Terminal = {}

local function stty (args)
   local p = io.popen("stty " .. args .. " 2>/dev/null")
   local out = p:read("*a")
   p:close()
   return out
end

function Terminal.open ()
   local saved = stty("-g"):match("^%s*(.-)%s*$")
   if saved == "" then return nil end
   stty("-icanon -echo -isig min 0 time 0")
   io.stdout:write("\27[?1049h\27[?25l")
   return {saved = saved}
end

function Terminal.close (t)
   io.stdout:write("\27[?25h\27[?1049l")
   io.stdout:flush()
   stty(t.saved)
end

-- The window's rows and columns.
function Terminal.size ()
   local rows, columns = stty("size"):match("^(%d+) (%d+)")
   return tonumber(rows) or 24, tonumber(columns) or 80
end

local pollfd = ffi.new("struct pollfd[1]")
local keybuf = ffi.new("char[16]")
-- Waits up to `seconds` for keys; returns them ("" when none came).
local function keys (seconds)
   pollfd[0].fd, pollfd[0].events = 0, 1 -- POLLIN
   if C.poll(pollfd, 1, math.max(0, math.floor(seconds * 1000))) <= 0 then return "" end
   local n = tonumber(C.read(0, keybuf, 16))
   return n > 0 and ffi.string(keybuf, n) or nil -- nil: end of input
end

local function alive (s)
   local f = s and io.open(("/proc/%d/stat"):format(s.pid))
   if f then f:close() end
   return f ~= nil
end

function M.run (args)
   local p = parser()
   local opts = cli.parse(p, args)
   if not opts then return 2 end
   local dir, err = M.find(opts.target)
   if not dir then cli.usage_error(p, err) return 2 end
   local old, read_err = stats.read(dir)
   if not old then cli.usage_error(p, read_err) return 2 end
   local sort = SORT_KEYS[opts.sort]
   local terminal = require("syscall").isatty(1) and require("syscall").isatty(0) and Terminal.open()
   -- SIGTERM, SIGHUP (the SSH session closed) and the like end the loop (poll and sleep return
   -- early), so the terminal is restored: killed as it was, it stayed without echo or lines.
   local runtime = require("snabb.runtime")
   runtime.catch_signals()
   local t_old = C.get_monotonic_time()
   local frames, wait = 0, opts.interval
   local ok, result = pcall(function ()
      while true do
         local typed = ""
         if terminal then typed = keys(wait) else C.sleep_ns(wait * 1e9) end
         if typed == nil or runtime.stop_requested() then return 0 end
         for key in typed:gmatch(".") do
            if key == "q" or key == "\3" then return 0 end
            if M.sorts[key] then sort = key end
         end
         local t = C.get_monotonic_time()
         local dt = t - t_old
         -- A key redraws at once, with the rates of the time so far (at least 0.1 s of it).
         if dt >= opts.interval or (typed ~= "" and dt >= 0.1) then
            local new = stats.read(dir)
            if not new or not alive(new) then
               if terminal then Terminal.close(terminal) terminal = nil end
               io.stderr:write(("snabb top: instance %d has ended\n"):format(old.pid))
               return 0
            end
            local lines = M.frame(new, M.rates(new, old, dt), dt, sort, frames + 1)
            if terminal then
               -- Cut to the window (a wrapped line would scroll the frame).
               local rows, columns = Terminal.size()
               while #lines > rows do table.remove(lines) end
               for i, line in ipairs(lines) do lines[i] = line:sub(1, columns) end
               io.stdout:write("\27[H\27[2J", table.concat(lines, "\27[K\r\n"), "\27[K")
            else
               io.stdout:write(table.concat(lines, "\n"), "\n\n")
            end
            io.stdout:flush()
            old, t_old = new, t
            frames = frames + 1
            if opts.count and frames >= opts.count then return 0 end
            wait = opts.interval
         else
            wait = opts.interval - dt
         end
      end
   end)
   if terminal then Terminal.close(terminal) end
   if not ok then error(result, 0) end
   return result
end

return M
