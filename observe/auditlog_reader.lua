-- observe.auditlog_reader: reads what observe.auditlog writes (the format: AUDITLOG.md, beside
-- both). decode(path) turns a log into traces with their bytecode, IR, constants, snapshots,
-- machine code and source span, aborts with their reasons, and flushes ("Decoded form" in
-- AUDITLOG.md); disassemble(mcode, ircall) makes a trace's machine code text through Capstone.
-- `snabb auditlog` (programs/auditlog), `snabb profile` and `snabb inspect` are its clients. Kept
-- apart from the writer, whose functions are never compiled (they run inside JIT event handlers),
-- so that a 64 MiB log is decoded by compiled code.
--
-- Cross-references within a decoded trace t (logs written with mcode-map.patch; nil without):
--   M.ins_of_offset(t, offset)   -- the IR instruction (1..t.nins) whose machine code holds byte
--                                -- offset (from t.mcode.address); nil for code of none (the
--                                -- trace's head and tail, the loop branch) or outside the trace
--   M.ins_of_address(t, address) -- the same for an address
--   M.ins_bytecode(t, ins)       -- the index in t.bytecode of the bytecode the instruction was
--                                -- recorded for, and that bytecode; nil for none (the trace's
--                                -- entry, LOOP, PHIs)
--   M.ins_line(d, t, ins)        -- its source file and line (nil for none); an instruction of a
--                                   C function's record (a fast function, an FFI metamethod) is on
--                                   the line of the Lua bytecode that called it (M.bytecode_line)
--   M.snap_bytecode(t, snapno)   -- as M.ins_bytecode, for a snapshot (where its exit resumes)
local ffi = require("ffi")
local auditlog = require("observe.auditlog")
local vmdef = require("jit.vmdef")
local mp = require("MessagePack")
require("observe.disasm_cdefs")

local M = {}

-- A MessagePack bin of little-endian int32s (int64s: size 8) in rows of width numbers, as a
-- list of numbers; name says what it is in an error.
local function numbers (s, name, width, size)
   size = size or 4
   if type(s) ~= "string" or #s % (width * size) ~= 0 then
      error(("%s: not rows of %d int%d"):format(name, width, 8 * size), 0)
   end
   local p, list = ffi.cast(size == 8 and "const int64_t*" or "const int32_t*", s), {}
   for i = 1, #s / size do list[i] = tonumber(p[i - 1]) end
   return list
end

local function u32le (s, i)
   local a, b, c, d = s:byte(i, i + 3)
   return a + b * 0x100 + c * 0x10000 + d * 0x1000000
end

-- An opcode's name (vmdef.bcnames), "?" for one out of range.
local function bcname (op)
   local name = op >= 0 and vmdef.bcnames:sub(op * 6 + 1, op * 6 + 6):gsub(" +$", "")
   return name and name ~= "" and name or "?"
end

-- A chunk name as Lua shows it: "@file.lua" and "=name" without the sign, source text quoted.
local function chunk (name)
   if not name then return "?" end
   return name:match("^[@=](.*)") or ('[string "%s"]'):format(name:match("^[^\n]*"):sub(1, 40))
end

-- "a.lua:12-30, b.lua:7": first and last line of each source file, in order of first appearance.
local function span (lines)
   local order, range = {}, {}
   for _, l in ipairs(lines) do
      local r = range[l.source]
      if not r then
         r = {l.line, l.line}
         range[l.source], order[#order + 1] = r, l.source
      end
      r[1], r[2] = math.min(r[1], l.line), math.max(r[2], l.line)
   end
   for i, source in ipairs(order) do
      local r = range[source]
      order[i] = source .. ":" .. r[1] .. (r[2] ~= r[1] and "-" .. r[2] or "")
   end
   return table.concat(order, ", ")
end

-- The bytecode recorded as decoded: {proto, pc, depth, ins, mode, jmp, jmp_mode, line} for Lua
-- code (jmp: the jump after a comparison; line: its source line, from bclines, absent in logs
-- written before it), {cfunc, pc = -1, depth} for a C function.
local function bytecode (bin, cfuncs, bclines)
   local out, v = {}, numbers(bin or "", "bytecode", 7)
   local lines = bclines and numbers(bclines, "bclines", 1)
   if lines and #lines ~= #v / 7 then error("bclines: not one per bytecode", 0) end
   for i = 1, #v / 7 do
      local r = 7 * (i - 1)
      local pc, depth, ins, jmp_mode = v[r + 2], v[r + 3], v[r + 4], v[r + 7]
      -- A frame depth is below LuaJIT's 250 stack slots of a trace; a corrupt one as large as
      -- 2^31 made the listing's indentation string run out of memory.
      if depth < 0 or depth > 250 then error(("bytecode: frame depth %d"):format(depth), 0) end
      if pc < 0 then
         out[i] = {cfunc = cfuncs and cfuncs[ins] or "?", pc = -1, depth = depth}
      else
         local jmp = jmp_mode >= 0
         out[i] = {proto = v[r + 1], pc = pc, depth = depth, ins = ins, mode = v[r + 5],
                   jmp = jmp and v[r + 6] or nil, jmp_mode = jmp and jmp_mode or nil,
                   line = lines and lines[i] >= 0 and lines[i] or nil}
      end
   end
   return out
end

-- A trace's constants: rows of ref, t, kind, slot, proto and their values apart.
local function constants (bin, values)
   local out, v = {}, numbers(bin, "constants", 5)
   for i = 1, #v / 5 do
      local r = 5 * (i - 1)
      local kind, slot, proto = auditlog.kinds[v[r + 3]] or "?", v[r + 4], v[r + 5]
      local c = {ref = v[r + 1], t = v[r + 2], kind = kind, slot = slot >= 0 and slot or nil,
                 proto = proto > 0 and proto or nil}
      if kind ~= "nil" then c.value = values[i] end
      out[i] = c
   end
   return out
end

-- A trace's snapshots: ref, nslots, entry count and entries, one after the other.
local function snapshots (bin)
   local out, v, i = {}, numbers(bin, "snapshots", 1), 1
   while i <= #v do
      local n = v[i + 2]
      if not n or n < 0 or i + 2 + n > #v then error("snapshots: cut short", 0) end
      -- A snapshot covers at most LuaJIT's 250 stack slots of a trace (LJ_MAX_JSLOTS); the
      -- listing writes each.
      if v[i + 1] < 0 or v[i + 1] > 250 then error(("snapshots: %d slots"):format(v[i + 1]), 0) end
      out[#out + 1] = {ref = v[i], nslots = v[i + 1], map = {unpack(v, i + 3, i + 2 + n)}}
      i = i + 3 + n
   end
   return out
end

-- A list of bytecode indices as written (from 0, -1 for none), n of them, as indices into
-- t.bytecode (from 1, 0 for none).
local function bytecode_indices (bin, name, n, nbytecode)
   local v = numbers(bin, name, 1)
   if #v ~= n then error(("%s: %d entries for %d"):format(name, #v, n), 0) end
   for i, k in ipairs(v) do
      if k < -1 or k >= nbytecode then
         error(("%s: bytecode %d of entry %d, the trace recorded %d"):format(name, k, i, nbytecode), 0)
      end
      v[i] = k + 1
   end
   return v
end

-- The maps of a trace_stop record (mcode-map.patch): ir_mcode = {start1, end1, start2, ...}, the
-- machine code range of each instruction as offsets from mcode.address; ir_bytecode and
-- snap_bytecode, the bytecode each instruction and snapshot was recorded for (index into
-- t.bytecode, 0 for none).
local function cross_references (t, rec)
   if rec.irmc and t.mcode then
      local v = numbers(rec.irmc, "irmc", 2)
      if #v ~= 2 * t.nins then error(("irmc: %d ranges for nins %d"):format(#v / 2, t.nins), 0) end
      for i = 1, #v, 2 do
         if v[i] < 0 or v[i] > v[i + 1] or v[i + 1] > t.mcode.size then
            error(("irmc: instruction %d at %d-%d, machine code of %d bytes"):format(
               (i + 1) / 2, v[i], v[i + 1], t.mcode.size), 0)
         end
      end
      t.ir_mcode = v
   end
   if rec.irbc then t.ir_bytecode = bytecode_indices(rec.irbc, "irbc", t.nins, #t.bytecode) end
   if rec.snapbc then
      t.snap_bytecode = bytecode_indices(rec.snapbc, "snapbc", #t.snapshots, #t.bytecode)
   end
end

-- What each event's fields must be, by kind: int (a whole number), number, string, table, list
-- (of kind), or false for any; "?" after a kind: may be absent. A record of a known event whose
-- fields are otherwise is corrupt, said so by the reader (programs/auditlog/auditlog_fuzz.lua
-- found the listing failing on such fields).
local FIELDS = {
   open = {pid = "int?", time = "number?", jit_version = "string?", arch = "string?",
           ircall = "list:int?"},
   proto = {id = "int", source = "string?", linedefined = "int?", lastlinedefined = "int?",
            kgc = "table?", knum = "table?", uvnames = "table?"},
   trace_start = {trace = "int", parent = "int?", exit = "int?", proto = "int?", line = "int?",
                  app = "string?", stack = "list:string?"},
   trace_stop = {trace = "int", parent = "int?", exit = "int?", lines = "string",
                 linktype = "string", link = "int", nexit = "int", nins = "int", nk = "int",
                 ir = "string", constants = "string", kvalues = "table?", snapshots = "string",
                 bytecode = "string?", cfuncs = "list:string?", bclines = "string?",
                 mcode = "table?", irbc = "string?", irmc = "string?", snapbc = "string?"},
   trace_abort = {trace = "int", parent = "int?", exit = "int?", reason = "string",
                  code = "int?", proto = "int?", line = "int?", cfunc = "string?",
                  start_proto = "int?", start_line = "int?", start_op = "int?",
                  blacklisted = "boolean?", bytecode = "string?",
                  cfuncs = "list:string?", bclines = "string?"},
   mcode = {bytes = "string", address = "int", loop = "int", exitstubs = "string"},
   source = {source = "string", text = "string", size = "int?"},
}

local function is_int (v)
   return type(v) == "number" and v == math.floor(v) and v > -2^53 and v < 2^53
end

local function is_kind (v, kind)
   if kind == "int" then return is_int(v) end
   local of = kind:match("^list:(.*)")
   if not of then return type(v) == kind end
   if type(v) ~= "table" then return false end
   for k, x in pairs(v) do
      if not is_int(k) or k < 1 or k > #v or not is_kind(x, of) then return false end
   end
   return true
end

local function check_fields (rec, fields, what)
   for name, kind in pairs(fields) do
      local v, optional = rec[name], kind:sub(-1) == "?"
      if not (v == nil and optional or is_kind(v, optional and kind:sub(1, -2) or kind)) then
         error(("%s: %s is not %s"):format(what, name, kind:gsub("%?$", "")), 0)
      end
   end
end

-- Applies one record to the decoded log d; pending holds traces started but not yet stopped.
local function apply (d, pending, rec)
   local fields = FIELDS[rec.event]
   if fields then check_fields(rec, fields, rec.event) end
   if rec.event == "trace_stop" and rec.mcode then check_fields(rec.mcode, FIELDS.mcode, "mcode") end
   local function at (proto, line)
      local p = proto and d.protos[proto]
      return {source = proto and (p and p.source or "?"), line = line}
   end
   local e = rec.event
   if e == "open" then
      d.open = {pid = rec.pid, time = rec.time, jit_version = rec.jit_version, arch = rec.arch,
                ircall = rec.ircall}
   elseif e == "proto" then
      d.protos[rec.id] = {source = chunk(rec.source), linedefined = rec.linedefined,
                          lastlinedefined = rec.lastlinedefined, kgc = rec.kgc or {},
                          knum = rec.knum or {}, uvnames = rec.uvnames or {}}
   elseif e == "source" then
      d.sources[chunk(rec.source)] = {text = rec.text, size = rec.size or #rec.text}
   elseif e == "trace_start" then
      local stack = {}
      for i, source in ipairs(rec.stack or {}) do stack[i] = chunk(source) end
      pending[rec.trace] = {number = rec.trace, parent = rec.parent, exit = rec.exit, app = rec.app,
                            stack = stack, start = at(rec.proto, rec.line),
                            generation = d.flushes}
   elseif e == "trace_stop" then
      local t = pending[rec.trace] or {number = rec.trace, parent = rec.parent, exit = rec.exit,
                                       start = {}, generation = d.flushes}
      pending[rec.trace] = nil
      t.lines = {}
      local lines = numbers(rec.lines, "lines", 2)
      for i = 1, #lines / 2 do t.lines[i] = at(lines[2 * i - 1], lines[2 * i]) end
      t.span = span(t.lines)
      t.linktype, t.link, t.nexit = rec.linktype, rec.link, rec.nexit
      t.nins, t.nk = rec.nins, rec.nk
      t.ir = {}
      local ir = numbers(rec.ir, "ir", 5)
      if #ir ~= 5 * rec.nins then error(("ir: %d rows for nins %d"):format(#ir / 5, rec.nins), 0) end
      for ref = 1, #ir / 5 do
         local i = (ref - 1) * 5
         t.ir[ref] = {ir[i + 1], ir[i + 2], ir[i + 3], ir[i + 4], ir[i + 5]}
      end
      t.constants = constants(rec.constants, rec.kvalues)
      t.snapshots = snapshots(rec.snapshots)
      t.bytecode = bytecode(rec.bytecode, rec.cfuncs, rec.bclines)
      local mc = rec.mcode
      if mc then
         t.mcode = {address = mc.address, size = #mc.bytes, loop = mc.loop, bytes = mc.bytes,
                    exitstubs = numbers(mc.exitstubs, "exitstubs", 1, 8)}
      end
      cross_references(t, rec)
      d.seq = d.seq + 1
      t.seq = d.seq
      d.traces[#d.traces + 1] = t
   elseif e == "trace_abort" then
      local pos = at(rec.proto, rec.line)
      local started = pending[rec.trace] or {}
      pending[rec.trace] = nil
      d.seq = d.seq + 1
      d.aborts[#d.aborts + 1] = {trace = rec.trace, parent = rec.parent, exit = rec.exit,
                                 reason = rec.reason, code = rec.code, source = pos.source,
                                 line = pos.line, cfunc = rec.cfunc, app = started.app,
                                 stack = started.stack,
                                 start = at(rec.start_proto, rec.start_line),
                                 start_proto = rec.start_proto,
                                 start_bc = rec.start_op and bcname(rec.start_op),
                                 blacklisted = rec.blacklisted or false,
                                 bytecode = bytecode(rec.bytecode, rec.cfuncs, rec.bclines),
                                 generation = d.flushes,
                                 seq = d.seq}
   elseif e == "trace_flush" then
      d.flushes = d.flushes + 1
   elseif e == "limit" then
      d.limit_reached = true
   end -- other events are from a later version 3 writer: skipped
end

-- Reads a whole auditlog. Errors (not an auditlog, other version, corrupt record) are one message
-- naming the file; a last record cut short (the process died writing it) sets truncated.
function M.decode (path)
   local f, err = io.open(path, "rb")
   if not f then error(err, 0) end
   local data, read_err = f:read("*a")
   f:close()
   if not data then error(("%s: %s"):format(path, read_err), 0) end -- a directory
   return M.decode_string(data, path)
end

-- The same for a log's bytes, data; path names it in errors (programs/auditlog/auditlog_fuzz.lua feeds it
-- arbitrary bytes).
function M.decode_string (data, path)
   if data:sub(1, #auditlog.magic) ~= auditlog.magic then
      error(("%s: not a snabb JIT auditlog (no %s header)"):format(path, auditlog.magic), 0)
   elseif #data < 16 then
      error(("%s: auditlog header cut short"):format(path), 0)
   end
   local d = {version = u32le(data, 9), open = {}, protos = {}, sources = {}, traces = {}, aborts = {},
              flushes = 0, limit_reached = false, truncated = false, seq = 0}
   if d.version ~= auditlog.version then
      error(("%s: auditlog format version %d, this snabb reads version %d"):format(
         path, d.version, auditlog.version), 0)
   end
   local pending, pos = {}, 17
   while pos <= #data do
      local len = pos + 3 <= #data and u32le(data, pos)
      if not len or pos + 3 + len > #data then
         d.truncated = true
         break
      end
      local ok, msg = pcall(function ()
         local rec = mp.unpack(data:sub(pos + 4, pos + 3 + len))
         assert(type(rec) == "table" and type(rec.event) == "string", "not an event")
         apply(d, pending, rec)
      end)
      if not ok then
         error(("%s: corrupt record at byte offset %d (%s)"):format(path, pos - 1, msg), 0)
      end
      pos = pos + 4 + len
   end
   return d
end

-- Machine code as text (snabb_disasm, Capstone), "->LOOP:" before the loop. A jump or call to a
-- known address is followed, as in jit.dump, by "\t->" and its name: an exit number (its stub in
-- mcode.exitstubs), LOOP, or the C function of an IR call (ircall: addresses from the open record).
function M.disassemble (mcode, ircall)
   local size = #mcode.bytes * 48 + 256
   for _ = 1, 2 do
      local buf = ffi.new("char[?]", size)
      local n = ffi.C.snabb_disasm(mcode.bytes, #mcode.bytes, mcode.address, buf, size)
      if n < 0 then error("cannot start the Capstone disassembler", 0) end
      if n < size then
         local text = ffi.string(buf, n)
         local symbols = {}
         for i, address in ipairs(ircall or {}) do
            if address ~= 0 then symbols[address] = vmdef.ircall[i - 1] end
         end
         for i, address in ipairs(mcode.exitstubs or {}) do symbols[address] = tostring(i - 1) end
         if mcode.loop ~= 0 then symbols[mcode.address + mcode.loop] = "LOOP" end
         text = text:gsub("( 0x(%x+))\n", function (operand, hex)
            local name = symbols[tonumber(hex, 16)]
            return name and ("%s\t->%s\n"):format(operand, name)
         end)
         if mcode.loop ~= 0 then
            local at = ("\n%012x "):format(mcode.address + mcode.loop)
            text = text:gsub(at, "\n->LOOP:" .. at, 1)
         end
         return text
      end
      size = n + 1
   end
end

-- The non-empty machine code ranges of a trace, sorted: {starts, ends, ins}, made once per trace.
local ranges_of = setmetatable({}, {__mode = "k"})
local function ranges (t)
   local r = ranges_of[t]
   if r then return r end
   local list, mc = {}, t.ir_mcode or {}
   for ins = 1, #mc / 2 do
      if mc[2 * ins] > mc[2 * ins - 1] then list[#list + 1] = ins end
   end
   table.sort(list, function (a, b) return mc[2 * a - 1] < mc[2 * b - 1] end)
   r = {starts = {}, ends = {}, ins = list}
   for i, ins in ipairs(list) do r.starts[i], r.ends[i] = mc[2 * ins - 1], mc[2 * ins] end
   ranges_of[t] = r
   return r
end

function M.ins_of_offset (t, offset)
   local r = ranges(t)
   local lo, hi = 1, #r.starts -- the last range starting at or before offset: binary search
   while lo <= hi do
      local mid = math.floor((lo + hi) / 2)
      if r.starts[mid] <= offset then lo = mid + 1 else hi = mid - 1 end
   end
   if hi >= 1 and offset < r.ends[hi] then return r.ins[hi] end
   return nil
end

function M.ins_of_address (t, address)
   return t.mcode and M.ins_of_offset(t, address - t.mcode.address) or nil
end

function M.ins_bytecode (t, ins)
   local k = t.ir_bytecode and t.ir_bytecode[ins]
   if k and k > 0 then return k, t.bytecode[k] end
   return nil
end

function M.snap_bytecode (t, snapno)
   local k = t.snap_bytecode and t.snap_bytecode[snapno + 1]
   if k and k > 0 then return k, t.bytecode[k] end
   return nil
end

-- The source position of t.bytecode[k]: its own, or for a C function's record (no line: FUNCC of
-- bit.band, ffi.meta.__index, ...) that of the Lua bytecode that called it, the nearest record
-- before it of a lower depth. Measured on examples/forward.lua: 26 of the 27 samples in the loop
-- of fwd's trace were in code recorded for such C functions, which LuaJIT inlines.
function M.bytecode_line (d, t, k)
   local b = t.bytecode and t.bytecode[k]
   if b and not b.line then
      local depth = b.depth or 0
      for j = k - 1, 1, -1 do
         local c = t.bytecode[j]
         if (c.depth or 0) < depth and c.line then b = c break end
      end
   end
   if not (b and b.proto and b.line) then return nil end
   local p = d.protos[b.proto]
   return p and p.source or "?", b.line
end

function M.ins_line (d, t, ins)
   local k = M.ins_bytecode(t, ins)
   if not k then return nil end
   return M.bytecode_line(d, t, k)
end

local CHECKED = {}
for op in ("LT GE LE GT ULT UGE ULE UGT EQ NE ABC RETF HREFK ADDOV SUBOV MULOV CONV SLOAD ALOAD "
           .. "HLOAD ULOAD VLOAD XLOAD FLOAD"):gmatch("%S+") do CHECKED[op] = true end

-- Checks trace t's cross-references against its machine code and bytecode, independently of
-- how they were made: the ranges lie within the machine code and do not overlap, and
-- ins_of_offset finds each; every guard but LOOP holds the jump to its own exit (the snapshot in
-- effect: the last at or before it) as Capstone decodes it; every bytecode index is in the
-- trace's bytecode, at a line of that bytecode's prototype. Returns the number of guards checked
-- (0 for a trace without maps). Used by the selftest and tests/inspect_xref_test.
function M.check_cross_references (d, t)
   if not (t.ir_mcode and t.mcode) then return 0 end
   local mc, last, guards = t.ir_mcode, nil, 0
   local r = ranges(t)
   for i, ins in ipairs(r.ins) do
      local s, e = mc[2 * ins - 1], mc[2 * ins]
      assert(s >= 0 and e <= t.mcode.size, ("trace %d: %04d outside"):format(t.number, ins))
      if last and s < mc[2 * last] then
         error(("trace %d: %04d overlaps %04d"):format(t.number, ins, last))
      end
      assert(M.ins_of_offset(t, s) == ins and M.ins_of_offset(t, e - 1) == ins
             and M.ins_of_address(t, t.mcode.address + s) == ins, "ins_of_offset")
      last = r.ins[i]
   end
   assert(M.ins_of_offset(t, -1) == nil and M.ins_of_offset(t, t.mcode.size) == nil)
   local jumps = {}
   for line in M.disassemble(t.mcode):gmatch("[^\n]+") do
      local address, exit = line:match("^(%x+)%s.*\t%->(%d+)$")
      if address then jumps[#jumps + 1] = {tonumber(address, 16) - t.mcode.address, tonumber(exit)} end
   end
   -- Each exit jump is in a guard of its snapshot or in code of no instruction (the head's and
   -- the loop's stack and GC checks).
   local snap, snap_of = -1, {}
   for ins = 1, t.nins do
      while t.snapshots[snap + 2] and t.snapshots[snap + 2].ref <= ins do snap = snap + 1 end
      snap_of[ins] = snap
   end
   for _, j in ipairs(jumps) do
      local ins = M.ins_of_offset(t, j[1])
      if ins and (bit.band(t.ir[ins][2], 0x80) == 0 or snap_of[ins] ~= j[2]) then
         error(("trace %d: the jump to exit %d at +%d is in %04d"):format(t.number, j[2], j[1], ins))
      end
   end
   -- Each guard that is a check (a comparison, a bounds or key check, a type-checked load, a
   -- checked conversion or overflow: CHECKED; others carry the flag only to stay, such as LOOP,
   -- CNEWI, UREFC of a constant closure) and has code holds its exit's jump. (Without code: a
   -- check the assembler found it need not make, as a SUBOV whose result a SUB recomputes, or a
   -- side trace's check of its parent's values, made with the head.)
   for ins, row in ipairs(t.ir) do
      local op = vmdef.irnames:sub(6 * bit.rshift(row[2], 8) + 1, 6 * bit.rshift(row[2], 8) + 6)
      if bit.band(row[2], 0x80) ~= 0 and CHECKED[op:match("%S+")] and snap_of[ins] >= 0
         and mc[2 * ins - 1] < mc[2 * ins] then
         local found = false
         for _, j in ipairs(jumps) do
            if j[2] == snap_of[ins] and j[1] >= mc[2 * ins - 1] and j[1] < mc[2 * ins] then
               found = true
            end
         end
         if not found then
            error(("trace %d: guard %04d holds no jump to exit %d"):format(t.number, ins, snap_of[ins]))
         end
         guards = guards + 1
      end
      local k, b = M.ins_bytecode(t, ins)
      if b and b.proto then
         local p = d.protos[b.proto]
         local source, line = M.ins_line(d, t, ins)
         if not (k <= #t.bytecode and source == p.source and line and line >= p.linedefined
                 and line <= math.max(p.lastlinedefined, p.linedefined)) then
            error(("trace %d: %04d at %s:%s, not in its prototype %s:%d-%d"):format(
               t.number, ins, source, line, p.source, p.linedefined, p.lastlinedefined))
         end
      end
   end
   return guards
end

-- Decoding a log of the writer's workload: whole, with its last record cut short, and logs that
-- are not auditlogs, of another version or corrupt (one line naming the file). What the traces
-- hold is checked by observe.auditlog's selftest, the listing by programs.auditlog.auditlog's.
function M.selftest ()
   print("selftest: observe.auditlog_reader")
   local path, bad = os.tmpname(), os.tmpname()
   local function write_file (name, bytes)
      local f = assert(io.open(name, "wb"))
      f:write(bytes)
      f:close()
   end
   local function decode_error (bytes)
      write_file(bad, bytes)
      local ok, err = pcall(M.decode, bad)
      assert(not ok and err:sub(1, #bad + 2) == bad .. ": " and not err:find("\n"), err)
      return err
   end
   jit.flush()
   auditlog.open(path)
   assert(loadstring(auditlog.selftest_workload, "@workload.lua"))()
   auditlog.close()
   local f = assert(io.open(path, "rb"))
   local log = f:read("*a")
   f:close()
   local d = M.decode(path)
   assert(#d.traces > 0 and #d.aborts > 0 and not d.truncated, "decode")
   -- A last record cut short keeps the records before it.
   write_file(bad, log .. auditlog.u32le(100) .. "\x8f")
   local cut = M.decode(bad)
   assert(cut.truncated and #cut.aborts == #d.aborts and #cut.traces == #d.traces, "truncated")
   write_file(bad, log:sub(1, -8))
   cut = M.decode(bad)
   assert(cut.truncated and #cut.aborts + #cut.traces < #d.aborts + #d.traces, "truncated")
   -- Not an auditlog, another version, a corrupt record: one line naming the file.
   assert(decode_error("\xd4\xc3\xb2\xa1\x02\x00\x04\x00" .. ("\0"):rep(60))
          :match("not a snabb JIT auditlog"))
   local next_version = auditlog.version + 1
   assert(decode_error(auditlog.magic .. auditlog.u32le(next_version) .. auditlog.u32le(0))
          :match("version " .. next_version))
   assert(decode_error(log:sub(1, 20) .. "\xc1" .. log:sub(22))
          :match("corrupt record at byte offset 16"))
   -- A chunk loaded from a file: its text goes in the log once (a source event), with its size;
   -- other chunks (workload.lua above has no file) have none.
   local src = os.tmpname()
   local text = "local x = 0\nfor i = 1, 300 do x = x + i % 7 end\nreturn x\n"
   write_file(src, text)
   auditlog.open(path)
   dofile(src)
   dofile(src)
   auditlog.close()
   local with_source = M.decode(path)
   assert(with_source.sources[src] and with_source.sources[src].text == text
          and with_source.sources[src].size == #text, "source event")
   local n = 0
   for _ in pairs(with_source.sources) do n = n + 1 end
   assert(n == 1 and not with_source.sources["workload.lua"], n)
   -- A cut text keeps the file's size.
   auditlog.max_source_bytes = 10
   -- (A source event comes with a trace of the file. The JIT does not always trace the loop's
   -- third run, each a new prototype: 1 run of this selftest in 20 had no trace in this log. So
   -- the file runs, in a new log each time, until one has a trace of it, at most 10 times.)
   for _ = 1, 10 do
      auditlog.open(path)
      dofile(src)
      auditlog.close()
      if M.decode(path).sources[src] then break end
   end
   auditlog.max_source_bytes = 256 * 1024
   local cut_source = M.decode(path).sources[src]
   assert(cut_source.text == text:sub(1, 10) and cut_source.size == #text, "cut source")
   os.remove(src)
   -- The cross-references, checked against the machine code (Capstone's) and the bytecode.
   local checked = 0
   for _, t in ipairs(d.traces) do
      if t.start.source == "workload.lua" then
         checked = checked + M.check_cross_references(d, t)
      end
   end
   assert(checked > 0, "no guard checked")
   -- A trace_stop whose maps are cut short or point outside the trace: a corrupt record.
   local function with_stop (change)
      local pos = 17
      while pos <= #log do
         local len = u32le(log, pos)
         local rec = mp.unpack(log:sub(pos + 4, pos + 3 + len))
         if rec.event == "trace_stop" and rec.irbc then
            change(rec)
            local body = mp.pack(rec)
            return log:sub(1, pos - 1) .. auditlog.u32le(#body) .. body .. log:sub(pos + 4 + len)
         end
         pos = pos + 4 + len
      end
      error("no trace_stop with maps")
   end
   assert(decode_error(with_stop(function (rec) rec.irmc = rec.irmc:sub(9) end))
          :match("corrupt record at byte offset %d+ %(irmc: %d+ ranges for nins %d+%)"))
   assert(decode_error(with_stop(function (rec) rec.irmc = ("\255"):rep(#rec.irmc) end))
          :match("irmc: instruction 1 at %-1%-%-1"))
   assert(decode_error(with_stop(function (rec) rec.irbc = auditlog.u32le(1e6) .. rec.irbc:sub(5) end))
          :match("irbc: bytecode 1000000 of entry 1, the trace recorded %d+"))
   assert(decode_error(with_stop(function (rec) rec.snapbc = rec.snapbc .. "\0\0\0\0" end))
          :match("snapbc: %d+ entries for %d+"))
   -- trace_abort's blacklisting fields: as written, decoded (start_op named); of another type, an
   -- error naming the field.
   local function abort_log (fields)
      local rec = {event = "trace_abort", trace = 1, reason = "NYI: bytecode 51"}
      for k, v in pairs(fields) do rec[k] = v end
      local packed = mp.pack(rec)
      return auditlog.magic .. auditlog.u32le(auditlog.version) .. auditlog.u32le(0)
             .. auditlog.u32le(#packed) .. packed
   end
   local forl = (vmdef.bcnames:find("FORL ") - 1) / 6
   write_file(bad, abort_log{blacklisted = true, start_op = forl})
   local a = M.decode(bad).aborts[1]
   assert(a.blacklisted == true and a.start_bc == "FORL", "blacklisted abort")
   write_file(bad, abort_log{start_op = 9999})
   a = M.decode(bad).aborts[1]
   assert(a.blacklisted == false and a.start_bc == "?", "an opcode out of range")
   assert(decode_error(abort_log{blacklisted = "yes"}):match("blacklisted is not boolean"))
   assert(decode_error(abort_log{start_op = 1.5}):match("start_op is not int"))
   os.remove(path)
   os.remove(bad)
   print("selftest: observe.auditlog_reader ok")
end

return M
