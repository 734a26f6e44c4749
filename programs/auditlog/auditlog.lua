-- snabb auditlog FILE [--json] [filters]: decodes a JIT auditlog (observe/AUDITLOG.md) into traces
-- with their bytecode, IR, machine code and source span, aborts with their reasons, and flushes,
-- and lists them as jit.dump does (bytecode as jit.bc prints it, IR with snapshots, machine code
-- from Capstone with exit numbers), leaving out snabb's own tooling unless asked. The format is
-- read by observe.auditlog_reader, beside its writer; this is the command line and the listing.
local argparse = require("argparse")
local cli = require("programs.cli")
local auditlog = require("observe.auditlog")
local reader = require("observe.auditlog_reader")
local vmdef = require("jit.vmdef")
local band, rshift = bit.band, bit.rshift

local M = {}

-- For `snabb help` (programs/main.lua finds the command by its folder).
M.summary = "list a JIT auditlog as jit.dump does: snabb auditlog FILE [--json] [filters]"

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

-- Bytecode as jit.dump lists it while recording (jit/bc.lua's line format): one line per bytecode
-- recorded, " ." per frame of depth, the jump after a comparison, "; file:line" at a function's
-- start.

local BCM_UV, BCM_LITS, BCM_NUM, BCM_STR, BCM_FUNC, BCM_JUMP = 5, 7, 9, 10, 12, 13

-- One bytecode of prototype p (its constants) as jit.bc.line(func, pc, prefix), without newline.
local function bcline (p, pc, ins, m, prefix)
   local ma, mb, mc = band(m, 7), band(m, 15 * 8), rshift(band(m, 15 * 128), 7)
   local a = band(rshift(ins, 8), 0xff)
   local op = vmdef.bcnames:sub(6 * band(ins, 0xff) + 1, 6 * band(ins, 0xff) + 6)
   local s = ("%04d %s %-6s %3s "):format(pc, prefix, op, ma == 0 and "" or a)
   local d = rshift(ins, 16)
   if mc == BCM_JUMP then return ("%s=> %04d"):format(s, pc + d - 0x7fff) end
   if mb ~= 0 then
      d = band(d, 0xff)
   elseif mc == 0 then
      return s
   end
   local kc
   if mc == BCM_STR then
      kc = p and p.kgc[d + 1] or "?"
      kc = (#kc > 40 and '"%.40s"~' or '"%s"'):format((kc:gsub("%c", escape)))
   elseif mc == BCM_NUM then
      kc = p and p.knum[d + 1] or "?"
      if op == "TSETM " and type(kc) == "number" then kc = kc - 2^52 end
   elseif mc == BCM_FUNC then
      kc = p and p.kgc[d + 1] or "?"
   elseif mc == BCM_UV then
      kc = p and p.uvnames[d + 1] or "?"
   end
   if ma == BCM_UV then
      local ka = p and p.uvnames[a + 1] or "?"
      kc = kc and ka .. " ; " .. tostring(kc) or ka
   end
   if mb ~= 0 then
      local b = rshift(ins, 24)
      if kc then return ("%s%3d %3d  ; %s"):format(s, b, d, tostring(kc)) end
      return ("%s%3d %3d"):format(s, b, d)
   end
   if kc then return ("%s%3d      ; %s"):format(s, d, tostring(kc)) end
   if mc == BCM_LITS and d > 32767 then d = d - 65536 end
   return ("%s%3d"):format(s, d)
end

-- The bytecode recorded into a trace (t.bytecode of a trace or an abort) as lines.
function M.bc_lines (d, list)
   local out = {}
   for _, b in ipairs(list) do
      local prefix = (" ."):rep(b.depth or 0)
      local p = b.proto and d.protos[b.proto]
      local line = b.pc >= 0 and bcline(p, b.pc, b.ins, b.mode, prefix)
                   or "0000 " .. prefix .. " FUNCC      "
      if b.pc <= 0 then
         local name = b.cfunc or p and ("%s:%d"):format(p.source, p.linedefined) or "?"
         line = ("%s         ; %s"):format(line, name)
      end
      out[#out + 1] = line
      if b.jmp then out[#out + 1] = bcline(p, b.pc + 1, b.jmp, b.jmp_mode, prefix) end
   end
   return out
end

local function place (source, line, cfunc)
   return source and ("%s:%s"):format(source, line) or cfunc or "?"
end

-- Snabb's own tooling, whose traces are left out by default: code that snabb's commands
-- (programs/) and its VM host and observer (vm/, observe/) run around the user's graph. Who ran a
-- trace's code is the innermost frame on the stack when recording started (trace.stack) that is
-- not in runtime/ (the engine, links, packets) or external/ (the Lua libraries snabb bundles:
-- dkjson, MessagePack, argparse): a trace is tooling when that frame is in vm/, observe/ or programs/
-- (runtime/engine.lua's class_name called by observe/observe.lua for apps.json, engine.configure
-- called by bench, bench's own loops), unless it was recorded inside an app's pull or push. The
-- user's config, script and apps are that frame for their own code. Chunk names as embedded.
local function under (source, dirs)
   for _, dir in ipairs(dirs) do
      if source:sub(1, #dir) == dir then return true end
   end
   return false
end

local function is_tooling (root)
   if root.app then return false end
   local stack = root.stack and #root.stack > 0 and root.stack
                 or {root.start and root.start.source or "?"} -- a log without stacks
   for _, source in ipairs(stack) do
      if not under(source, {"runtime/", "external/"}) then
         return under(source, {"vm/", "observe/", "programs/"})
      end
   end
   return false
end

-- file F: a source named F, or ending in "/F".
local function same_file (source, f)
   return source == f or source:sub(-#f - 1) == "/" .. f
end

local function touches (d, item, f)
   local function at (source) return source and same_file(source, f) end
   if at(item.start.source) or at(item.source) then return true end
   for _, l in ipairs(item.lines or {}) do if at(l.source) then return true end end
   for _, b in ipairs(item.bytecode or {}) do
      local p = b.proto and d.protos[b.proto]
      if p and at(p.source) then return true end
   end
   return false
end

-- What opts (as parsed by run: all, trace, app, file, aborts) select of d: {traces, aborts,
-- tooling = {traces, aborts} left out as snabb's own, apps = names seen}. A side trace belongs to
-- the chain of its root trace (its parents, in the same flush generation): --trace N selects N's
-- chain, and one root of snabb's tooling leaves out its side traces.
function M.select (d, opts)
   opts = opts or {}
   local items = {}
   for _, t in ipairs(d.traces) do items[#items + 1] = t end
   for _, a in ipairs(d.aborts) do items[#items + 1] = a end
   table.sort(items, function (x, y) return x.seq < y.seq end)
   local sel = {traces = {}, aborts = {}, tooling = {traces = 0, aborts = 0}, apps = {}}
   local latest, seen_app = {}, {} -- [generation:number] = the trace of that number
   for _, item in ipairs(items) do
      local is_abort = item.reason ~= nil
      local chain, root = {}, item
      if not is_abort then chain[item.number] = true end
      local parent = item.parent and latest[item.generation .. ":" .. item.parent]
      -- (A corrupt log can make the parents a circle: auditlog_fuzz found one that looped for
      -- ever; a trace met twice ends the walk.)
      while parent and not chain[parent.number] do
         chain[parent.number], root = true, parent
         parent = parent.parent and latest[parent.generation .. ":" .. parent.parent]
      end
      if not is_abort then latest[item.generation .. ":" .. item.number] = item end
      if item.app and not seen_app[item.app] then
         seen_app[item.app] = true
         sel.apps[#sel.apps + 1] = item.app
      end
      local show = true
      if opts.trace and not chain[opts.trace] then show = false end
      if opts.aborts and not is_abort then show = false end
      if opts.app and item.app ~= opts.app and root.app ~= opts.app then show = false end
      if opts.file and not touches(d, item, opts.file) then show = false end
      if show and not (opts.all or opts.trace) and is_tooling(root) then
         local kind = is_abort and "aborts" or "traces"
         sel.tooling[kind] = sel.tooling[kind] + 1
         show = false
      end
      if show then
         local list = is_abort and sel.aborts or sel.traces
         list[#list + 1] = item
      end
   end
   table.sort(sel.apps)
   return sel
end

local function plural (n, word)
   return ("%d %s%s"):format(n, word, n == 1 and "" or "s")
end

-- What the selection left out as snabb's own tooling, or nil.
local function left_out (sel)
   local n = sel.tooling.traces + sel.tooling.aborts
   if n == 0 then return nil end
   return ("%s and %s of snabb's own tooling (run by vm/, observe/ or programs/) left out: "
           .. "--all shows them"):format(plural(sel.tooling.traces, "trace"),
                                         plural(sel.tooling.aborts, "abort"))
end

-- The log as jit.dump prints it (bytecode, IR with snapshots, machine code, stop or abort), with
-- where each trace started (and in which app) and the source lines it spans. options: mcode =
-- false leaves machine code out; sel from M.select (default: everything).
function M.print_text (d, path, out, sel, options)
   sel = sel or {traces = d.traces, aborts = d.aborts, tooling = {traces = 0, aborts = 0}}
   options = options or {}
   local o = d.open
   out:write(("snabb auditlog %s: format %d, pid %s, %s (%s), opened %s\n"):format(
      path, d.version, o.pid or "?", o.jit_version or "?", o.arch or "?",
      o.time and os.date("!%Y-%m-%dT%H:%M:%SZ", o.time) or "?"))
   out:write(("%s, %s, %s%s%s\n"):format(plural(#d.traces, "trace"), plural(#d.aborts, "abort"),
      plural(d.flushes, "flush"):gsub("hs$", "hes"),
      d.limit_reached and ", limit reached (logging stopped at its size cap)" or "",
      d.truncated and ", last record cut short" or ""))
   if #sel.traces ~= #d.traces or #sel.aborts ~= #d.aborts then
      out:write(("shown: %s, %s\n"):format(plural(#sel.traces, "trace"),
                                           plural(#sel.aborts, "abort")))
   end
   local items = {}
   for _, t in ipairs(sel.traces) do items[#items + 1] = t end
   for _, a in ipairs(sel.aborts) do items[#items + 1] = a end
   table.sort(items, function (x, y) return x.seq < y.seq end)
   local generation = 0
   local function flushes_until (g)
      while generation < g do
         out:write("\n---- TRACE flush\n")
         generation = generation + 1
      end
   end
   -- One trace or abort as text: the reader checks each record's fields, not what its IR says,
   -- so a corrupt trace (an IR type out of range, a ref to no constant: programs/auditlog/
   -- auditlog_fuzz.lua) is listed as corrupt in one line and the others as usual.
   local function trace_text (t, number)
      local text = {}
      local function put (s) text[#text + 1] = s end
      put(("\n---- TRACE %d start %s%s%s\n"):format(number,
         t.parent and ("%d/%s "):format(t.parent, t.exit == -1 and "stitch" or t.exit) or "",
         place(t.start.source, t.start.line), t.app and (" (app %s)"):format(t.app) or ""))
      for _, line in ipairs(M.bc_lines(d, t.bytecode or {})) do put(line .. "\n") end
      if t.reason then
         put(("---- TRACE %d abort %s -- %s\n"):format(number, place(t.source, t.line, t.cfunc),
                                                       t.reason))
         if t.blacklisted then -- LuaJIT gave up on where this attempt started (AUDITLOG.md)
            put(("---- TRACE %d blacklisted %s -- %s\n"):format(number,
               place(t.start.source, t.start.line), t.exit == -1
                  and ("the stitch from trace %s is never tried again"):format(t.parent)
                  or ("its %s is never compiled again: it runs interpreted"):format(
                        t.start_bc or "start")))
         end
      else
         put(("---- TRACE %d IR\n"):format(number))
         for _, line in ipairs(M.ir_lines(t)) do put(line .. "\n") end
         if t.mcode and options.mcode ~= false then
            put(("---- TRACE %d mcode %d at 0x%x\n"):format(number, t.mcode.size, t.mcode.address))
            put(reader.disassemble(t.mcode, d.open.ircall))
         end
         local link = (t.link == t.number or t.link == 0) and t.linktype
                      or t.linktype == "root" and t.link or ("%d %s"):format(t.link, t.linktype)
         put(("---- TRACE %d stop -> %s; lines %s\n"):format(number, link, t.span))
      end
      return table.concat(text)
   end
   for _, t in ipairs(items) do
      flushes_until(t.generation)
      local number = t.number or t.trace
      local ok, text = pcall(trace_text, t, number)
      if not ok then
         text = ("\n---- TRACE %d corrupt: cannot be listed (%s)\n"):format(number,
                                                                          tostring(text))
      end
      out:write(text)
   end
   flushes_until(d.flushes)
   if d.limit_reached then out:write("\nlimit reached: the log stopped at its size cap\n") end
   local note = left_out(sel)
   if note then out:write("\n", note, "\n") end
end

-- Bytes that are not UTF-8 (string constants are raw bytes) as \u00XX, the character of the same
-- number, so that the text is UTF-8 that strict parsers accept; valid UTF-8 stays as it is.
local function utf8_escape (s)
   return (s:gsub("[\128-\255]+", function (run)
      local out, i = {}, 1
      while i <= #run do
         local c = run:byte(i)
         local n = c >= 0xc2 and c <= 0xdf and 1 or c >= 0xe0 and c <= 0xef and 2
                   or c >= 0xf0 and c <= 0xf4 and 3 or 0
         local ok = n > 0 and i + n <= #run
         if ok then
            local c2 = run:byte(i + 1)
            -- No overlong forms, surrogates or code points past U+10FFFF.
            ok = not (c == 0xe0 and c2 < 0xa0 or c == 0xed and c2 > 0x9f
                      or c == 0xf0 and c2 < 0x90 or c == 0xf4 and c2 > 0x8f)
            for j = i + 1, i + n do
               local cj = run:byte(j)
               if cj < 0x80 or cj > 0xbf then ok = false end
            end
         end
         if ok then
            out[#out + 1] = run:sub(i, i + n)
            i = i + n + 1
         else
            out[#out + 1] = ("\\u%04x"):format(c)
            i = i + 1
         end
      end
      return table.concat(out)
   end))
end
M.utf8_escape = utf8_escape

-- The decoded log as JSON, machine code in hex, as selected (sel from M.select).
function M.json (d, sel)
   sel = sel or {traces = d.traces, aborts = d.aborts, tooling = {traces = 0, aborts = 0}}
   local copy = {}
   for k, v in pairs(d) do copy[k] = v end
   copy.seq = nil
   copy.aborts = sel.aborts
   copy.left_out = sel.tooling
   copy.traces = {}
   for i, t in ipairs(sel.traces) do
      local c = {}
      for k, v in pairs(t) do c[k] = v end
      if t.mcode then
         local hex = t.mcode.bytes:gsub(".", function (b) return ("%02x"):format(b:byte()) end)
         c.mcode = {address = t.mcode.address, size = t.mcode.size, loop = t.mcode.loop,
                    exitstubs = t.mcode.exitstubs, bytes = hex}
      end
      copy.traces[i] = c
   end
   return utf8_escape(require("dkjson").encode(copy, {indent = true})) .. "\n"
end

function M.run (args)
   local p = argparse("snabb auditlog", "Decode a JIT auditlog (written by snabb -a FILE, or a "
                      .. "run directory's audit.log) and list it as jit.dump does.")
      :add_help("-h --help")
   p:argument("file", "the auditlog file"):target("log")
   p:flag("--json", "print the decoded log as JSON (the same selection)")
   p:flag("--all", "include the traces of snabb's own tooling (what vm/, observe/ and programs/ "
          .. "run around the graph)")
   p:option("--trace", "only trace N and its side traces"):argname("N")
      :convert(cli.whole("--trace", 1, 2^53, "a trace number", "from 1"))
   p:option("--app", "only traces recorded while app NAME ran, and their side traces")
      :argname("NAME")
   p:option("--file", "only traces whose bytecode passes through file F"):argname("F")
   p:flag("--aborts", "only aborted attempts at traces")
   p:flag("--no-mcode", "leave machine code out")
   local opts = cli.parse(p, args)
   if not opts then return 2 end
   local ok, d = pcall(reader.decode, opts.log)
   if not ok then
      io.stderr:write(("snabb auditlog: %s\n"):format(d))
      return 1
   end
   local sel = M.select(d, opts)
   if opts.json then
      io.stdout:write(M.json(d, sel))
   else
      M.print_text(d, opts.log, io.stdout, sel, {mcode = not opts.no_mcode})
   end
   if opts.app and #sel.traces + #sel.aborts == 0 then
      io.stderr:write(("snabb auditlog: no trace was recorded in app '%s'; apps in %s: %s\n")
                      :format(opts.app, opts.log, #sel.apps > 0 and table.concat(sel.apps, ", ")
                                                   or "none"))
   end
   return 0
end

function M.selftest ()
   print("selftest: programs.auditlog.auditlog")
   local path = os.tmpname()
   jit.flush()
   -- LuaJIT's default hotloop, set again to reset the hot counters: what the code run before left
   -- in them (other selftests in this process; slots hashed from bytecode addresses) once made a
   -- loop other than workload.lua:9 turn hot first (trace 1 at workload.lua:3, in CI).
   jit.opt.start("hotloop=56")
   auditlog.open(path)
   assert(loadstring(auditlog.selftest_workload, "@workload.lua"))()
   auditlog.close()
   -- Text: every trace with IR, snapshots and machine code; the aborts with file:line.
   local d = reader.decode(path)
   local text = {}
   local out = {write = function (_, ...) for _, s in ipairs{...} do text[#text + 1] = s end end}
   M.print_text(d, path, out)
   text = table.concat(text)
   -- As jit.dump prints it: the bytecode recorded (the loop's FORL, the closure's FNEW where the
   -- attempt aborted), IR with snapshots, machine code whose exits are named by number.
   for _, want in ipairs{"\n%-%-%-%- TRACE 1 start workload.lua:9\n0%d%d%d  [%u ]",
                         "\n%d%d%d%d  FORL  ", "\n%-%-%-%- TRACE 1 IR\n",
                         "\n0001 >  int SLOAD  #%d+ +CRI\n", "\n%.%.%.%.        SNAP   #0 ",
                         "\n%-%-%-%- TRACE %d+ start %d+/%d+ workload.lua:%d+\n",
                         "\n%-%-%-%- TRACE 1 mcode %d+ at 0x%x+\n%x+  %a+ ", "\n%->LOOP:\n",
                         "\n%x+  j%a+ +0x%x+\t%->0\n", "\n%x+  j%a+ +0x%x+\t%->LOOP\n",
                         "\n%-%-%-%- TRACE 1 stop %-> loop; lines workload.lua:9\n",
                         "\n%d%d%d%d  FNEW  ",
                         "\n%-%-%-%- TRACE %d+ abort workload.lua:12 %-%- NYI: bytecode %d+\n",
                         "\n%-%-%-%- TRACE flush\n"} do
      assert(text:match(want), "text lacks " .. want .. ":\n" .. text)
   end
   -- JSON: the same table, machine code in hex.
   local j = require("dkjson").decode(M.json(d))
   assert(#j.traces == #d.traces and #j.aborts == #d.aborts, "JSON")
   for i, t in ipairs(j.traces) do
      assert(t.mcode.bytes:match("^%x+$") and #t.mcode.bytes == 2 * d.traces[i].mcode.size, "hex")
   end
   -- JSON is UTF-8 whatever the constants hold: a byte that is not part of a UTF-8 character
   -- (also a surrogate, an overlong form, one past U+10FFFF, one cut short) is \u00XX.
   local esc = M.utf8_escape
   for have, want in pairs{["a\255\0b"] = "a\\u00ff\0b", ["é€😀"] = "é€😀",
                           ["\xed\xa0\x80"] = "\\u00ed\\u00a0\\u0080",
                           ["\xc0\xaf"] = "\\u00c0\\u00af", ["x\xe2\x82"] = "x\\u00e2\\u0082",
                           ["\xf4\x90\x80\x80"] = "\\u00f4\\u0090\\u0080\\u0080",
                           ["\xe2\x82\xac\x80"] = "€\\u0080"} do
      assert(esc(have) == want, ("utf8_escape: %q gave %q"):format(have, esc(have)))
   end
   -- Selection: a side trace goes with its root (parents in the same generation); snabb's own
   -- tooling (a root recorded outside app calls whose innermost caller outside runtime/ and
   -- external/ is in vm/, observe/ or programs/) is left out.
   local function item (number, parent, source, app, extra)
      local t = {number = number, parent = parent, exit = parent and 1, generation = 0, app = app,
                 start = {source = source, line = 1}, lines = {{source = source, line = 1}}}
      for k, v in pairs(extra or {}) do t[k] = v end
      return t
   end
   local log_d = {protos = {}, traces = {
      item(1, nil, "observe/observe.lua"), item(2, 1, "runtime/engine.lua"),
      item(3, nil, "runtime/link.lua", "fwd"), item(4, 3, "runtime/link.lua", "sink"),
      item(5, nil, "programs/bench/bench.lua", "bench_sink"),
      -- The engine's code run by the observer; a bundled library and the engine run by a script.
      item(6, nil, "runtime/engine.lua", nil, {stack = {"runtime/engine.lua", "observe/observe.lua",
                                                        "runtime/engine.lua", "programs/main.lua"}}),
      item(9, nil, "external/dkjson.lua", nil, {stack = {"external/dkjson.lua", "cfg.lua",
                                                         "programs/main.lua"}}),
      item(10, nil, "runtime/engine.lua", nil, {stack = {"runtime/engine.lua", "cfg.lua"}}),
      item(1, nil, "cfg.lua", nil, {generation = 1}),
      item(2, 1, "observe/observe.lua", nil, {generation = 1}),
   }, aborts = {
      {trace = 7, parent = 1, reason = "x", generation = 0, start = {source = "cfg.lua"}},
      {trace = 7, reason = "y", generation = 0, start = {source = "external/dkjson.lua"},
       stack = {"external/dkjson.lua", "programs/bench/bench.lua"}},
      {trace = 8, reason = "z", generation = 0, start = {source = "apps/a.lua"}, app = "fwd",
       source = "runtime/link.lua"},
   }}
   for i, t in ipairs(log_d.traces) do t.seq = i end
   for i, a in ipairs(log_d.aborts) do a.seq = 100 + i end
   local function picked (opts)
      local sel, got = M.select(log_d, opts), {}
      for _, t in ipairs(sel.traces) do got[#got + 1] = t.generation .. ":" .. t.number end
      for _, a in ipairs(sel.aborts) do got[#got + 1] = a.reason end
      return table.concat(got, " "), sel
   end
   local got, sel = picked()
   assert(got == "0:3 0:4 0:5 0:9 0:10 1:1 1:2 z" and sel.tooling.traces == 3
          and sel.tooling.aborts == 2, got)
   assert(table.concat(sel.apps, " ") == "bench_sink fwd sink", table.concat(sel.apps, " "))
   assert(picked{all = true} == "0:1 0:2 0:3 0:4 0:5 0:6 0:9 0:10 1:1 1:2 x y z",
          (picked{all = true}))
   assert(picked{trace = 1} == "0:1 0:2 1:1 1:2 x", (picked{trace = 1}))
   assert(picked{app = "fwd"} == "0:3 0:4 z", (picked{app = "fwd"}))
   assert(picked{app = "sink"} == "0:4", (picked{app = "sink"}))
   assert(picked{file = "link.lua"} == "0:3 0:4 z", (picked{file = "link.lua"}))
   assert(picked{file = "ink.lua"} == "", (picked{file = "ink.lua"}))
   assert(picked{aborts = true, all = true} == "x y z", (picked{aborts = true, all = true}))
   os.remove(path)
   print("selftest: programs.auditlog.auditlog ok")
end

return M
