-- observe.auditlog: an append-only binary log of JIT events, as RaptorJIT's auditlog offers. Records
-- are written only when the JIT acts (trace start, stop, abort, flush), so a process in steady
-- state pays nothing. Format: observe/AUDITLOG.md; reader: observe/auditlog_reader.lua.
local M = {}

local ffi = require("ffi")
local jutil = require("jit.util")
local vmdef = require("jit.vmdef")
local mp = require("MessagePack")
local events = require("vm.events")
require("core.cdefs") -- snabb_engine_current_app
local band, rshift = bit.band, bit.rshift
local funcinfo, funcbc, funck = jutil.funcinfo, jutil.funcbc, jutil.funck

ffi.cdef("int getpid(void);")

M.magic = "SNABBAUD"
M.version = 2
M.default_max_bytes = 64 * 1024 * 1024

mp.set_string("string") -- str8/16/32, the current MessagePack spec
-- Machine code is MessagePack bin, not str: binary(s) marks a string for that.
local binary_mt = {}
local pack_table = mp.packers.table
mp.packers.table = function (buffer, t)
   if getmetatable(t) ~= binary_mt then return pack_table(buffer, t) end
   mp.packers.binary(buffer, t[1])
end
local function binary (s) return setmetatable({s}, binary_mt) end

-- The handlers run while the JIT is busy with another trace: if code they run were compiled, a
-- trace exit in it would overwrite the JIT's state and crash LuaJIT. So neither this module's
-- functions nor MessagePack's packers are ever compiled.
jit.off(debug.getinfo(1, "f").func, true)
jit.off(mp.pack)
for _, pack in pairs(mp.packers) do jit.off(pack) end

function M.u32le (n)
   return string.char(band(n, 0xff), band(rshift(n, 8), 0xff), band(rshift(n, 16), 0xff),
                      rshift(n, 24))
end

-- The open log: path, file, written (bytes), max_bytes, limit (the final record, packed), protos
-- (signature -> id), nprotos, by_func (function -> id, weak), trace (the one being recorded),
-- stopped (at the limit or a write error: the handlers are detached and the file closed).
local log
local on_trace, on_record

local function stop ()
   events.unsubscribe("trace", on_trace)
   events.unsubscribe("record", on_record)
   log.file:close()
   log.stopped = true
end

local function emit (bytes)
   local ok, err = log.file:write(bytes)
   if ok then ok, err = log.file:flush() end
   if not ok then
      io.stderr:write(("auditlog: %s: %s; logging stopped\n"):format(log.path, err))
      stop()
      return
   end
   log.written = log.written + #bytes
end

