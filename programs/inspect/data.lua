-- programs.inspect.data: what `snabb inspect` serves, as tables for JSON, from a run directory
-- (a live run's or one left behind). It reads nothing itself: the engine's counters and the
-- vmprofile zones come through snabb profile's loader (programs.profile.profile), the auditlog
-- through its reader (observe.auditlog_reader) and snabb auditlog's listings (bytecode, IR with
-- snapshots; programs.auditlog.auditlog), so each format has one reader.
--
--   local run = data.open(dir)     -- checks dir is a run directory; errors in the user's words
--   data.open_files(files, label)  -- or snabb -a FILE -p FILE's files (programs.inspect.runs)
--   data.apps(run)                 -- the profile by app: GET /inspect/api/apps
--   data.traces(run)               -- the trace list: GET /inspect/api/traces
--   data.trace(run, n)             -- one trace's listings, cross-referenced: GET /inspect/api/trace/N
--   data.source(run, chunk)        -- a Lua file's lines with samples and traces (programs.inspect.
--                                     source): GET /inspect/api/source?chunk=@FILE
-- A live run's files change: each call reads apps.json and the zones again, and decodes the
-- auditlog again when it has grown.
local profile = require("programs.profile.profile")
local listing = require("programs.auditlog.auditlog")
local reader = require("observe.auditlog_reader")
local rundir = require("observe.rundir")
local vmprofile = require("observe.vmprofile")
local source = require("programs.inspect.source")
local xref = require("programs.inspect.xref")
local band = bit.band

local M = {}

M.hottest = 5 -- traces listed with each app

local function size_of (path)
   local f = path and io.open(path, "rb")
   if not f then return nil end
   local n = f:seek("end")
   f:close()
   return n
end

-- dir must be a run directory (apps.json readable); its auditlog and zones may be missing
-- (--no-auditlog, --no-vmprofile).
function M.open (dir)
   local run, err = rundir.read(dir)
   if not run then error(("%s: not a run directory (%s)"):format(dir, err), 0) end
   return {dir = dir, profile = {}}
end

-- A run of the files snabb -a FILE -p FILE writes (programs.inspect.runs: no run directory):
-- files = {auditlog =, vmprofile =}, either may be missing; dir: what the page calls it.
function M.open_files (files, label)
   return {dir = label, files = files, profile = {}}
end

-- The profile (snabb profile's) and the decoded auditlog, read afresh where they changed.
local function load (run)
   local path
   if run.files then path = run.files.auditlog else path = rundir.read(run.dir).auditlog end
   local size = size_of(path)
   if path and (size ~= run.log_size or not run.log) then
      run.log, run.log_size = reader.decode(path), size
      -- The latest trace of each number (numbers are reused after a flush), as snabb profile.
      run.by_number = {}
      for _, t in ipairs(run.log.traces) do run.by_number[t.number] = t end
      -- Snabb's own tooling (snabb auditlog leaves it out by default): flagged, not hidden.
      run.tooling = {}
      local sel = listing.select(run.log, {})
      local shown = {}
      for _, t in ipairs(sel.traces) do shown[t] = true end
      for _, t in ipairs(run.log.traces) do if not shown[t] then run.tooling[t] = true end end
   elseif not path then
      run.log, run.by_number, run.tooling = nil, {}, {}
   end
   if run.files then -- (its one zone read again: a program still running writes it)
      run.profile, run.report = require("programs.inspect.runs").profile(run), nil
      return run.profile
   end
   -- The zones are read again when apps.json has changed (a live run rewrites it every second).
   local f = io.open(rundir.apps_path(run.dir))
   local apps = f and f:read("*a")
   if f then f:close() end
   if apps ~= run.apps_text or run.log ~= run.profile.log then
      run.profile, run.apps_text, run.report = profile.load(run.dir, run.log), apps, nil
      run.profile.traces = run.by_number
   end
   return run.profile
end

-- Each trace's samples by app ("engine": between app calls): {[trace] = {total =, loop =, head =,
-- apps = {[app] = n}}}.
local function trace_samples (p)
   local by_trace, zones = {}, {engine = p.engine}  -- the engine's: time between app calls
   for app, z in pairs(p.zones) do zones[app] = z end
   for app, z in pairs(zones) do
      for tr, row in pairs(z.traces) do
         local n = (row.loop or 0) + (row.head or 0)
         if tr > 0 and n > 0 then
            local s = by_trace[tr] or {total = 0, loop = 0, head = 0, apps = {}}
            by_trace[tr] = s
            s.total, s.loop, s.head = s.total + n, s.loop + (row.loop or 0), s.head + (row.head or 0)
            s.apps[app] = (s.apps[app] or 0) + n
         end
      end
   end
   return by_trace
end

