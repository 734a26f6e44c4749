-- observe.auditlog: an append-only binary log of JIT events, as RaptorJIT's auditlog offers. Records
-- are written only when the JIT acts (trace start, stop, abort, flush), so a process in steady
-- state pays nothing. Format: observe/AUDITLOG.md; reader: observe/auditlog_reader.lua.
local M = {}

local ffi = require("ffi")
local jutil = require("jit.util")
local vmdef = require("jit.vmdef")
local sbuf = require("string.buffer")
local events = require("vm.events")
require("core.cdefs") -- snabb_engine_current_app
local band, rshift = bit.band, bit.rshift
local char, floor = string.char, math.floor
local funcinfo, funcbc, funck = jutil.funcinfo, jutil.funcbc, jutil.funck
local getinfo = debug.getinfo

ffi.cdef("int getpid(void);")

M.magic = "SNABBAUD"
M.version = 3
M.default_max_bytes = 64 * 1024 * 1024

-- MessagePack for the values records hold: maps with string keys, arrays without holes, numbers,
-- strings, booleans, nil, and bins: binary(s) marks a string as one (machine code), and binary(p,
-- n) the n bytes at p; packed(s) is a value already packed (a proto's constants, packed once for
-- its key and its record). Debian's lua-messagepack (the reader's unpacker) packs them alike, but
-- its packers, interpreted in the handlers, took 50 us for a trace_stop record of ~60 values in a
-- basic1 run (a type dispatch, #buffer and a string per value, every table walked twice); these
-- took ~28 us.
local binary_mt, packed_mt = {}, {}
local function binary (s, n) return setmetatable({s, n}, binary_mt) end
local function packed (s) return setmetatable({s}, packed_mt) end
local out = sbuf.new() -- the value being packed

local function be16 (n) return char(rshift(n, 8), band(n, 0xff)) end
local function be32 (n)
   return char(band(rshift(n, 24), 0xff), band(rshift(n, 16), 0xff), band(rshift(n, 8), 0xff),
               band(n, 0xff))
end
local double = ffi.new("union { double d; uint8_t b[8]; }")

-- n: count, fix: the fixarray/fixmap/fixstr byte (small: its largest count), then the 8-, 16- and
-- 32-bit length bytes (false: none).
local function put_header (n, fix, small, c8, c16, c32)
   if n <= small then out:put(char(fix + n))
   elseif c8 and n < 0x100 then out:put(c8, char(n))
   elseif n < 0x10000 then out:put(c16, be16(n))
   else out:put(c32, be32(n)) end
end

local function put_number (n)
   if n ~= floor(n) or n <= -2^53 or n >= 2^53 then -- also NaN and infinities
      -- Subnormal numbers as zeros of their sign, as lua-messagepack packs them: its unpacker,
      -- the reader's, would read them wrong (a GC64 snapshot's frame constants are subnormal).
      if n > -2^-1022 and n < 2^-1022 then n = n < 0 and -0.0 or 0.0 end
      double.d = n
      local b = double.b
      out:put(char(0xcb, b[7], b[6], b[5], b[4], b[3], b[2], b[1], b[0]))
   elseif n >= 0 then
      if n < 0x80 then out:put(char(n))
      elseif n < 0x100 then out:put(char(0xcc, n))
      elseif n < 0x10000 then out:put("\xcd", be16(n))
      elseif n < 2^32 then out:put("\xce", be32(n))
      else
         local hi = floor(n / 2^32)
         out:put("\xcf", be32(hi), be32(n - hi * 2^32))
      end
   elseif n >= -0x20 then out:put(char(n + 0x100))
   elseif n >= -0x80 then out:put(char(0xd0, n + 0x100))
   elseif n >= -0x8000 then out:put("\xd1", be16(n + 0x10000))
   elseif n >= -2^31 then out:put("\xd2", be32(n))
   else
      local hi = floor(n / 2^32)
      out:put("\xd3", be32(hi), be32(n - hi * 2^32))
   end
end