-- Appends one record; the one that would pass max_bytes is replaced by the limit record, the last.
local function write (record)
   if log.stopped then return end
   local body = mp.pack(record)
   if log.written + 4 + #body + #log.limit > log.max_bytes then
      emit(log.limit)
      if not log.stopped then stop() end
   else
      emit(M.u32le(#body) .. body)
   end
end

local function cfunc_name (fi)
   return fi.ffid and vmdef.ffnames[fi.ffid] or ("C:%x"):format(fi.addr or 0)
end

-- What a bytecode listing (jit.bc) takes from a prototype: its GC constants -1, -2, ... (strings
-- as they are, a child function as its file:line, others false), its numbers 0, 1, ... and the
-- names of its upvalues.
local function proto_constants (func, fi)
   local kgc, knum, uvnames = {}, {}, {}
   for i = 1, fi.gcconsts or 0 do
      local k = funck(func, -i)
      local kind = type(k)
      kgc[i] = kind == "string" and k or kind == "proto" and funcinfo(k).loc or false
   end
   for i = 1, fi.nconsts or 0 do knum[i] = funck(func, i - 1) end
   for i = 1, fi.upvalues or 0 do uvnames[i] = jutil.funcuvname(func, i - 1) or false end
   return kgc, knum, uvnames
end

-- The prototype id of a Lua function, writing its proto record the first time. Closures of one
-- prototype share an id: a prototype is known by its chunk, line range, size and constants.
local function proto_id (func, fi)
   local id = log.by_func[func]
   if id then return id end
   local kgc, knum, uvnames = proto_constants(func, fi)
   local key = ("%s\0%d:%d:%d:%d\0%s"):format(fi.source, fi.linedefined, fi.lastlinedefined,
                                             fi.bytecodes, fi.params, mp.pack{kgc, knum, uvnames})
   id = log.protos[key]
   if not id then
      log.nprotos = log.nprotos + 1
      id = log.nprotos
      log.protos[key] = id
      write{event = "proto", id = id, source = fi.source, linedefined = fi.linedefined,
            lastlinedefined = fi.lastlinedefined, kgc = kgc, knum = knum, uvnames = uvnames}
   end
   log.by_func[func] = id
   return id
end

-- A bytecode position: proto id and line in Lua code; nil, nil and a name in a C function.
local function position (func, pc)
   local fi = funcinfo(func, pc)
   if fi.source then return proto_id(func, fi), fi.currentline end
   return nil, nil, cfunc_name(fi)
end

-- A trace constant (tracek): Lua type, IR type, value, stack slot for KSLOT.
local function constant (tr, ref)
   local k, t, slot = jutil.tracek(tr, ref)
   local kind = type(k)
   local c = {ref = ref, t = t, kind = kind, slot = slot}
   if kind == "number" or kind == "string" or kind == "boolean" then
      c.value = k
   elseif kind == "function" then
      local fi = funcinfo(k)
      if fi.source then c.proto = proto_id(k, fi) end
      c.value = fi.loc or cfunc_name(fi)
   elseif kind == "cdata" then
      c.value = tostring(k):gsub("U?LL$", "") -- 64-bit integers, exact as decimal text
   elseif kind ~= "nil" then
      c.value = ("%p"):format(k)
   end
   return c
end

-- A trace's IR and snapshot maps go out as MessagePack bin of little-endian int32s: packed as
-- arrays of numbers by MessagePack's (interpreted) packers they took 9 of the auditlog's ~25 ms
-- in a basic1 100e6 run, whose 45 traces stop inside the engine's 0.73 s.
local int32s = ffi.typeof("int32_t[?]")

-- The constants a trace's IR and snapshots refer to (refs: {[ref] = true}), as jit.dump decodes
-- them. Not every slot below the IR is a constant: a 64-bit one (and any GC object in GC64 builds)
-- keeps its value in the next slot, which tracek would read as a constant of a random opcode.
-- Walking them all crashed or hung about one short bench run in 350 (in lj_ir_kvalue, tostring
-- of a "cdata", funcinfo of a "function"); after: none in 1,800.
local function referenced_constants (tr, refs)
   local constants = {}
   for ref = -jutil.traceinfo(tr).nk, -1 do
      if refs[ref] then constants[#constants + 1] = constant(tr, ref) end
   end
   return constants
end

local function trace_stop (tr)
   local info = jutil.traceinfo(tr)
   local refs = {}
   local ir = int32s(info.nins * 5)
   for ref = 1, info.nins do
      local m, ot, op1, op2, ridsp = jutil.traceir(tr, ref)
      local i = (ref - 1) * 5
      ir[i], ir[i + 1], ir[i + 2], ir[i + 3], ir[i + 4] = m, ot, op1, op2, ridsp
      if band(m, 3) == 0 and op1 < 0 then refs[op1] = true end -- IRMref operands
      if band(rshift(m, 2), 3) == 0 and op2 < 0 then refs[op2] = true end
   end
   local snapshots = {}
   for sn = 0, math.huge do
      local s = jutil.tracesnap(tr, sn)
      if not s then break end
      local map = int32s(math.max(#s - 2, 1))
      for i = 2, #s - 1 do -- s[#s] is an end marker
         map[i - 2] = s[i]
         local ref = band(s[i], 0xffff) - 0x8000
         if ref < 0 then refs[ref] = true end
      end
      snapshots[#snapshots + 1] = {ref = s[0], nslots = s[1],
                                   map = binary(ffi.string(map, 4 * (#s - 2)))}
   end
   local constants = referenced_constants(tr, refs)
   local bytes, address, loop = jutil.tracemc(tr)
   -- The address of each exit's stub, where the machine code jumps to leave the trace (x64 shares
   -- stubs between traces; elsewhere each trace has its own).
   local exitstubs = {}
   for ex = 0, bytes and info.nexit - 1 or -1 do
      exitstubs[ex + 1] = jutil.traceexitstub(ex) or jutil.traceexitstub(tr, ex) or 0
   end
   local cur = log.trace or {lines = {}}
   write{event = "trace_stop", trace = tr, parent = cur.parent, exit = cur.exit, nins = info.nins,
         nk = info.nk, link = info.link, linktype = info.linktype, nexit = info.nexit,
         ir = binary(ffi.string(ir, 20 * info.nins)),
         constants = constants, snapshots = snapshots, lines = cur.lines,
         bytecode = cur.bytecode,
         mcode = bytes and {bytes = binary(bytes), address = address, loop = loop,
                            exitstubs = exitstubs}}
end

-- The abort message as jit.v prints it: vmdef's text for the error code, with its detail.
local function abort_reason (err, info)
   if type(err) ~= "number" then return tostring(err) end
   if type(info) == "function" then
      local fi = funcinfo(info)
      info = fi.loc or cfunc_name(fi)
   end
   local ok, reason = pcall(string.format, vmdef.traceerr[err], info)
   return ok and reason or vmdef.traceerr[err]
end

-- The chunk names of the Lua frames on the stack when recording starts, innermost first (the
-- frame being recorded, then its callers), a name repeated in a row once, at most 16: who called
-- the code, e.g. observe/observe.lua or programs/bench/bench.lua around runtime/engine.lua. The
-- handler's own frames (this module and vm.events, never compiled) are left out.
local handler_sources = {[debug.getinfo(1, "S").source] = true,
                         [debug.getinfo(events.subscribe, "S").source] = true}
local function stack_sources ()
   local sources = {}
   for level = 2, 200 do
      local info = debug.getinfo(level, "S")
      if not info or #sources == 16 then break end
      local source = info.source
      if info.what ~= "C" and not handler_sources[source] and source ~= sources[#sources] then
         sources[#sources + 1] = source
      end
   end
   return sources
end

-- The app whose pull or push is running (the engine's), nil outside app calls.
local function current_app ()
   local name = ffi.string(ffi.C.snabb_engine_current_app())
   return name ~= "" and name or nil
end

function on_trace (what, tr, func, pc, otr, oex)
   if what == "start" then
      local proto, line = position(func, pc)
      log.trace = {parent = otr, exit = oex, proto = proto, line = line, lines = {}, seen = {},
                   bytecode = {}}
      write{event = "trace_start", trace = tr, parent = otr, exit = oex, proto = proto, line = line,
            app = current_app(), stack = stack_sources()}
   elseif what == "stop" then
      trace_stop(tr)
      log.trace = nil
   elseif what == "abort" then
      local cur = log.trace or {}
      local proto, line, cfunc = position(func, pc)
      write{event = "trace_abort", trace = tr, parent = cur.parent, exit = cur.exit,
            code = type(otr) == "number" and otr or nil, reason = abort_reason(otr, oex),
            proto = proto, line = line, cfunc = cfunc, start_proto = cur.proto,
            start_line = cur.line, bytecode = cur.bytecode}
      log.trace = nil
   elseif what == "flush" then
      write{event = "trace_flush"}
   end
end

-- Collects each bytecode recorded into the trace (what jit.dump lists) and the distinct source
-- positions, in order. A bytecode is [proto, pc, depth, instruction, mode] as jit.util.funcbc
-- gives them now (the JIT patches the loops it compiles or blacklists), plus instruction and mode
-- of the jump after a comparison, which jit.dump lists with it; a C function is [name, -1, depth].
function on_record (_, func, pc, depth)
   local cur = log.trace
   if not cur or log.stopped then return end
   local fi = funcinfo(func, pc)
   if pc < 0 or not fi.source then
      cur.bytecode[#cur.bytecode + 1] = {cfunc_name(fi), -1, depth}
      return
   end
   local id, line = proto_id(func, fi), fi.currentline
   local ins, m = funcbc(func, pc)
   local bc = {id, pc, depth, ins, m}
   if band(ins, 0xff) < 16 then bc[6], bc[7] = funcbc(func, pc + 1) end -- ORDER BC: comparisons
   cur.bytecode[#cur.bytecode + 1] = bc
   if not line then return end
   local key = id * 2^24 + line
   if not cur.seen[key] then
      cur.seen[key] = true
      cur.lines[#cur.lines + 1] = {id, line}
   end
end

function M.is_open () return log ~= nil and not log.stopped end

function M.close ()
   if log and not log.stopped then stop() end
   log = nil
end

-- Starts logging to path (truncated). options.max_bytes: the file's size cap (default 64 MiB).
function M.open (path, options)
   M.close()
   local max_bytes = options and options.max_bytes or M.default_max_bytes
   local file, err = io.open(path, "wb")
   if not file then error(("auditlog: %s"):format(err), 0) end
   log = {path = path, file = file, written = 0, max_bytes = max_bytes, protos = {}, nprotos = 0,
          by_func = setmetatable({}, {__mode = "k"})}
   local limit = mp.pack{event = "limit", max_bytes = max_bytes}
   log.limit = M.u32le(#limit) .. limit
   emit(M.magic .. M.u32le(M.version) .. M.u32le(0))
   -- The address of each IR call's C function (jit.dump names the calls to them in machine code).
   local ircall = {}
   for i = 0, #vmdef.ircall do ircall[i + 1] = jutil.ircalladdr(i) end
   write{event = "open", pid = ffi.C.getpid(), time = os.time(), jit_version = jit.version,
         arch = jit.arch, ircall = ircall}
   -- Only now: a trace being recorded meanwhile must not write records before these.
   if not log.stopped then
      events.subscribe("trace", on_trace)
      events.subscribe("record", on_record)
   end
end

-- jit.auditlog(path [, max_bytes]), RaptorJIT's entry point.
function M.install ()
   jit.auditlog = function (path, max_bytes) -- luacheck: ignore 122 (jit is LuaJIT's, extended here)
      M.open(path, {max_bytes = max_bytes})
      return true
   end
end

-- Loops that compile, one that aborts (a closure: NYI bytecode FNEW), a side trace, a flush.
M.selftest_workload = [[
local function work (n)
   local s = 0
   for i = 1, n do
      if i % 4 == 0 then s = s + 2 else s = s + 1 end
   end
   return s
end
local t = {}
for i = 1, 300 do t[i] = i * 0.5 end
work(2000)
local u = 0
for i = 1, 300 do local f = function () return i end u = u + f() end
jit.flush()
for i = 1, 300 do t[i] = i * 0.25 end
]]

-- Runs the workload under the auditlog and checks what observe.auditlog_reader decodes.
function M.selftest ()
   print("selftest: observe.auditlog")
   local reader = require("observe.auditlog_reader")
   local path = os.tmpname()
   local function run_workload (options)
      jit.flush()
      M.open(path, options)
      assert(loadstring(M.selftest_workload, "@workload.lua"))()
      M.close()
      return reader.decode(path)
   end
   jit.opt.start(3, "hotloop=56", "hotexit=10") -- LuaJIT's defaults: a known set of traces
   local d = run_workload()
   assert(d.version == M.version and d.open.pid > 0 and d.open.jit_version == jit.version
          and #d.open.ircall == #vmdef.ircall + 1, "open record")
   assert(not d.truncated and not d.limit_reached and d.flushes == 1, "flush")
   -- The workload's traces (the caller's code may be traced too) and aborts.
   local traces, aborts, roots = {}, {}, 0
   for _, t in ipairs(d.traces) do
      if t.start.source == "workload.lua" then
         if not t.parent then roots = roots + 1 end
         traces[#traces + 1] = ("%d:%d %s %s %s"):format(t.generation, t.number, t.span, t.linktype,
                                                         t.parent and t.parent .. "/" .. t.exit or "-")
         assert(#t.mcode.bytes == t.mcode.size and t.mcode.size > 0 and t.mcode.address > 0)
         local _, n = reader.disassemble(t.mcode):gsub("\n%x+  %a", "")
         assert(n >= 3, "disassembly of trace " .. t.number)
         assert(#t.ir == t.nins and #t.snapshots > 0, "IR of " .. t.number)
         -- Each constant an instruction refers to is decoded, and nothing more.
         local k, used = {}, 0
         for _, c in ipairs(t.constants) do k[c.ref] = c end
         for _, ins in ipairs(t.ir) do
            for i, op in ipairs({ins[3], ins[4]}) do
               if band(rshift(ins[1], 2 * (i - 1)), 3) == 0 and op < 0 then
                  assert(k[op], ("trace %d: constant %d"):format(t.number, op))
                  used = used + 1
               end
            end
         end
         assert(used > 0 and #t.constants <= t.nk, "constants of " .. t.number)
         -- What jit.dump lists: the bytecode recorded (from workload.lua), an exit stub per exit.
         assert(#t.bytecode > 0 and d.protos[t.bytecode[1].proto].source == "workload.lua"
                and #t.mcode.exitstubs == t.nexit and t.mcode.exitstubs[1] > 0,
                "bytecode and exits of " .. t.number)
      end
   end
   for _, a in ipairs(d.aborts) do
      if a.start.source == "workload.lua" then aborts[#aborts + 1] = a end
   end
   -- The loops compile, work()'s branch gets a side trace (or two: LuaJIT's hot counters are
   -- hashed by address), and the flush starts a new generation.
   local got = table.concat(traces, "; ")
   assert(roots == 4 and #traces >= 5 and #traces <= 6, "traces: " .. got)
   for _, want in ipairs({"0:1 workload.lua:9 loop %-", "0:%d+ workload.lua:3%-4 loop %-",
                          "0:%d+ workload.lua:3%-4 root %d+/%d+", "0:%d+ workload.lua:12 return %-",
                          "1:1 workload.lua:14 loop %-"}) do
      assert(got:match(want), ("traces: %s; missing %s"):format(got, want))
   end
   -- The closure stops every attempt at line 12 (NYI: bytecode FNEW).
   local fnew = (vmdef.bcnames:find("FNEW") - 1) / 6
   assert(#aborts >= 1, "no abort")
   for _, a in ipairs(aborts) do
      assert(a.reason == ("NYI: bytecode %d"):format(fnew)
             and vmdef.traceerr[a.code] == "NYI: bytecode %d" and a.source == "workload.lua"
             and a.line == 12 and a.start.line == 12,
             ("abort: %s:%s %s"):format(a.source, a.line, a.reason))
   end
   -- A small cap: the log ends in the limit record and stays within it.
   d = run_workload({max_bytes = 2000})
   local f = assert(io.open(path))
   assert(d.limit_reached and #d.traces < 5 and f:seek("end") <= 2000, "size cap")
   f:close()
   -- jit.auditlog(path), and an unwritable path named in the error.
   M.install()
   assert(jit.auditlog(path) and M.is_open())
   M.close()
   assert(not M.is_open())
   local ok, err = pcall(M.open, "/nonexistent/audit.log")
   assert(not ok and err:match("^auditlog: /nonexistent/audit.log: "), err)
   os.remove(path)
   print("selftest: observe.auditlog ok")
end

return M
