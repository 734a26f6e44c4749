-- snabb profile PID|DIR: where a run's time goes, app by app, from its run directory (observe.rundir):
-- the engine's exact cycles per packet (apps.json), the sampled vmprofile zones (what kind of code
-- ran: compiled, interpreted, GC, ...; which traces), and the auditlog (trace source lines, aborts).
local argparse = require("argparse")
local cli = require("programs.cli")
local lib = require("core.lib")
local vmprofile = require("observe.vmprofile")
local rundir = require("observe.rundir")
local json = require("dkjson")

local M = {}

-- For `snabb help` (programs/main.lua finds the command by its folder).
M.summary = "where a run's time goes, app by app: snabb profile PID|DIR"

M.interpreted_warning = 0.05 -- share of an app's samples interpreted that earns a warning

-- The states of observe.vmprofile in words for someone who has never seen LuaJIT's insides.
local STATE_WORDS = {
   loop = "compiled loop", head = "compiled entry", interp = "interpreted", c = "C/FFI",
   gc = "garbage collection", exit = "leaving compiled code", record = "JIT recording",
   optimise = "JIT optimising", assemble = "JIT assembling", runtime = "snabb runtime",
}
local STATE_ORDER = {"loop", "head", "interp", "c", "gc", "exit", "record", "optimise", "assemble", "runtime"}

-- Plain words for the abort reasons one meets in dataplane code.
local HINTS = {
   FNEW = "a closure is created here each time; create it once, outside the loop",
   UCLO = "a closure captures a loop variable here",
   VARG = "varargs (...) here",
}
local REASON_HINTS = {
   ["inner loop in root trace"] = "the inner loop is compiled on its own; the code around it runs as side "
      .. "traces or interpreted",
   ["leaving loop in root trace"] = "the loop itself is compiled, the code after it runs interpreted",
}
-- Aborts that follow from how LuaJIT forms traces, not from anything the code does: an app's
-- warning names one of these only when nothing else aborted there.
local STRUCTURAL = {
   ["inner loop in root trace"] = true, ["leaving loop in root trace"] = true,
   ["blacklisted"] = true, ["down-recursion, restarting"] = true,
}

-- Whether path is a vmprofile file (snabb -p FILE).
local function is_vmprofile (path)
   local f = io.open(path, "rb")
   local magic = f and f:read(8)
   if f then f:close() end
   return magic == "SNABBVMP"
end

-- Turns "NYI: bytecode 51" into the opcode's name and a hint.
local function explain (reason)
   local bc = tonumber(reason:match("NYI: bytecode (%d+)"))
   if bc then
      local names = require("jit.vmdef").bcnames
      local name = names:sub(bc * 6 + 1, bc * 6 + 6):gsub("%s+$", "")
      reason = reason:gsub("bytecode %d+", "bytecode " .. name)
      if HINTS[name] then reason = reason .. " (" .. HINTS[name] .. ")" end
   end
   if REASON_HINTS[reason] then reason = reason .. " (" .. REASON_HINTS[reason] .. ")" end
   return reason
end

local function in_code (code, source, line)
   if not code then return true end -- a whole program's profile (snabb -p FILE)
   for _, c in ipairs(code) do
      if c.source == source and line and line >= c.first and line <= c.last then return true end
   end
   return false
end

-- Everything the report needs, gathered from the run directory; log: its auditlog decoded
-- already (snabb inspect keeps it), or nil to decode it here.
function M.load (dir, log)
   local run = assert(rundir.read(dir))
   local doc = run.apps
   log = run.auditlog and (log or require("observe.auditlog_reader").decode(run.auditlog))
   -- The latest trace of each number (numbers are reused after a flush).
   local traces = {}
   for _, t in ipairs(log and log.traces or {}) do traces[t.number] = t end
   local zones, total = {}, 0
   local function zone (name)
      local path = run.zone(name)
      if not path then return nil end
      local z = vmprofile.read(path)
      total = total + z.samples
      return z
   end
   for _, a in ipairs(doc.apps) do zones[a.name] = zone(a.name) end
   local engine = zone("engine")
   return {dir = dir, doc = doc, log = log, traces = traces, zones = zones, engine = engine,
           samples = total}
end