function M.apps (run)
   local p = load(run)
   if run.files then return require("programs.inspect.runs").apps(run, p) end
   run.report = run.report or profile.report(p)
   local r = run.report
   local apps = {}
   for i, a in ipairs(r.apps) do
      local z = p.zones[a.name]
      local traces = {}
      for k = 1, math.min(M.hottest, #a.traces) do
         local t = a.traces[k]
         traces[k] = {trace = t.trace, samples = z and math.floor(t.share * z.samples + 0.5) or 0,
                      share = t.share, span = t.span, parent = t.parent, linktype = t.linktype}
      end
      apps[i] = {name = a.name, class = a.class, code = a.code, cycles_per_packet = a.cycles_per_packet,
                 share = a.share, packets_in = a.packets_in, packets_out = a.packets_out,
                 samples = a.samples, states = z and z.total or {}, traces = traces,
                 ntraces = #a.traces, aborts = a.aborts, warning = a.warning}
   end
   return {dir = run.dir, program = r.program, pid = r.pid, samples = r.samples, hz = r.hz,
           in_apps = r.in_apps, engine_states = r.engine_states, states = vmprofile.states,
           apps = apps, traces = r.traces, aborts = r.aborts}
end

function M.traces(run)
   local p = load(run)
   local samples = trace_samples(p)
   local list = {}
   for number, t in pairs(run.by_number) do
      local s = samples[number]
      list[#list + 1] = {number = number, parent = t.parent, exit = t.exit, linktype = t.linktype,
                         generation = t.generation,
                         link = t.link, span = t.span, app = t.app, nins = t.nins,
                         start = t.start.source and ("%s:%s"):format(t.start.source, t.start.line),
                         mcode = t.mcode and t.mcode.size, samples = s and s.total or 0,
                         by_app = s and s.apps,
                         tooling = run.tooling[t] or nil}
   end
   table.sort(list, function (a, b) return a.number < b.number end)
   return {traces = list, flushes = run.log and run.log.flushes or 0,
           auditlog = run.log ~= nil, aborts = run.log and #run.log.aborts or 0}
end

-- Machine code lines as {address, text, exit (the exit it jumps to), loop (the loop's first
-- instruction)}, from snabb auditlog's disassembly.
local function mcode_lines (t, ircall)
   local out, loop = {}, false
   for line in reader.disassemble(t.mcode, ircall):gmatch("[^\n]+") do
      if line == "->LOOP:" then
         loop = true
      else
         local address = line:match("^(%x+)%s")
         local exit = tonumber(line:match("\t%->(%d+)$"))
         out[#out + 1] = {address = address, text = line, exit = exit, loop = loop or nil}
         loop = false
      end
   end
   return out
end

-- One trace: its bytecode, IR and machine code as listed by snabb auditlog, with what links them.
-- IR: each line is an instruction (ins) or a snapshot (snap); an instruction carries the
-- snapshot in effect (snap: the exit its guard leaves by) and whether it is a guard. Machine code:
-- each jump to an exit stub carries the exit's number, which is the snapshot's. The rest of the
-- links (IR <-> machine code <-> bytecode and source) come from the maps mcode-map.patch records:
-- programs.inspect.xref.
function M.trace (run, number)
   local p = load(run)
   local t = run.by_number[number]
   if not t then return nil end
   local samples = trace_samples(p)[number]
   local ir, snap, in_loop = {}, -1, false
   for _, line in ipairs(listing.ir_lines(t)) do
      local ins = tonumber(line:match("^(%d%d%d%d) "))
      local entry = {text = line}
      if ins then
         local ot = t.ir[ins][2]
         if line:match("^%d+ %-%-%-%-%-%- LOOP") then in_loop = true end
         entry.ins, entry.snap = ins, snap >= 0 and snap or nil
         entry.guard = band(ot, 128) ~= 0 or nil
         entry.loop = in_loop or nil
      else
         snap = tonumber(line:match("SNAP%s+#(%d+)")) or snap
         entry.snapshot = snap
      end
      ir[#ir + 1] = entry
   end
   -- Each bytecode line with its source line (file:line; the jump after a comparison shares it).
   local bytecode = {}
   for k, b in ipairs(t.bytecode or {}) do
      local proto = b.proto and run.log.protos[b.proto]
      local at = proto and b.line and ("%s:%d"):format(proto.source, b.line) or nil
      for _, text in ipairs(listing.bc_lines(run.log, {b})) do
         bytecode[#bytecode + 1] = {text = text, line = at, k = k}
      end
   end
   local lines = {}
   for _, l in ipairs(t.lines) do lines[#lines + 1] = ("%s:%d"):format(l.source, l.line) end
   -- Samples by machine-code line, from the address table (mcode lines get samples).
   local mcode = t.mcode and mcode_lines(t, run.log.open.ircall) or {}
   local hot = source.addresses(run)
   local by_address = source.trace_lines(hot, t, mcode)
   by_address.table, by_address.error = hot ~= nil, hot and hot.error
   local view = {number = t.number, parent = t.parent, exit = t.exit, linktype = t.linktype, link = t.link,
           span = t.span, app = t.app, start = t.start, stack = t.stack, nins = t.nins,
           nexit = t.nexit, lines = lines, tooling = run.tooling[t] or nil,
           samples = samples or {total = 0, loop = 0, head = 0, apps = {}},
           bytecode = bytecode, ir = ir,
           mcode = mcode, by_address = by_address,
           mcode_address = t.mcode and ("%x"):format(t.mcode.address),
           mcode_size = t.mcode and t.mcode.size}
   return xref.annotate(run.log, t, view)
end

-- A Lua file's source view (chunk: its name, "@file.lua" or "file.lua"); nil when neither the
-- auditlog nor the disk knows the file.
function M.source (run, chunk)
   local p = load(run)
   local v = source.view(run, p, chunk)
   return v.known and v or nil
end

return M