-- The packed form of each map key met, e.g. "\xa5trace".
local keys = setmetatable({}, {__index = function (t, k)
   t[k] = char(0xa0 + #k) .. k -- fixstr: the records' keys are short
   return t[k]
end})

local function put (v)
   local kind = type(v)
   if kind == "number" then
      put_number(v)
   elseif kind == "string" then
      put_header(#v, 0xa0, 31, "\xd9", "\xda", "\xdb")
      out:put(v)
   elseif kind == "boolean" then
      out:put(v and "\xc3" or "\xc2")
   elseif kind == "nil" then
      out:put("\xc0")
   else
      local mt = getmetatable(v)
      if mt == binary_mt then
         local n = v[2] or #v[1]
         put_header(n, 0, -1, "\xc4", "\xc5", "\xc6")
         if v[2] then out:putcdata(v[1], n) else out:put(v[1]) end
      elseif mt == packed_mt then
         out:put(v[1])
      elseif type(next(v)) == "string" then -- a map
         local n = 0
         for _ in pairs(v) do n = n + 1 end
         put_header(n, 0x80, 15, false, "\xde", "\xdf")
         for k, x in pairs(v) do
            out:put(keys[k])
            put(x)
         end
      else
         local n = #v
         put_header(n, 0x90, 15, false, "\xdc", "\xdd")
         for i = 1, n do put(v[i]) end
      end
   end
end

local function pack (v)
   out:reset() -- nothing left of a value whose packing failed
   put(v)
   return out:get()
end

-- Most of a trace's record is numbers: the IR, constants' types and refs, snapshots, bytecode and
-- source lines go out as bin of little-endian int32s (int64s for addresses), gathered in Lua
-- tables and converted in one C call. Packed one by one, which runs interpreted here, they were
-- most of the auditlog's cost: ~0.7 us a value, ~180 us a trace.
local int32s, int64s = ffi.typeof("int32_t[?]"), ffi.typeof("int64_t[?]")
local function int32_bin (list, n) return binary(int32s(n, list), 4 * n) end
local function int64_bin (list, n) return binary(int64s(n, list), 8 * n) end

-- The Lua type of a trace constant, by number (AUDITLOG.md); 0 for another.
M.kinds = {"nil", "boolean", "number", "string", "function", "cdata", "table", "userdata",
           "thread", "proto", "upval", "trace"}
local kind_code = {}
for i, kind in ipairs(M.kinds) do kind_code[kind] = i end

-- The handlers run while the JIT is busy with another trace: if code they run were compiled, a
-- trace exit in it would overwrite the JIT's state and crash LuaJIT. So this module's functions
-- are never compiled.
jit.off(debug.getinfo(1, "f").func, true)

function M.u32le (n)
   return string.char(band(n, 0xff), band(rshift(n, 8), 0xff), band(rshift(n, 16), 0xff),
                      rshift(n, 24))
end

-- The open log: path, file, written (bytes), max_bytes, limit (the final record, packed), protos
-- (signature -> id), nprotos, proto_ids (prototype -> id, weak), funcs (function -> what
-- positions in it need, weak: see func_entry), trace (the one being recorded), stopped (at the
-- limit or a write error: the handlers are detached and the file closed).
local log
local on_trace, on_record

local function stop ()
   events.unsubscribe("trace", on_trace)
   events.unsubscribe("record", on_record)
   log.file:close()
   log.stopped = true
end

local function failed (err)
   io.stderr:write(("auditlog: %s: %s; logging stopped\n"):format(log.path, err))
   stop()
end

local function emit (bytes)
   local ok, err = log.file:write(bytes)
   if not ok then return failed(err) end
   log.written = log.written + #bytes
end

-- What a trace event wrote reaches the file when its handler ends: one write(2) for a trace start
-- and the proto records before it, one for a stop and the proto records met while recording
-- (a write took ~5-15 us in a basic1 run; a flush per record made ~140 of them, now ~100).
local function flush ()
   if log.stopped then return end
   local ok, err = log.file:flush()
   if not ok then failed(err) end
end

-- Appends one record; the one that would pass max_bytes is replaced by the limit record, the last.
local function write (record)
   if log.stopped then return end
   local body = pack(record)
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

M.max_source_bytes = 256 * 1024 -- a source event's text is cut to this (size: the file's)

-- Read through the FFI: io.open's file objects have a finalizer, and a finalizer that runs while
-- the JIT records aborts that trace (this module's selftest lost its first loop's trace so).
for name, decl in pairs({open = "int open(const char *path, int flags, ...);",
                         close = "int close(int fd);",
                         lseek = "int64_t lseek(int fd, int64_t offset, int whence);",
                         pread = "int64_t pread(int fd, void *buf, size_t n, int64_t offset);"}) do
   if not pcall(function () return ffi.C[name] end) then ffi.cdef(decl) end
end
local source_buffer -- M.max_source_bytes, allocated at the first source event

-- The text of a chunk's file, once per chunk, before its first proto record (snabb inspect shows a
-- run's source from its log, on any machine). Only chunks named after a file (@path) that can be
-- read from here; the text up to M.max_source_bytes, size giving the whole file's.
local function source_record (source)
   log.sources[source] = true
   local path = source:match("^@(.+)")
   local fd = path and ffi.C.open(path, 0) or -1 -- O_RDONLY
   if fd < 0 then return end
   local size = tonumber(ffi.C.lseek(fd, 0, 2)) -- SEEK_END
   if not source_buffer or ffi.sizeof(source_buffer) < M.max_source_bytes then
      source_buffer = ffi.new("uint8_t[?]", M.max_source_bytes)
   end
   local n = size >= 0 and tonumber(ffi.C.pread(fd, source_buffer, math.min(size, M.max_source_bytes), 0)) or -1
   ffi.C.close(fd)
   if n >= 0 then
      write{event = "source", source = source, text = ffi.string(source_buffer, n), size = size}
   end
end

-- The prototype id of a Lua function, writing its proto record the first time. Closures of one
-- prototype share an id: a prototype is known by its chunk, line range, size and constants.
local function proto_id (func, fi)
   local id = log.proto_ids[fi.proto]
   if id then return id end
   local kgc, knum, uvnames = proto_constants(func, fi)
   kgc, knum, uvnames = pack(kgc), pack(knum), pack(uvnames)
   local key = ("%s\0%d:%d:%d:%d\0"):format(fi.source, fi.linedefined, fi.lastlinedefined,
                                           fi.bytecodes, fi.params) .. kgc .. knum .. uvnames
   id = log.protos[key]
   if not id then
      if not log.sources[fi.source] then source_record(fi.source) end
      log.nprotos = log.nprotos + 1
      id = log.nprotos
      log.protos[key] = id
      write{event = "proto", id = id, source = fi.source, linedefined = fi.linedefined,
            lastlinedefined = fi.lastlinedefined, kgc = packed(kgc), knum = packed(knum),
            uvnames = packed(uvnames)}
   end
   log.proto_ids[fi.proto] = id
   return id
end

-- What the handlers need of a function, looked up once (jit.util.funcinfo builds a table of 13
-- fields, the location text among them): proto (its id; false for a C function), name (file:line
-- or a built-in's name) and, by bytecode position, the line ([pc] = line or false), filled as
-- positions are met. Kept per closure (log.funcs, weak).
local function func_entry (func)
   local fi = funcinfo(func)
   local f = {proto = fi.source and proto_id(func, fi) or false, name = fi.loc or cfunc_name(fi)}
   log.funcs[func] = f
   return f
end

local function line_at (f, func, pc)
   local line = f[pc]
   if line == nil then
      line = funcinfo(func, pc).currentline or false
      f[pc] = line
   end
   return line
end

-- A bytecode position: proto id and line in Lua code; nil, nil and a name in a C function.
local function position (func, pc)
   local f = log.funcs[func] or func_entry(func)
   if not f.proto then return nil, nil, f.name end
   return f.proto, line_at(f, func, pc) or nil
end

-- The constants a trace's IR and snapshots refer to (refs: {[ref] = true}), as jit.dump decodes
-- them (jit.util.tracek): rows of ref, IR type, kind (M.kinds), stack slot for KSLOT (-1: none),
-- proto of a Lua function (0: none), and the values apart (false for nil). Not every slot below
-- the IR is a constant: a 64-bit one (and any GC object in GC64 builds) keeps its value in the next
-- slot, which tracek would read as a constant of a random opcode. Walking them all crashed or hung
-- about one short bench run in 350 (in lj_ir_kvalue, tostring of a "cdata", funcinfo of a
-- "function"); after: none in 1,800.
local function referenced_constants (tr, refs, nk)
   local rows, values, n = {}, {}, 0
   for ref = -nk, -1 do
      if refs[ref] then
         local k, t, slot = jutil.tracek(tr, ref)
         local kind, value, proto = type(k), false, 0
         if kind == "number" or kind == "string" or kind == "boolean" then
            value = k
         elseif kind == "function" then
            local f = log.funcs[k] or func_entry(k)
            proto, value = f.proto or 0, f.name
         elseif kind == "cdata" then
            value = tostring(k):gsub("U?LL$", "") -- 64-bit integers, exact as decimal text
         elseif kind ~= "nil" then
            value = ("%p"):format(k)
         end
         local i = 5 * n
         rows[i + 1], rows[i + 2], rows[i + 3], rows[i + 4], rows[i + 5] =
            ref, t, kind_code[kind] or 0, slot or -1, proto
         n = n + 1
         values[n] = value
      end
   end
   return int32_bin(rows, 5 * n), values
end

-- The largest of a string of int32s (-1 for none): ~7 us for a trace of 300 instructions,
-- interpreted as the handlers run.
local function max_int32 (s)
   local p, max = ffi.cast("const int32_t *", s), -1
   for i = 0, #s / 4 - 1 do if p[i] > max then max = p[i] end end
   return max
end

local function trace_stop (tr)
   local info = jutil.traceinfo(tr)
   local nins, refs, ir = info.nins, {}, {}
   for ref = 1, nins do
      local m, ot, op1, op2, ridsp = jutil.traceir(tr, ref)
      local i = (ref - 1) * 5
      ir[i + 1], ir[i + 2], ir[i + 3], ir[i + 4], ir[i + 5] = m, ot, op1, op2, ridsp
      if band(m, 3) == 0 and op1 < 0 then refs[op1] = true end -- IRMref operands
      if band(rshift(m, 2), 3) == 0 and op2 < 0 then refs[op2] = true end
   end
   -- Each snapshot: ref, nslots, its entry count and its entries (s[#s] is an end marker).
   local snapshots, n = {}, 0
   for sn = 0, math.huge do
      local s = jutil.tracesnap(tr, sn)
      if not s then break end
      snapshots[n + 1], snapshots[n + 2], snapshots[n + 3] = s[0], s[1], #s - 2
      for i = 2, #s - 1 do
         local e = s[i]
         snapshots[n + 2 + i] = e
         local ref = band(e, 0xffff) - 0x8000
         if ref < 0 then refs[ref] = true end
      end
      n = n + 1 + #s
   end
   local constants, kvalues = referenced_constants(tr, refs, info.nk)
   local bytes, address, loop = jutil.tracemc(tr)
   -- The address of each exit's stub, where the machine code jumps to leave the trace (x64 shares
   -- stubs between traces; elsewhere each trace has its own).
   local exitstubs, nexit = {}, bytes and info.nexit or 0
   for ex = 0, nexit - 1 do
      exitstubs[ex + 1] = jutil.traceexitstub(ex) or jutil.traceexitstub(tr, ex) or 0
   end
   local cur = log.trace or {lines = {}, nlines = 0}
   -- Each instruction's bytecode (index into cur.bc, counted as the record events are) and
   -- machine code range, and each snapshot's bytecode (mcode-map.patch). The indices only when
   -- this log saw every bytecode the trace recorded (not when it was opened while recording).
   local irbc, irmc, snapbc
   if jutil.tracemap then irbc, irmc, snapbc = jutil.tracemap(tr) end
   if irbc and not (cur.bc and max_int32(irbc) < cur.nbc / 7 and max_int32(snapbc) < cur.nbc / 7) then
      irbc, snapbc = nil, nil
   end
   write{event = "trace_stop", trace = tr, parent = cur.parent, exit = cur.exit, nins = nins,
         nk = info.nk, link = info.link, linktype = info.linktype, nexit = info.nexit,
         ir = int32_bin(ir, 5 * nins), constants = constants, kvalues = kvalues,
         snapshots = int32_bin(snapshots, n), lines = int32_bin(cur.lines, cur.nlines),
         bytecode = cur.bc and int32_bin(cur.bc, cur.nbc), cfuncs = cur.cfuncs,
         bclines = cur.bc and int32_bin(cur.bclines, cur.nbc / 7),
         mcode = bytes and {bytes = binary(bytes), address = address, loop = loop,
                            exitstubs = int64_bin(exitstubs, nexit)},
         irbc = irbc and binary(irbc), irmc = irmc and binary(irmc),
         snapbc = snapbc and binary(snapbc)}
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
-- A frame's chunk name comes from its function, looked up once (func_source, weak; false for a
-- C function): debug.getinfo(level, "S") per frame formats short_src too, and a trace start walks
-- ~17 frames in basic1.
local handler_sources = {[getinfo(1, "S").source] = true,
                         [getinfo(events.subscribe, "S").source] = true}
local func_source = setmetatable({}, {__mode = "k"})
local function stack_sources ()
   local sources, n = {}, 0
   for level = 2, 200 do
      local info = n < 16 and getinfo(level, "f")
      if not info then break end
      local func = info.func
      local source = func_source[func]
      if source == nil then
         local s = getinfo(func, "S")
         source = s.what ~= "C" and s.source
         func_source[func] = source
      end
      if source and not handler_sources[source] and source ~= sources[n] then
         n = n + 1
         sources[n] = source
      end
   end
   return sources
end

-- The app whose pull or push is running (the engine's), nil outside app calls.
local function current_app ()
   local name = ffi.string(ffi.C.snabb_engine_current_app())
   return name ~= "" and name or nil
end

-- Whether the abort of the trace being recorded (cur) has kept its start out of the JIT for good.
-- LuaJIT (lj_trace.c, trace_abort) penalises the start of an aborted root trace before it sends
-- the abort event: it doubles the bytecode's hot count, and past PENALTY_MAX (about the 10th abort
-- there) blacklists it, patching it to its I-variant (FORL -> IFORL, LOOP -> ILOOP, ITERL ->
-- IITERL, FUNCF -> IFUNCF, FUNCV -> IFUNCV; ITERN -> ITERC), which the interpreter never counts
-- again: the code runs interpreted until the function is flushed or jit.on(func) re-enables it.
-- A stitched continuation (exit -1) that aborts is blacklisted at once: its parent's link is set
-- to the parent itself, and the stitch is never tried again. Both are read here, after the fact.
local I_VARIANT = {FORL = "IFORL", LOOP = "ILOOP", ITERL = "IITERL", FUNCF = "IFUNCF",
                   FUNCV = "IFUNCV", ITERN = "ITERC"}
local function bcname (op)
   return vmdef.bcnames:sub(op * 6 + 1, op * 6 + 6):gsub(" +$", "")
end
local function blacklisted (cur)
   if cur.exit == -1 and cur.parent then
      local info = jutil.traceinfo(cur.parent)
      return info ~= nil and info.link == cur.parent and info.linktype == "stitch"
   elseif not cur.parent and cur.func then
      local ins = funcbc(cur.func, cur.pc)
      return ins ~= nil and bcname(band(ins, 0xff)) == I_VARIANT[bcname(cur.op)]
   end
   return false
end

function on_trace (what, tr, func, pc, otr, oex)
   if what == "start" then
      local proto, line = position(func, pc)
      log.trace = {parent = otr, exit = oex, proto = proto, line = line, bc = {}, nbc = 0,
                   bclines = {}, lines = {}, nlines = 0, seen = {}}
      if not otr and proto and pc >= 0 then -- a root trace's start bytecode, which aborts penalise
         local ins = funcbc(func, pc)
         if ins then log.trace.func, log.trace.pc, log.trace.op = func, pc, band(ins, 0xff) end
      end
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
            start_line = cur.line, start_op = cur.op, blacklisted = blacklisted(cur) or nil,
            bytecode = cur.bc and int32_bin(cur.bc, cur.nbc),
            bclines = cur.bc and int32_bin(cur.bclines, cur.nbc / 7),
            cfuncs = cur.cfuncs}
      log.trace = nil
   elseif what == "flush" then
      write{event = "trace_flush"}
   end
   flush()
end

-- Collects each bytecode recorded into the trace (what jit.dump lists) and the distinct source
-- positions, in order, into flat lists (cur.bc, cur.lines) that go out as int32 rows, and each
-- bytecode's line (cur.bclines, -1 for none: a C function's). A bytecode
-- is proto, pc, depth, instruction, mode as jit.util.funcbc gives them now (the JIT patches the
-- loops it compiles or blacklists), and instruction and mode of the jump after a comparison,
-- which jit.dump lists with it (0, -1 after others); a C function is 0, -1, depth, its name's
-- index in cur.cfuncs, 0, 0, -1.
function on_record (_, func, pc, depth)
   local cur = log.trace
   if not cur or log.stopped then return end
   local f = log.funcs[func] or func_entry(func) -- its proto record goes with the trace's stop
   local bc, n, id = cur.bc, cur.nbc, f.proto
   cur.nbc = n + 7
   if pc < 0 or not id then
      local cfuncs = cur.cfuncs or {}
      cur.cfuncs = cfuncs
      cfuncs[#cfuncs + 1] = f.name
      bc[n + 1], bc[n + 2], bc[n + 3], bc[n + 4], bc[n + 5], bc[n + 6], bc[n + 7] =
         0, -1, depth, #cfuncs, 0, 0, -1
      cur.bclines[n / 7 + 1] = -1
      return
   end
   local ins, m = funcbc(func, pc)
   local jmp, jmp_mode = 0, -1
   if band(ins, 0xff) < 16 then -- ORDER BC: comparisons
      local j, jm = funcbc(func, pc + 1)
      if j then jmp, jmp_mode = j, jm end
   end
   bc[n + 1], bc[n + 2], bc[n + 3], bc[n + 4], bc[n + 5], bc[n + 6], bc[n + 7] =
      id, pc, depth, ins, m, jmp, jmp_mode
   local line = line_at(f, func, pc)
   cur.bclines[n / 7 + 1] = line or -1
   if not line then return end
   local key = id * 2^24 + line
   if not cur.seen[key] then
      cur.seen[key] = true
      local l = cur.nlines
      cur.lines[l + 1], cur.lines[l + 2] = id, line
      cur.nlines = l + 2
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
          sources = {}, -- chunk names whose source event is written (or cannot be)
          proto_ids = setmetatable({}, {__mode = "k"}), funcs = setmetatable({}, {__mode = "k"})}
   local limit = pack{event = "limit", max_bytes = max_bytes}
   log.limit = M.u32le(#limit) .. limit
   emit(M.magic .. M.u32le(M.version) .. M.u32le(0))
   -- The address of each IR call's C function (jit.dump names the calls to them in machine code).
   local ircall = {}
   for i = 0, #vmdef.ircall do ircall[i + 1] = jutil.ircalladdr(i) end
   write{event = "open", pid = ffi.C.getpid(), time = os.time(), jit_version = jit.version,
         arch = jit.arch, ircall = ircall}
   flush()
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

-- Code LuaJIT blacklists: a loop that aborts every time (a closure per iteration, NYI bytecode
-- FNEW) for long enough (LuaJIT blacklists its FORL after about 10 aborts, doubling the hot count
-- each time: ~75,000 iterations); a stitched continuation that aborts (blacklisted at its first
-- abort); and a loop that aborts but runs too briefly to be blacklisted.
M.selftest_blacklist_workload = [[
local n = 0
for i = 1, 200000 do local h = function () return i end n = n + h() end
for i = 1, 3000 do
   local x = 0
   for j = 1, 30 do x = x + j end
   os.clock()
   local h = function () return i end
   n = n + h() + x
end
for i = 1, 300 do local h = function () return i end n = n + h() end
return n
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
   -- Blacklisting: the abort after which LuaJIT patched the start of the loop at line 2 (FORL
   -- to IFORL) is marked, its last there, and none before it; the stitched continuation after
   -- os.clock() is marked at its (only) abort; the loop at line 10 aborts, is not blacklisted.
   jit.flush()
   M.open(path)
   assert(loadstring(M.selftest_blacklist_workload, "@blacklist.lua"))()
   M.close()
   d = reader.decode(path)
   local at, stitched, brief = {}, 0, 0
   for _, a in ipairs(d.aborts) do
      if a.start.source == "blacklist.lua" then
         if a.exit == -1 then
            stitched = stitched + 1
            assert(a.blacklisted, "a stitched continuation's abort is not marked blacklisted")
         elseif a.start.line == 2 then
            at[#at + 1] = a
            assert(a.start_bc == "FORL", "start bytecode " .. tostring(a.start_bc))
         elseif a.start.line == 10 then
            brief = brief + 1
            assert(not a.blacklisted, "the brief loop at line 10 is marked blacklisted")
         end
      end
   end
   assert(#at >= 3 and at[#at].blacklisted, ("%d aborts at line 2, the last %s"):format(
      #at, at[#at] and tostring(at[#at].blacklisted)))
   for i = 1, #at - 1 do assert(not at[i].blacklisted, "abort before the blacklisting marked") end
   assert(stitched >= 1 and brief >= 1, ("%d stitched aborts, %d brief"):format(stitched, brief))
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
