-- snabb auditlog FILE [--json]: decodes a JIT auditlog (jit/AUDITLOG.md) into traces with their IR,
-- machine code and source span, aborts with their reasons, and flushes. M.decode is the reader
-- other tools build on; the text output lists IR as jit.dump does and disassembles with Capstone.
local ffi = require("ffi")
local argparse = require("argparse")
local cli = require("programs.cli")
local auditlog = require("jit.auditlog")
local vmdef = require("jit.vmdef")
local mp = require("MessagePack")
require("jit.disasm_cdefs")
local band, rshift = bit.band, bit.rshift

local M = {}

local function u32le (s, i)
   local a, b, c, d = s:byte(i, i + 3)
   return a + b * 0x100 + c * 0x10000 + d * 0x1000000
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

-- Applies one record to the decoded log d; pending holds traces started but not yet stopped.
local function apply (d, pending, rec)
   local function at (proto, line)
      local p = proto and d.protos[proto]
      return {source = proto and (p and p.source or "?"), line = line}
   end
   local e = rec.event
   if e == "open" then
      d.open = {pid = rec.pid, time = rec.time, jit_version = rec.jit_version, arch = rec.arch}
   elseif e == "proto" then
      d.protos[rec.id] = {source = chunk(rec.source), linedefined = rec.linedefined,
                          lastlinedefined = rec.lastlinedefined}
   elseif e == "trace_start" then
      pending[rec.trace] = {number = rec.trace, parent = rec.parent, exit = rec.exit,
                            start = at(rec.proto, rec.line), generation = d.flushes}
   elseif e == "trace_stop" then
      local t = pending[rec.trace] or {number = rec.trace, parent = rec.parent, exit = rec.exit,
                                       start = {}, generation = d.flushes}
      pending[rec.trace] = nil
      t.lines = {}
      for i, l in ipairs(rec.lines) do t.lines[i] = at(l[1], l[2]) end
      t.span = span(t.lines)
      t.linktype, t.link, t.nexit = rec.linktype, rec.link, rec.nexit
      t.nins, t.nk = rec.nins, rec.nk
      t.ir, t.constants, t.snapshots = rec.ir, rec.constants, rec.snapshots
      local mc = rec.mcode
      if mc then
         t.mcode = {address = mc.address, size = #mc.bytes, loop = mc.loop, bytes = mc.bytes}
      end
      d.traces[#d.traces + 1] = t
   elseif e == "trace_abort" then
      local pos = at(rec.proto, rec.line)
      pending[rec.trace] = nil
      d.aborts[#d.aborts + 1] = {trace = rec.trace, parent = rec.parent, exit = rec.exit,
                                 reason = rec.reason, code = rec.code, source = pos.source,
                                 line = pos.line, cfunc = rec.cfunc,
                                 start = at(rec.start_proto, rec.start_line),
                                 generation = d.flushes}
   elseif e == "trace_flush" then
      d.flushes = d.flushes + 1
   elseif e == "limit" then
      d.limit_reached = true
   end -- other events are from a later version 1 writer: skipped
end

-- Reads a whole auditlog. Errors (not an auditlog, other version, corrupt record) are one message
-- naming the file; a last record cut short (the process died writing it) sets truncated.
function M.decode (path)
   local f, err = io.open(path, "rb")
   if not f then error(err, 0) end
   local data, read_err = f:read("*a")
   f:close()
   if not data then error(("%s: %s"):format(path, read_err), 0) end -- a directory
   if data:sub(1, #auditlog.magic) ~= auditlog.magic then
      error(("%s: not a snabb JIT auditlog (no %s header)"):format(path, auditlog.magic), 0)
   elseif #data < 16 then
      error(("%s: auditlog header cut short"):format(path), 0)
   end
   local d = {version = u32le(data, 9), open = {}, protos = {}, traces = {}, aborts = {},
              flushes = 0, limit_reached = false, truncated = false}
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

-- IR listing in the style of jit.dump.

local IRTYPE = {[0] = "nil", "fal", "tru", "lud", "str", "p32", "thr", "pro", "fun", "p64", "cdt",
                "tab", "udt", "flt", "num", "i8 ", "u8 ", "i16", "u16", "int", "u32", "i64", "u64",
                "sfp", "xmm", "ymm"} -- 16 and 32 bytes, moved by copies (third_party/luajit)

local function irop (ot)
   local i = 6 * rshift(ot, 8)
   return vmdef.irnames:sub(i + 1, i + 6)
end

local function flags (mode, letters)
   local s = ""
   for i = 1, #letters do
      if band(mode, 2^(i - 1)) ~= 0 then s = s .. letters:sub(i, i) end
   end
   return s
end

-- Names of literal operands, by opcode.
local LITERAL = {
   ["SLOAD "] = function (mode) return flags(mode, "PFTCRIK") end,
   ["XLOAD "] = function (mode) return flags(mode, "RVU") end,
   ["CONV  "] = function (mode)
      local s = IRTYPE[band(rshift(mode, 5), 31)] .. "." .. IRTYPE[band(mode, 31)]
      if band(mode, 0x800) ~= 0 then s = s .. " sext" end
      return s .. ({"", " none", " index", " check"})[rshift(mode, 12) + 1]
   end,
   ["FLOAD "] = function (n) return vmdef.irfield[n] end,
   ["FREF  "] = function (n) return vmdef.irfield[n] end,
   ["FPMATH"] = function (n) return vmdef.irfpm[n] end,
   ["TMPREF"] = function (n)
      return ({[0] = "", "IN", "OUT", "INOUT", "", "", "OUT2", "INOUT2"})[n]
   end,
   ["BUFHDR"] = function (n) return ({[0] = "RESET", "APPEND", "WRITE"})[n] end,
   ["TOSTR "] = function (n) return ({[0] = "INT", "NUM", "CHAR"})[n] end,
}

local function escape (c)
   local named = {["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t"}
   return named[c] or ("\\%03d"):format(c:byte())
end

-- A constant as jit.dump shows it; sn is the snapshot entry that refers to it, if any.
local function fmtk (c, sn)
   if not c then return "?   " end
   local t, v, s = c.t, c.value
   if c.kind == "number" then
      if t < 12 then
         s = v == 0 and "NULL" or ("[0x%08x]"):format(v)
      elseif band(sn or 0, 0x30000) ~= 0 then
         s = band(sn, 0x20000) ~= 0 and "contpc" or "ftsz"
      elseif v == 2^52 + 2^51 then
         s = "bias"
      else
         s = ((0 < v and v < 0x1p-1026) and "%+a" or "%+.14g"):format(v)
      end
   elseif c.kind == "string" then
      s = (#v > 20 and '"%.20s"~' or '"%s"'):format(v:gsub("%c", escape))
   elseif c.kind == "table" then
      s = "{" .. v .. "}"
   elseif c.kind == "userdata" then
      s = t == 12 and "userdata:" .. v or v == "NULL" and v or "[" .. v .. "]"
   elseif c.kind == "cdata" and t == 21 then
      s = v:match("^-") and v or "+" .. v
   elseif sn == 0x1057fff then -- the frame link slot of a two-slot frame (LJ_FR2)
      return "----"
   else
      s = tostring(v)
   end
   s = ("%-4s"):format(s)
   return c.slot and ("%s @%d"):format(s, c.slot) or s
end

local function fmtsnap (snap, k)
   local out, n = {}, 1
   for slot = 0, snap.nslots - 1 do
      local sn = snap.map[n]
      if sn and rshift(sn, 24) == slot then
         n = n + 1
         local ref = band(sn, 0xffff) - 0x8000
         if ref < 0 then
            out[#out + 1] = fmtk(k[ref], sn)
         elseif band(sn, 0x80000) ~= 0 then -- a number in two soft-float slots
            out[#out + 1] = ("%04d/%04d"):format(ref, ref + 1)
         else
            out[#out + 1] = ("%04d"):format(ref)
         end
         out[#out + 1] = band(sn, 0x10000) == 0 and " " or "|" -- frame
      else
         out[#out + 1] = "---- "
      end
   end
   return "[ " .. table.concat(out) .. "]"
end

-- The IR of trace t as lines, snapshots between them.
function M.ir_lines (t)
   local k, ir, out = {}, t.ir, {}
   for _, c in ipairs(t.constants) do k[c.ref] = c end
   local function ref (r) return r < 0 and fmtk(k[r]) or ("%04d"):format(r) end
   local function callargs (r)
      if r < 0 then return fmtk(k[r]) end
      local _, ot, op1, op2 = unpack(ir[r])
      if irop(ot) ~= "CARG  " then return ("%04d"):format(r) end
      return callargs(op1) .. " " .. ref(op2)
   end
   local snapno = 0
   local function snapshot ()
      local s = t.snapshots[snapno + 1]
      out[#out + 1] = ("....        SNAP   #%-3d %s"):format(snapno, fmtsnap(s, k))
      snapno = snapno + 1
   end
   for ins = 1, t.nins do
      while t.snapshots[snapno + 1] and t.snapshots[snapno + 1].ref <= ins do snapshot() end
      local m, ot, op1, op2, ridsp = unpack(ir[ins])
      local op = irop(ot)
      if op == "LOOP  " then
         out[#out + 1] = ("%04d ------ LOOP ------------"):format(ins)
      elseif op ~= "NOP   " and op ~= "CARG  " and op ~= "RENAME" then
         local rid = band(ridsp, 255)
         local s = ("%04d %s%s %s %s "):format(ins,
            (rid == 253 or rid == 254) and "}" or band(ot, 128) == 0 and " " or ">",
            band(ot, 64) == 0 and " " or "+", IRTYPE[band(ot, 31)], op)
         local m1, m2 = band(m, 3), band(m, 12)
         if op:sub(1, 4) == "CALL" then
            local ctype
            if m2 == 4 then
               s = s .. ("%-10s  ("):format(vmdef.ircall[op2])
            else
               local f = op2
               if f > 0 and band(ir[f][2], 31) == 0 then f, ctype = ir[f][3], fmtk(k[ir[f][4]]) end
               s = s .. (f < 0 and ("[0x%x]("):format(tonumber(k[f].value)) or ("%04d ("):format(f))
            end
            if op1 ~= -1 then s = s .. callargs(op1) end
            s = s .. ")" .. (ctype and " ctype " .. ctype or "")
         elseif op == "CNEW  " and op2 == -1 then
            s = s .. fmtk(k[op1])
         elseif m1 ~= 3 then
            s = s .. (op1 < 0 and fmtk(k[op1]) or (m1 == 0 and "%04d" or "#%-3d"):format(op1))
            if m2 == 4 then
               local name = LITERAL[op] and LITERAL[op](op2)
               if name then
                  s = s .. "  " .. name
               else
                  local upvalue = op == "UREFO " or op == "UREFC "
                  s = s .. ("  #%-3d"):format(upvalue and rshift(op2, 8) or op2)
               end
            elseif m2 ~= 12 then
               s = s .. "  " .. ref(op2)
            end
         end
         out[#out + 1] = s
      end
   end
   while t.snapshots[snapno + 1] do snapshot() end
   return out
end

-- Machine code as text (snabb_disasm, Capstone), "->LOOP:" before the loop.
function M.disassemble (mcode)
   local size = #mcode.bytes * 48 + 256
   for _ = 1, 2 do
      local buf = ffi.new("char[?]", size)
      local n = ffi.C.snabb_disasm(mcode.bytes, #mcode.bytes, mcode.address, buf, size)
      if n < 0 then error("cannot start the Capstone disassembler", 0) end
      if n < size then
         local text = ffi.string(buf, n)
         if mcode.loop ~= 0 then
            local at = ("\n%012x "):format(mcode.address + mcode.loop)
            text = text:gsub(at, "\n->LOOP:" .. at, 1)
         end
         return text
      end
      size = n + 1
   end
end

local function place (source, line, cfunc)
   return source and ("%s:%s"):format(source, line) or cfunc or "?"
end

function M.print_text (d, path, out)
   local o = d.open
   out:write(("snabb auditlog %s: format %d, pid %s, %s (%s), opened %s\n"):format(
      path, d.version, o.pid or "?", o.jit_version or "?", o.arch or "?",
      o.time and os.date("!%Y-%m-%dT%H:%M:%SZ", o.time) or "?"))
   out:write(("%d traces, %d aborts, %d flushes%s%s\n"):format(#d.traces, #d.aborts, d.flushes,
      d.limit_reached and ", limit reached (logging stopped at its size cap)" or "",
      d.truncated and ", last record cut short" or ""))
   for _, t in ipairs(d.traces) do
      local from = t.parent and (" (side trace of %d, exit %s)"):format(
         t.parent, t.exit == -1 and "stitch" or t.exit) or ""
      local link = (t.link == t.number or t.link == 0) and t.linktype
                   or t.linktype == "root" and t.link or ("%d %s"):format(t.link, t.linktype)
      out:write(("\n---- TRACE %d%s start %s, lines %s -> %s%s\n"):format(t.number, from,
         place(t.start.source, t.start.line), t.span, link,
         t.generation > 0 and (" (after flush %d)"):format(t.generation) or ""))
      for _, line in ipairs(M.ir_lines(t)) do out:write(line, "\n") end
      if t.mcode then
         out:write(("---- TRACE %d mcode %d bytes at 0x%x\n"):format(t.number, t.mcode.size,
                                                                  t.mcode.address))
         out:write(M.disassemble(t.mcode))
      end
   end
   if #d.aborts > 0 then out:write("\n---- ABORTS\n") end
   for _, a in ipairs(d.aborts) do
      out:write(("%s: %s (trace %d started at %s)\n"):format(place(a.source, a.line, a.cfunc),
         a.reason, a.trace, place(a.start.source, a.start.line)))
   end
   out:write(("\n%d flushes\n"):format(d.flushes))
   if d.limit_reached then out:write("limit reached: the log stopped at its size cap\n") end
end

-- The decoded log as JSON, machine code in hex.
function M.json (d)
   local copy = {}
   for k, v in pairs(d) do copy[k] = v end
   copy.traces = {}
   for i, t in ipairs(d.traces) do
      local c = {}
      for k, v in pairs(t) do c[k] = v end
      if t.mcode then
         local hex = t.mcode.bytes:gsub(".", function (b) return ("%02x"):format(b:byte()) end)
         c.mcode = {address = t.mcode.address, size = t.mcode.size, loop = t.mcode.loop,
                    bytes = hex}
      end
      copy.traces[i] = c
   end
   return require("dkjson").encode(copy, {indent = true}) .. "\n"
end

function M.run (args)
   local p = argparse("snabb auditlog", "Decode a JIT auditlog (written by snabb -a FILE).")
      :add_help("-h --help")
   p:argument("file", "the auditlog")
   p:flag("--json", "print the decoded log as JSON")
   local opts = cli.parse(p, args)
   if not opts then return 2 end
   local ok, d = pcall(M.decode, opts.file)
   if not ok then
      io.stderr:write(("snabb auditlog: %s\n"):format(d))
      return 1
   end
   if opts.json then io.stdout:write(M.json(d)) else M.print_text(d, opts.file, io.stdout) end
   return 0
end

function M.selftest ()
   print("selftest: programs.auditlog.auditlog")
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
   -- Text: every trace with IR, snapshots and machine code; the aborts with file:line.
   local d = M.decode(path)
   local text = {}
   local out = {write = function (_, ...) for _, s in ipairs{...} do text[#text + 1] = s end end}
   M.print_text(d, path, out)
   text = table.concat(text)
   for _, want in ipairs{"\n%-%-%-%- TRACE 1 start workload.lua:9, lines workload.lua:9 %-> loop\n",
                         "\n0001 >  int SLOAD  #%d+ +CRI\n", "\n%.%.%.%.        SNAP   #0 ",
                         "\n%-%-%-%- TRACE %d+ %(side trace of %d+, exit %d+%)",
                         "\n%-%-%-%- TRACE 1 mcode %d+ bytes at 0x%x+\n%x+  %a+ ", "\n%->LOOP:\n",
                         "\nworkload.lua:12: NYI: bytecode %d+ %(trace %d+ started at workload.lua:12%)\n",
                         "\n1 flushes\n"} do
      assert(text:match(want), "text lacks " .. want .. ":\n" .. text)
   end
   -- JSON: the same table, machine code in hex.
   local j = require("dkjson").decode(M.json(d))
   assert(#j.traces == #d.traces and #j.aborts == #d.aborts, "JSON")
   for i, t in ipairs(j.traces) do
      assert(t.mcode.bytes:match("^%x+$") and #t.mcode.bytes == 2 * d.traces[i].mcode.size, "hex")
   end
   -- A last record cut short keeps the records before it.
   write_file(bad, log .. auditlog.u32le(100) .. "\x8f")
   local cut = M.decode(bad)
   assert(cut.truncated and #cut.aborts == #d.aborts and #cut.traces == #d.traces, "truncated")
   write_file(bad, log:sub(1, -8))
   cut = M.decode(bad)
   assert(cut.truncated and #cut.aborts + #cut.traces < #d.aborts + #d.traces, "truncated")
   -- Not an auditlog, another version, a corrupt record: one line naming the file.
   assert(decode_error("\xd4\xc3\xb2\xa1\x02\x00\x04\x00" .. ("\0"):rep(60)):match("not a snabb JIT auditlog"))
   assert(decode_error(auditlog.magic .. auditlog.u32le(2) .. auditlog.u32le(0)):match("version 2"))
   assert(decode_error(log:sub(1, 20) .. "\xc1" .. log:sub(22)):match("corrupt record at byte offset 16"))
   os.remove(path)
   os.remove(bad)
   print("selftest: programs.auditlog.auditlog ok")
end

return M
