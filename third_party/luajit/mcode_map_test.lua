-- Tests mcode-map.patch in the LuaJIT that snabb links: jit.util.tracemap(tr) gives, for each IR
-- instruction of a trace, the bytecode it was recorded for (its index in the order of the
-- "record" events) and the range of machine code its code occupies, and each snapshot's bytecode.
-- Checked against what LuaJIT says otherwise: the record events' positions (jit.util.funcinfo),
-- the machine code as Capstone disassembles it (observe.auditlog_reader) with its exit stubs
-- (jit.util.traceexitstub), and the IR and snapshots (jit.util.traceir, tracesnap). Then that the
-- maps go with their traces: compiling and flushing many leaves the heap as it was. Run as
-- `snabb mcode_map_test.lua`; fails on Debian's LuaJIT (no jit.util.tracemap).
local ffi = require("ffi")
local jutil = require("jit.util")
local vmdef = require("jit.vmdef")
local reader = require("observe.auditlog_reader")
local band, rshift = bit.band, bit.rshift

assert(jutil.tracemap, "jit.util.tracemap is missing: LuaJIT without mcode-map.patch")

local function int32s (s)
   local p, out = ffi.cast("const int32_t *", s), {}
   for i = 1, #s / 4 do out[i] = p[i - 1] end
   return out
end
local function opname (ot)
   local o = rshift(ot, 8)
   return (vmdef.irnames:sub(6 * o + 1, 6 * o + 6):gsub(" ", ""))
end

-- The workload, whose lines the checks below name.
local function work2 (t, n)
   local s = 0
   for i = 1, n do
      local x = t[i]
      if x > 50 then
         s = s + x * 3
      end
   end
   return s
end
local defined = debug.getinfo(work2, "S").linedefined
local LINE = {load = defined + 3, compare = defined + 4, add = defined + 5}

