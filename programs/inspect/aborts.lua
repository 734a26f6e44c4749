-- programs.inspect.aborts: the aborts and blacklists view of snabb inspect (GET
-- /inspect/api/aborts), from the run's auditlog as programs.inspect.data decoded it. Every abort,
-- grouped by where recording stopped and why, with the reason in a network-function writer's
-- words, the source line's text (when the file is readable from here), the apps involved and the
-- code each group kept out of the JIT (where the aborted attempts started); and first, the code
-- LuaJIT blacklisted (observe/AUDITLOG.md, trace_abort's `blacklisted`), which runs interpreted
-- for good, with the interpreted share of the apps whose code holds it (snabb profile's).
--
--   aborts.view(run, data)   -- data: programs.inspect.data; run: data.open's
--   aborts.words(format, reason) -- a trace error (vmdef.traceerr's text, the message) in words
local listing = require("programs.auditlog.auditlog")
local vmdef = require("jit.vmdef")

local M = {}

M.source_bytes = 4 * 1024 * 1024 -- a source file larger than this is not read for its lines

-- The bytecodes LuaJIT 2.1 does not compile, in words.
local NYI_BC = {
   FNEW = "creates a closure (a function ... end inside the code that runs per packet) each time "
      .. "it runs, which LuaJIT cannot compile: create the function once, outside the loop (a "
      .. "method or a local defined before it), and pass what it needs as arguments",
   UCLO = "closes the upvalues of a closure made in the loop (a function capturing a loop "
      .. "variable), which LuaJIT cannot compile: move the closure out of the loop",
   VARG = "uses varargs (...) in a way LuaJIT cannot compile: pass explicit arguments",
   ITERN = "iterates with pairs()/next in a way LuaJIT cannot compile: keep per-packet code to "
      .. "arrays and numeric for loops",
}

-- LuaJIT's trace errors (lj_traceerr.h, by their vmdef.traceerr text) in plain words.
local WORDS = {
   ["error thrown or hook called during recording"] = "an error was raised (error(), a failed "
      .. "assert, a bad operation) or a debug hook ran while LuaJIT recorded this code: errors on "
      .. "the packet path keep it out of the JIT",
   ["trace too short"] = "the trace would be too short to be worth compiling",
   ["trace too long"] = "the path is too long for one trace (LuaJIT's -Omaxrecord, -Omaxirconst): "
      .. "a long straight run of code or of inlined calls; split the work into smaller loops",
   ["trace too deep"] = "calls nest deeper than LuaJIT inlines into one trace (-Omaxdepth)",
   ["too many snapshots"] = "too many branches and checks for one trace (-Omaxsnap): simplify "
      .. "the per-packet path, or move rare cases into functions of their own",
   ["blacklisted"] = "recording ran into code LuaJIT had already blacklisted (it runs "
      .. "interpreted for good after repeated aborts): fix what blacklisted it, listed above",
   ["retry recording"] = "LuaJIT records this code again at once (harmless)",
   ["NYI: bytecode %d"] = "uses a bytecode LuaJIT cannot compile",
   ["leaving loop in root trace"] = "the loop was left before recording came round to its start "
      .. "again (it ran few iterations when it turned hot); usually harmless: the loop is "
      .. "compiled once it runs long enough, and its exits become side traces",
   ["inner loop in root trace"] = "recording reached an inner loop, which LuaJIT compiles as a "
      .. "trace of its own first; the code around it becomes side traces (usually harmless)",
   ["loop unroll limit reached"] = "a loop that runs only a few iterations (or a varying number) "
      .. "inside the traced code was unrolled up to LuaJIT's limit (-Oloopunroll) and given up: "
      .. "typical of a short inner loop per packet; let it run more iterations, hoist it, or "
      .. "write it without a loop",
   ["bad argument type"] = "a built-in function got an argument of a type it does not take "
      .. "(the call fails when it runs)",
   ["JIT compilation disabled for function"] = "the function was excluded from the JIT (jit.off)",
   ["call unroll limit reached"] = "recursion: a function calls itself (or a cycle of calls) more "
      .. "deeply than LuaJIT unrolls (-Ocallunroll); write it as a loop",
   ["down-recursion, restarting"] = "recursion down into a caller; LuaJIT restarts recording "
      .. "there (harmless)",
   ["NYI: unsupported variant of FastFunc %s"] = "calls the built-in %s in a way LuaJIT cannot "
      .. "compile (arguments of unexpected types, a string pattern or format it does not "
      .. "compile, ...): call it outside the per-packet path, or use plain Lua or the FFI instead",
   ["NYI: return to lower frame"] = "a return to a caller the trace did not start in (a loop in a "
      .. "function that returns after few iterations); usually harmless",
   ["store with nil or NaN key"] = "a table store with nil or NaN as its key (t[nil] = x): an "
      .. "error when it runs",
   ["missing metamethod"] = "an operation on a value without the metamethod it needs "
      .. "(arithmetic on nil or a table, calling a non-function): an error when it runs",
   ["looping index lookup"] = "a chain of __index metatables that loops",
   ["NYI: mixed sparse/dense table"] = "a table constructor with an array part and holes in it, "
      .. "which LuaJIT cannot compile",
   ["symbol not in cache"] = "an FFI symbol (ffi.C.name) not resolved yet: call it once before "
      .. "the loop, or keep the function in a local",
   ["NYI: unsupported C type conversion"] = "an FFI conversion between C types LuaJIT cannot "
      .. "compile (e.g. a struct by value, a cdata to a Lua string implicitly)",
   ["NYI: unsupported C function type"] = "a call through the FFI to a C function whose type "
      .. "LuaJIT cannot compile (varargs, a struct by value, too many arguments)",
   ["guard would always fail"] = "a check on the trace would always fail (the code changes a "
      .. "value's type in a way the trace cannot follow)",
   ["too many PHIs"] = "the loop carries too many values from one iteration to the next",
   ["persistent type instability"] = "a variable changes its type from one iteration to the next "
      .. "(a number becoming nil or a string): keep each variable to one type",
   ["failed to allocate mcode memory"] = "LuaJIT's machine-code area is full (-Osizemcode, "
      .. "-Omaxmcode)",
   ["machine code too long"] = "the trace's machine code is too long for LuaJIT's area",
   ["hit mcode limit (retrying)"] = "LuaJIT's machine-code area filled up; it retries",
   ["too many spill slots"] = "too many live values for the registers (spill slots): simplify "
      .. "the loop's body",
   ["inconsistent register allocation"] = "LuaJIT's register allocator gave up on this trace",
   ["NYI: cannot assemble IR instruction %d"] = "LuaJIT's assembler cannot compile one of this "
      .. "trace's operations",
   ["NYI: PHI shuffling too complex"] = "LuaJIT's assembler gave up on the values the loop "
      .. "carries: simplify the loop's body",
   ["NYI: register coalescing too complex"] = "LuaJIT's assembler gave up on this trace's "
      .. "registers: simplify the loop's body",
}

local function bcname (n)
   return vmdef.bcnames:sub(n * 6 + 1, n * 6 + 6):gsub(" +$", "")
end

-- The abort's reason in words: format is vmdef.traceerr's text (nil for an error that was not a
-- trace error), reason the message as jit.v prints it.
function M.words (format, reason)
   local words = format and WORDS[format]
   if format == "NYI: bytecode %d" then
      local n = tonumber(reason:match("bytecode (%d+)"))
      local name = n and bcname(n) or "?"
      return NYI_BC[name] or ("uses bytecode %s, which LuaJIT cannot compile here"):format(name)
   elseif format == "NYI: unsupported variant of FastFunc %s" then
      return (words:gsub("%%s", (reason:match("FastFunc (.+)$") or "?"):gsub("%%", "%%%%")))
   end
   return words or ("LuaJIT gave up recording: %s"):format(reason)
end

-- LuaJIT's message with the bytecode it names by number named too: "NYI: bytecode 51 (FNEW)".
local function message (reason)
   return (reason:gsub("bytecode (%d+)", function (n)
      return ("bytecode %s (%s)"):format(n, bcname(tonumber(n)))
   end))
end

-- What the start bytecode of an aborted root trace is, in words.
local START_WORDS = {FORL = "the for loop", LOOP = "the while/repeat loop",
                     ITERL = "the for-in loop", ITERN = "the for-in loop",
                     FUNCF = "calls of the function", FUNCV = "calls of the function (vararg)"}

-- Lines of a source file as the auditlog names it (a chunk name: relative to the directory snabb
-- ran in, which the log does not record, so looked up from here), or nil. Only Lua files are
-- read; snabb's own modules are compiled into the binary and have no file.
local function source_lines (cache, source)
   if cache[source] ~= nil then return cache[source] or nil end
   local lines = false
   local f = source and source:match("%.lua$") and io.open(source, "rb")
   if f then
      local size = f:seek("end")
      if size and size <= M.source_bytes then
         f:seek("set")
         local text = f:read("*a")
         if text then
            lines = {}
            for l in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
         end
      end
      f:close()
   end
   cache[source] = lines
   return lines or nil
end

local function text_at (cache, source, line)
   local lines = source_lines(cache, source)
   local l = lines and line and lines[line]
   return l and l:gsub("^%s+", ""):gsub("%s+$", ""):sub(1, 200) or nil
end

-- The apps whose code (snabb profile's spans) holds source:line, with their interpreted share.
local function apps_at (apps, source, line)
   local out = {}
   for _, a in ipairs(apps) do
      for _, c in ipairs(a.code or {}) do
         if c.source == source and line and line >= c.first and line <= c.last then
            out[#out + 1] = {name = a.name, interpreted = a.samples > 0
                             and (a.states.interp or 0) / a.samples or nil, samples = a.samples}
            break
         end
      end
   end
   return out
end

function M.view (run, data)
   local profile = data.apps(run) -- reads the run (and its auditlog) afresh where it changed
   local log = run.log
   if not log then return {auditlog = false, groups = {}, blacklisted = {}, aborts = 0} end
   local shown = {}
   for _, a in ipairs(listing.select(log, {}).aborts) do shown[a] = true end
   local cache, groups, by_key, starts = {}, {}, {}, {}
   -- Attempts by where they started (generation: trace numbers and blacklists restart on a flush).
   for _, a in ipairs(log.aborts) do
      local k = ("%d %s:%s"):format(a.generation, a.start.source or "?", a.start.line or "?")
      starts[k] = (starts[k] or 0) + 1
   end
   for i, a in ipairs(log.aborts) do
      local where = a.cfunc and ("%s (built-in)"):format(a.cfunc)
                    or ("%s:%s"):format(a.source or "?", a.line or "?")
      local key = where .. "\0" .. a.reason
      local g = by_key[key]
      if not g then
         local format = a.code and vmdef.traceerr[a.code]
         g = {where = where, source = not a.cfunc and a.source or nil, line = a.line,
              cfunc = a.cfunc, reason = a.reason, message = message(a.reason), code = a.code,
              words = M.words(format, a.reason),
              text = not a.cfunc and text_at(cache, a.source, a.line) or nil, count = 0, apps = {},
              starts = {}, blacklisted = 0, tooling = true, first = i}
         by_key[key] = g
         groups[#groups + 1] = g
      end
      g.count = g.count + 1
      if shown[a] then g.tooling = false end
      if a.app and not g.apps[a.app] then g.apps[a.app] = true end
      local s = ("%s:%s"):format(a.start.source or "?", a.start.line or "?")
      g.starts[s] = (g.starts[s] or 0) + 1
      if a.blacklisted then g.blacklisted = g.blacklisted + 1 end
   end
   for _, g in ipairs(groups) do
      local apps, from = {}, {}
      for name in pairs(g.apps) do apps[#apps + 1] = name end
      table.sort(apps)
      for s, n in pairs(g.starts) do from[#from + 1] = {at = s, count = n} end
      table.sort(from, function (x, y)
         return x.count > y.count or x.count == y.count and x.at < y.at
      end)
      g.apps, g.starts = apps, from
      g.in_apps = g.source and apps_at(profile.apps, g.source, g.line) or {}
   end
   -- Causes first: groups that blacklisted code, then by count.
   table.sort(groups, function (x, y)
      if (x.blacklisted > 0) ~= (y.blacklisted > 0) then return x.blacklisted > 0 end
      if x.tooling ~= y.tooling then return y.tooling end
      if x.count ~= y.count then return x.count > y.count end
      return x.first < y.first
   end)
   -- The code blacklisted, one entry per blacklisting, in the order it happened.
   local blacklisted = {}
   for _, a in ipairs(log.aborts) do
      if a.blacklisted then
         local proto = a.start_proto and log.protos[a.start_proto]
         local stitch = a.exit == -1
         local entry = {source = a.start.source, line = a.start.line, generation = a.generation,
                        trace = a.trace, reason = a.reason, message = message(a.reason),
                        words = M.words(a.code and vmdef.traceerr[a.code], a.reason),
                        at = a.cfunc and ("%s (built-in)"):format(a.cfunc)
                             or ("%s:%s"):format(a.source or "?", a.line or "?"),
                        abort_source = not a.cfunc and a.source or nil, abort_line = a.line,
                        app = a.app, tooling = not shown[a] or nil,
                        text = text_at(cache, a.start.source, a.start.line),
                        aborts = stitch and 1 or starts[("%d %s:%s"):format(a.generation,
                           a.start.source or "?", a.start.line or "?")] or 1,
                        in_apps = apps_at(profile.apps, a.start.source, a.start.line)}
         if stitch then
            entry.what = ("the code after the call at %s:%s, stitched from trace %d"):format(
               a.start.source, a.start.line, a.parent)
            entry.kind = "stitch"
         else
            entry.kind = a.start_bc
            entry.what = ("%s at %s:%s"):format(START_WORDS[a.start_bc] or "the code",
                                                a.start.source, a.start.line)
            if a.start_bc == "FUNCF" or a.start_bc == "FUNCV" then
               entry.what = ("%s at %s:%s"):format(START_WORDS[a.start_bc], a.start.source,
                                                   proto and proto.linedefined or a.start.line)
            end
         end
         if proto then
            entry["function"] = proto.linedefined == 0 and ("main chunk of %s"):format(proto.source)
               or ("function at %s:%d"):format(proto.source, proto.linedefined)
         end
         blacklisted[#blacklisted + 1] = entry
      end
   end
   table.sort(blacklisted, function (x, y)
      if (x.tooling or false) ~= (y.tooling or false) then return y.tooling or false end
      return x.aborts > y.aborts
   end)
   return {auditlog = true, aborts = #log.aborts, flushes = log.flushes, groups = groups,
           blacklisted = blacklisted}
end

return M
