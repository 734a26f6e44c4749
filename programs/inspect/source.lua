-- programs.inspect.source: where in the machine code and in the Lua source a run's samples fall,
-- for snabb inspect's trace view (hot machine code) and its source view (a Lua file with per-line
-- samples and the traces that cover each line). Samples by address come from the vmprofile's
-- address table (observe/vmprofile.h, read by observe.vmprofile.read_addresses); the traces, their
-- machine code and bytecode from the auditlog (observe.auditlog_reader), the source text from the
-- auditlog's source events, else the file on disk.
--
--   source.addresses(run)          -- the address table matched to the auditlog's traces
--   source.trace_lines(run, t, mc) -- samples per machine-code line of trace t
--   source.view(run, p, name)      -- one file's view: GET /inspect/api/source/NAME
-- run is programs.inspect.data's (dir, log, by_number), p snabb profile's loaded profile.
local reader = require("observe.auditlog_reader")
local rundir = require("observe.rundir")
local vmprofile = require("observe.vmprofile")

local M = {}

-- The trace of the log a sampled address belongs to: of the sample's trace number, with machine
-- code holding the address, and of the sample's flush generation when more than one does (trace
-- numbers and machine-code space are reused after jit.flush()); nil when the log has none (no
-- auditlog, or the trace's record was past its size limit).
local function owner (by_number_all, e)
   local found
   for _, t in ipairs(by_number_all[e.trace] or {}) do
      local mc = t.mcode
      if mc and e.address >= mc.address and e.address < mc.address + mc.size then
         if not found or t.generation == e.flushes then found = t end
      end
   end
   return found
end

-- The run's address table with each entry's trace: {samples, overflow, counted, unmatched (samples
-- at addresses no trace of the log holds), by_trace = {[trace] = {[address] = count}}} ({error =
-- the reader's message, by_trace = {}} for a file that does not read), or nil
-- (a run without one: --no-vmprofile, or a snabb from before it). Read afresh on each call: a
-- live run's table changes (1.5 MiB, of which the blocks that hold slots are parsed).
function M.addresses (run)
   -- A run directory's, or the one beside snabb -p FILE (a run of files: programs.inspect.runs).
   local path
   if run.files then
      path = run.files.vmprofile and run.files.vmprofile .. ".addresses"
   else
      path = rundir.addresses_path(run.dir)
   end
   local f = path and io.open(path, "rb")
   if not f then return nil end
   f:close()
   -- A table that does not read (cut short, another version) leaves the views without samples by
   -- address, saying why, rather than failing them.
   local ok, addresses = pcall(vmprofile.read_addresses, path)
   if not ok then return {error = tostring(addresses), by_trace = {}} end
   local all = {}
   for _, t in ipairs(run.log and run.log.traces or {}) do
      all[t.number] = all[t.number] or {}
      table.insert(all[t.number], t)
   end
   local by_trace, unmatched = {}, 0
   for _, e in ipairs(addresses.entries) do
      local t = owner(all, e)
      if t then
         by_trace[t] = by_trace[t] or {}
         by_trace[t][e.address] = (by_trace[t][e.address] or 0) + e.count
      else
         unmatched = unmatched + e.count
      end
   end
   return {samples = addresses.samples, overflow = addresses.overflow, counted = addresses.counted,
           unmatched = unmatched, by_trace = by_trace}
end

-- Samples per machine-code line of trace t: sets line.samples on the lines of mc (as
-- programs.inspect.data lists them: {address = hex text, loop = first line of the loop}) and
-- returns {total, loop, head, outside (at no listed instruction), max (of a line)}. A sample is the
-- address of the instruction to run next, so it counts for the line that starts there (an address
-- inside a line, which cannot happen, counts for that line too).
function M.trace_lines (hot, t, mc)
   local counts = hot and hot.by_trace[t]
   local s = {total = 0, loop = 0, head = 0, outside = 0, max = 0}
   if not counts or #mc == 0 then return s end
   local starts, in_loop, loop = {}, {}, false
   for i, l in ipairs(mc) do
      starts[i] = tonumber(l.address, 16)
      loop = loop or l.loop or false
      in_loop[i] = loop
   end
   local last_end = t.mcode.address + t.mcode.size
   for address, n in pairs(counts) do
      s.total = s.total + n
      -- The last line starting at or before address.
      local lo, hi = 1, #starts
      if address < starts[1] or address >= last_end then
         s.outside = s.outside + n
      else
         while lo < hi do
            local mid = math.floor((lo + hi + 1) / 2)
            if starts[mid] <= address then lo = mid else hi = mid - 1 end
         end
         local l = mc[lo]
         l.samples = (l.samples or 0) + n
         s.max = math.max(s.max, l.samples)
         if in_loop[lo] then s.loop = s.loop + n else s.head = s.head + n end
      end
   end
   return s
end

-- The source line (chunk name as the reader gives it, line) of the machine code at address in
-- trace t, by the IR instruction whose code holds it and the bytecode it was recorded for
-- (observe.auditlog_reader's ins_of_address and ins_line, from the irmc/irbc maps that LuaJIT's
-- mcode-map.patch lets the auditlog carry); nil for code of no instruction (the trace's head and
-- tail, the loop branch), an instruction of no bytecode, or a log without the maps.
function M.line_of (log, t, address)
   if not (t.ir_mcode and reader.ins_of_address and reader.ins_line) then return nil end
   local ins = reader.ins_of_address(t, address)
   if not ins then return nil end
   local source, line = reader.ins_line(log, t, ins)
   if source and line then return source, line end
   return nil
end

-- Whether the log maps machine code to bytecode for trace t.
local function mapped (t) return t.ir_mcode ~= nil and reader.ins_of_address ~= nil end

-- The file's text as lines, and where it came from: the auditlog's source event ("auditlog", cut
-- at its size cap: "auditlog (cut)"), the file on disk ("disk"; only a file the run ran, known:
-- the request names it, so any other path would let a client read any file), or nothing.
local function text_of (log, name, known)
   local s = log and log.sources and log.sources[name]
   local text, from = s and s.text, s and (#s.text < s.size and "auditlog (cut)" or "auditlog")
   if not text and known then
      local f = io.open(name, "rb")
      text = f and f:read("*a")
      if f then f:close() end
      from = text and "disk" or nil
   end
   if not text then return nil, nil end
   local lines = {}
   for line in (text:gsub("\n$", "") .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
   return lines, from
end

-- The source view of chunk name (a chunk name as the auditlog reader gives it, without "@"):
-- {chunk, from, text = {line, ...} or nil, nlines, lines = {{line, samples, traces = {numbers}},
-- ...} (lines with samples or traces), attributed (the samples put on this file's lines), map
-- (whether the log maps machine code to lines, for a trace covering the file), unplaced =
-- {{trace, samples, loop, head}, ...} (samples in traces that cover this file that no line could
-- be given), interp = {{app, samples},
-- ...} (the interpreter's samples of the apps whose code is in this file, which have no address in
-- a trace), known (whether the log or the disk has this file at all)}.
function M.view (run, p, name)
   name = name:gsub("^@", "")
   local log = run.log
   local rows, known = {}, false
   local function row (line)
      rows[line] = rows[line] or {line = line, samples = 0, traces = {}, seen = {}}
      return rows[line]
   end
   -- The traces whose recorded bytecode covers each line (the latest of each number: the ones
   -- #/trace/N shows).
   local numbers = {}
   for number in pairs(run.by_number or {}) do numbers[#numbers + 1] = number end
   table.sort(numbers)
   local covering = {}
   for _, number in ipairs(numbers) do
      local t = run.by_number[number]
      for _, b in ipairs(t.bytecode or {}) do
         local proto = b.proto and log.protos[b.proto]
         if proto and proto.source == name and b.line and b.line > 0 then
            local r = row(b.line)
            if not r.seen[number] then r.seen[number] = true r.traces[#r.traces + 1] = number end
            covering[t] = true
         end
      end
   end
   -- Known: a file the run ran code of (a prototype of the auditlog's, its source event, or an
   -- app's code in apps.json).
   for _, proto in pairs(log and log.protos or {}) do known = known or proto.source == name end
   known = known or (log and log.sources and log.sources[name]) ~= nil
   for _, a in ipairs(p.doc and p.doc.apps or {}) do
      for _, c in ipairs(a.code or {}) do known = known or (c.source or ""):gsub("^@", "") == name end
   end
   -- Samples by address -> IR instruction -> bytecode -> line.
   local hot = M.addresses(run)
   local attributed, map, unplaced = 0, false, {}
   for t in pairs(covering) do map = map or mapped(t) end
   for t, counts in pairs(hot and hot.by_trace or {}) do
      local left = {trace = t.number, samples = 0, loop = 0, head = 0}
      for address, n in pairs(counts) do
         local source, line = M.line_of(log, t, address)
         if source == name then
            row(line).samples = row(line).samples + n
            attributed = attributed + n
         elseif not source and covering[t] then
            left.samples = left.samples + n
            local loop = t.mcode.loop > 0 and address >= t.mcode.address + t.mcode.loop
            if loop then left.loop = left.loop + n else left.head = left.head + n end
         end
      end
      if left.samples > 0 then unplaced[#unplaced + 1] = left end
   end
   table.sort(unplaced, function (a, b)
      return a.samples > b.samples or a.samples == b.samples and a.trace < b.trace
   end)
   -- The interpreter's samples of the apps whose code is in this file.
   local interp = {}
   for _, a in ipairs(p.doc and p.doc.apps or {}) do
      local here = false
      for _, c in ipairs(a.code or {}) do here = here or (c.source or ""):gsub("^@", "") == name end
      local z = p.zones[a.name]
      local n = here and z and z.traces[0] and z.traces[0].interp or 0
      if here then interp[#interp + 1] = {app = a.name, samples = n} end
   end
   local text, from = text_of(log, name, known)
   local list, nlines = {}, text and #text or 0
   for line, r in pairs(rows) do
      r.seen = nil
      list[#list + 1] = r
      nlines = math.max(nlines, line)
   end
   table.sort(list, function (a, b) return a.line < b.line end)
   return {chunk = name, from = from, text = text, nlines = nlines, lines = list,
           attributed = attributed, map = map, unplaced = unplaced, interp = interp,
           address_table = hot ~= nil, address_error = hot and hot.error, known = known}
end

return M