-- One app's part of the report, as a table (also what --json prints).
local function app_report (p, a, engine_cycles)
   local z = p.zones[a.name]
   local r = {name = a.name, class = a.class, code = a.code, cycles_per_packet = a.cycles_per_packet,
              share = engine_cycles > 0 and a.cycles / engine_cycles or 0,
              packets_in = a.packets_in, packets_out = a.packets_out, samples = z and z.samples or 0,
              states = {}, traces = {}, aborts = {}}
   if z and z.samples > 0 then
      for _, s in ipairs(STATE_ORDER) do r.states[s] = z.total[s] / z.samples end
      for tr, row in pairs(z.traces) do
         local n = (row.loop or 0) + (row.head or 0)
         if tr > 0 and n > 0 then
            local t = p.traces[tr]
            r.traces[#r.traces+1] = {trace = tr, share = n / z.samples, loop = (row.loop or 0) / z.samples,
                                     span = t and t.span or "?", parent = t and t.parent,
                                     linktype = t and t.linktype}
         end
      end
      table.sort(r.traces, function (x, y) -- ties: lower trace number first
         return x.share > y.share or x.share == y.share and x.trace < y.trace
      end)
   end
   -- Aborts that started or ended in the app's code: causes before consequences, most frequent
   -- first.
   local seen = {}
   for _, ab in ipairs(p.log and p.log.aborts or {}) do
      local start = ab.start or {}
      if in_code(a.code, ab.source, ab.line) or in_code(a.code, start.source, start.line) then
         local where = ("%s:%s"):format(ab.source or "?", ab.line or "?")
         local key = where .. " " .. ab.reason
         if not seen[key] then
            seen[key] = {where = where, reason = explain(ab.reason), count = 0,
                         structural = STRUCTURAL[ab.reason] or false}
            r.aborts[#r.aborts+1] = seen[key]
         end
         seen[key].count = seen[key].count + 1
      end
   end
   table.sort(r.aborts, function (x, y)
      if x.structural ~= y.structural then return y.structural end
      return x.count > y.count
   end)
   if (r.states.interp or 0) > M.interpreted_warning then
      local culprit = r.aborts[1]
      r.warning = ("%.0f%% of its samples are interpreted; %s"):format(100 * r.states.interp,
         culprit and ("%s keeps it out of the JIT: %s"):format(culprit.where, culprit.reason)
                 or "no abort in the auditlog explains it (code not hot enough, or blacklisted)")
   end
   return r
end

function M.report (p)
   local engine_cycles = 0
   for _, a in ipairs(p.doc.apps) do engine_cycles = engine_cycles + a.cycles end
   local apps, in_apps = {}, 0
   for _, a in ipairs(p.doc.apps) do
      local r = app_report(p, a, engine_cycles)
      in_apps = in_apps + r.samples
      apps[#apps+1] = r
   end
   table.sort(apps, function (x, y) return x.share > y.share end)
   return {dir = p.dir, program = p.doc.program, pid = p.doc.pid, samples = p.samples,
           hz = p.engine and p.engine.hz, in_apps = p.samples > 0 and in_apps / p.samples or 0,
           engine_states = p.engine and p.engine.total, apps = apps,
           traces = p.log and #p.log.traces, aborts = p.log and #p.log.aborts}
end

local function percent (x) return ("%.1f%%"):format(100 * x) end

-- What every report ends with.
local EXPLAINED = "\ncompiled loop/entry: the app's code as machine code; interpreted: bytecode run one\n"
         .. "instruction at a time (slow, see the aborts); leaving compiled code: a guard failed.\n"

-- An app's (or a whole program's) samples: where they went, its hottest traces, its aborts.
local function print_samples (a, out)
   local parts = {}
   for _, s in ipairs(STATE_ORDER) do
      if (a.states[s] or 0) >= 0.001 then parts[#parts+1] = ("%s %s"):format(STATE_WORDS[s], percent(a.states[s])) end
   end
   if #parts > 0 then out:write("  time: " .. table.concat(parts, ", ") .. "\n") end
   local rows = {}
   for i = 1, math.min(5, #a.traces) do
      local t = a.traces[i]
      rows[i] = {"  trace " .. t.trace, percent(t.share), t.span ..
                 (t.parent and t.parent > 0 and (" (side trace of %d)"):format(t.parent) or "")}
   end
   if #rows > 0 then out:write(lib.table_text(rows[1], {unpack(rows, 2)}, {[2] = true})) end
   for i = 1, math.min(5, #a.aborts) do
      local ab = a.aborts[i]
      out:write(("  abort %s: %s (%d time%s)\n"):format(ab.where, ab.reason, ab.count, ab.count == 1 and "" or "s"))
   end
   if a.warning then out:write("  WARNING: " .. a.warning .. "\n") end
end

function M.print (r, out)
   out:write(("snabb profile: %s (%s, pid %d)\n"):format(r.dir, r.program, r.pid))
   out:write(("%s samples%s, %s of them in apps; %s traces and %s aborts in the auditlog\n"):format(
      lib.comma_value(r.samples), r.hz and (" at %d Hz of CPU time"):format(r.hz) or "",
      percent(r.in_apps), r.traces or "no", r.aborts or "no"))
   local e = r.engine_states
   if e then
      local n, parts = 0, {}
      for _, s in ipairs(STATE_ORDER) do n = n + e[s] end
      for _, s in ipairs(STATE_ORDER) do
         if n > 0 and e[s] / n >= 0.05 then parts[#parts+1] = ("%s %s"):format(STATE_WORDS[s], percent(e[s] / n)) end
      end
      out:write(("engine, between app calls: %s samples%s\n"):format(lib.comma_value(n),
         #parts > 0 and " (" .. table.concat(parts, ", ") .. ")" or ""))
   end
   for _, a in ipairs(r.apps) do
      local where = {}
      for _, c in ipairs(a.code) do where[#where+1] = ("%s:%d-%d"):format(c.source, c.first, c.last) end
      out:write(("\napp %s  (%s; %s)\n"):format(a.name, a.class, table.concat(where, ", ")))
      out:write(("  %.1f cycles/packet, %s of engine time, %s samples\n"):format(
         a.cycles_per_packet, percent(a.share), lib.comma_value(a.samples)))
      print_samples(a, out)
   end
   out:write(EXPLAINED)
end

-- A vmprofile file (snabb -p FILE: one zone, the whole program) as a report like an app's, its
-- traces' source lines and its aborts from the same run's auditlog (snabb -a) when given; log:
-- that auditlog decoded already (snabb inspect keeps it), or nil to decode it here.
function M.file_report (path, auditlog, log)
   local z = vmprofile.read(path)
   log = auditlog and (log or require("observe.auditlog_reader").decode(auditlog))
   local traces = {}
   for _, t in ipairs(log and log.traces or {}) do traces[t.number] = t end
   local r = app_report({zones = {[z.zone] = z}, traces = traces, log = log},
                        {name = z.zone, cycles = 0, cycles_per_packet = 0}, 0)
   r.file, r.hz, r.auditlog = path, z.hz, auditlog
   r.class, r.cycles_per_packet, r.share, r.packets_in, r.packets_out = nil, nil, nil, nil, nil
   return r
end

function M.print_file (r, out)
   out:write(("snabb profile: %s (zone %s, %s samples at %d Hz of CPU time)\n"):format(r.file, r.name,
      lib.comma_value(r.samples), r.hz))
   print_samples(r, out)
   if not r.auditlog and #r.traces > 0 then
      out:write("  (traces by number: --auditlog FILE, the run's snabb -a FILE, gives their source lines)\n")
   end
   out:write(EXPLAINED)
end

function M.run (args)
   local p = argparse("snabb profile", "Where a run's time goes, app by app.")
      :add_help("-h --help")
   p:argument("target", "PID of a running snabb, a run directory (--rundir), or a vmprofile file "
                 .. "(snabb -p FILE)")
   p:option("--auditlog", "with a vmprofile file: the auditlog of the same run (snabb -a FILE), for "
               .. "the traces' source lines and the aborts"):argname("FILE")
   p:flag("--json", "print the report as JSON")
   local opts = cli.parse(p, args)
   if not opts then return 2 end
   local report, print_report
   if is_vmprofile(opts.target) then
      report, print_report = M.file_report(opts.target, opts.auditlog), M.print_file
   elseif opts.auditlog then
      cli.usage_error(p, "--auditlog goes with a vmprofile file (a run directory holds its own auditlog)")
      return 2
   else
      report, print_report = M.report(M.load(rundir.find(opts.target))), M.print
   end
   if opts.json then
      io.stdout:write(json.encode(report, {indent = true}), "\n")
   else
      print_report(report, io.stdout)
   end
   return 0
end

return M