-- Each trace as it stops: its recorded bytecode positions, maps, IR, snapshots and machine code.
local traces, recorded = {}, {}
local function on_record (tr, func, pc) table.insert(recorded[tr], {func = func, pc = pc}) end
local function on_trace (what, tr)
   if what == "start" then
      recorded[tr] = {}
   elseif what == "stop" then
      local info = jutil.traceinfo(tr)
      local irbc, irmc, snapbc = jutil.tracemap(tr)
      local t = {number = tr, info = info, bc = recorded[tr], ir = {}, snaps = {}}
      assert(#irbc == 4 * info.nins and #irmc == 8 * info.nins,
             ("trace %d: maps of %d and %d bytes for %d instructions"):format(tr, #irbc, #irmc,
                                                                          info.nins))
      t.irbc, t.irmc, t.snapbc = int32s(irbc), int32s(irmc), int32s(snapbc)
      for ins = 1, info.nins do t.ir[ins] = {jutil.traceir(tr, ins)} end
      for sn = 0, info.nexit - 1 do t.snaps[sn] = jutil.tracesnap(tr, sn) end
      assert(#t.snapbc == info.nexit, "one bytecode index per snapshot")
      local bytes, address, loop = jutil.tracemc(tr)
      local exitstubs = {}
      for ex = 0, info.nexit - 1 do exitstubs[ex + 1] = tonumber(jutil.traceexitstub(ex)) end
      t.mcode = {bytes = bytes, address = tonumber(address), loop = loop, exitstubs = exitstubs}
      traces[#traces + 1] = t
   end
end
jit.attach(on_record, "record")
jit.attach(on_trace, "trace")
local data = {}
for i = 1, 200 do data[i] = i end
for _ = 1, 100 do work2(data, 200) end
jit.attach(on_record)
jit.attach(on_trace)

-- Every trace: the ranges lie within its machine code and do not overlap; every guard but LOOP
-- holds the jump to the exit of its snapshot (the last one at or before it); every bytecode index
-- is one of the trace's recorded bytecodes (or -1).
local CHECKED = {}
for op in ("LT GE LE GT ULT UGE ULE UGT EQ NE ABC RETF HREFK ADDOV SUBOV MULOV CONV SLOAD ALOAD "
           .. "HLOAD ULOAD VLOAD XLOAD FLOAD"):gmatch("%S+") do CHECKED[op] = true end
local checked_guards = 0
for _, t in ipairs(traces) do
   local size, nins = #t.mcode.bytes, t.info.nins
   local spans = {}
   for ins = 1, nins do
      local s, e = t.irmc[2 * ins - 1], t.irmc[2 * ins]
      assert(s >= 0 and s <= e and e <= size,
             ("trace %d: IR %04d at %d-%d, machine code of %d bytes"):format(t.number, ins, s, e, size))
      if e > s then spans[#spans + 1] = {s, e, ins} end
      local k = t.irbc[ins]
      assert(k >= -1 and k < #t.bc,
             ("trace %d: IR %04d bytecode %d of %d"):format(t.number, ins, k, #t.bc))
   end
   table.sort(spans, function (a, b) return a[1] < b[1] end)
   for i = 2, #spans do
      assert(spans[i][1] >= spans[i - 1][2], ("trace %d: IR %04d and %04d overlap"):format(
         t.number, spans[i - 1][3], spans[i][3]))
   end
   for sn = 0, #t.snapbc - 1 do
      assert(t.snapbc[sn + 1] >= -1 and t.snapbc[sn + 1] < #t.bc, "snapshot bytecode index")
   end
   -- The exit jumps, by machine code offset, as Capstone decodes them.
   local jumps = {}
   for line in reader.disassemble(t.mcode):gmatch("[^\n]+") do
      local address, exit = line:match("^(%x+)%s.*\t%->(%d+)$")
      if address then
         jumps[#jumps + 1] = {offset = tonumber(address, 16) - t.mcode.address, exit = tonumber(exit)}
      end
   end
   -- (Of the guards, those that are checks and have code: others carry the flag only to stay,
   -- such as LOOP, CNEWI, UREFC of a constant closure; a check without code is one the assembler
   -- found it need not make, or a side trace's check of its parent's values, made with its head.)
   local snap = 0
   for ins = 1, nins do
      while t.snaps[snap + 1] and t.snaps[snap + 1][0] <= ins do snap = snap + 1 end
      local ot, op = t.ir[ins][2], opname(t.ir[ins][2])
      local empty = t.irmc[2 * ins - 1] == t.irmc[2 * ins]
      if band(ot, 0x80) ~= 0 and CHECKED[op] and not empty and t.snaps[snap] then
         local s, e, found = t.irmc[2 * ins - 1], t.irmc[2 * ins], false
         for _, j in ipairs(jumps) do
            if j.exit == snap and j.offset >= s and j.offset < e then found = true end
         end
         assert(found, ("trace %d: guard %04d %s (%d-%d) holds no jump to exit %d"):format(
            t.number, ins, opname(ot), s, e, snap))
         checked_guards = checked_guards + 1
      end
   end
end

-- work2's loop: its array load, comparison and multiply-add are mapped to their source lines,
-- in the loop's copy (after LOOP) as before it; so is the comparison's snapshot.
local function line_of (t, k)
   local b = t.bc[k + 1]
   return b and b.pc >= 0 and jutil.funcinfo(b.func, b.pc).currentline
end
local loop_trace
for _, t in ipairs(traces) do
   if t.bc[1] and t.bc[1].func == work2 and t.info.linktype == "loop" then loop_trace = t end
end
assert(loop_trace, "no loop trace of work2")
local want = {ALOAD = LINE.load, MUL = LINE.add}
local seen, in_loop = {}, false
for ins = 1, loop_trace.info.nins do
   local op = opname(loop_trace.ir[ins][2])
   if op == "LOOP" then in_loop = true end
   local line = line_of(loop_trace, loop_trace.irbc[ins])
   if want[op] then
      assert(line == want[op], ("IR %04d %s at line %s, want %d"):format(ins, op, line, want[op]))
      seen[op .. (in_loop and " in the loop" or "")] = true
   end
   if (op == "LT" or op == "GE" or op == "LE" or op == "GT") and line == LINE.compare then
      seen.compare = true
      local snap = 0
      while loop_trace.snaps[snap + 1] and loop_trace.snaps[snap + 1][0] <= ins do snap = snap + 1 end
      local sline = line_of(loop_trace, loop_trace.snapbc[snap + 1])
      assert(sline == LINE.compare, ("the comparison's snapshot at line %s"):format(sline))
   end
end
for _, what in ipairs({"ALOAD", "ALOAD in the loop", "MUL", "MUL in the loop", "compare"}) do
   assert(seen[what], "work2's loop trace has no " .. what .. " at its line")
end
assert(loop_trace.irbc[1] == -1, "the trace's entry (its first SLOAD) has no bytecode")

-- The maps are allocated and freed with their traces: compiling and flushing 300 traces leaves
-- the heap within a few KiB of where it was (-1.9 KiB measured; with lj_trace_free counting no
-- maps, +59.8 KiB).
local function compile_and_flush ()
   for _ = 1, 30 do
      local f = loadstring("local s = 0 for i = 1, 300 do s = s + i * 2 end return s")
      f()
   end
   jit.flush()
   collectgarbage()
   collectgarbage()
end
compile_and_flush()
local before = collectgarbage("count")
for _ = 1, 10 do compile_and_flush() end
local grown = collectgarbage("count") - before
assert(math.abs(grown) < 8, ("the heap changed by %.1f KiB over 300 traces"):format(grown))
print(("mcode map: %d traces, %d guards hold their exit jumps; heap %+.1f KiB over 300 traces"):format(
   #traces, checked_guards, grown))
