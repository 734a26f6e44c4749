-- programs.inspect.xref: links one trace's listings in snabb inspect (programs.inspect.data's
-- trace view) through the maps LuaJIT records with mcode-map.patch, as the auditlog reader
-- decodes them (observe.auditlog_reader: ins_of_offset, ins_bytecode, ins_line, snap_bytecode):
-- each IR instruction to the machine-code lines its code occupies and to the bytecode (hence the
-- source line) it was recorded for, each snapshot to the bytecode its exit resumes at, each
-- machine-code line to its IR instruction, and each bytecode to the instructions recorded for it.
-- Listing lines are referred to by their index in their listing, from 0 (the page's numbering).
local reader = require("observe.auditlog_reader")

local M = {}

-- view: what data.trace returns (bytecode lines carry k, their index in t.bytecode; IR lines ins
-- or snapshot; machine-code lines their address in hex). Adds to IR lines mc = {first, last} (the
-- machine-code lines of its code, absent when it has none), bc (the first bytecode line of its
-- bytecode) and src ("file:line"); to snapshot lines bc and src; to machine-code lines ir (the
-- IR line of its instruction) and ins; to bytecode lines ir (the IR lines recorded for it); and
-- view.xref = true. A trace logged without the maps is left as it is (view.xref absent).
function M.annotate (log, t, view)
   if not (t.ir_mcode and t.mcode) then return view end
   view.xref = true
   local ir_line, bc_line = {}, {} -- instruction -> IR line; t.bytecode index -> first line
   for i, l in ipairs(view.ir) do
      if l.ins then ir_line[l.ins] = i - 1 end
   end
   for i, l in ipairs(view.bytecode) do
      if l.k and not bc_line[l.k] then bc_line[l.k] = i - 1 end
   end
   -- Machine-code lines to their instruction, and each instruction's first and last line.
   local first, last, bc_ir = {}, {}, {}
   for i, l in ipairs(view.mcode) do
      local ins = l.address and reader.ins_of_address(t, tonumber(l.address, 16))
      if ins then
         l.ins, l.ir = ins, ir_line[ins]
         first[ins] = first[ins] or i - 1
         last[ins] = i - 1
      end
   end
   local function source (k)
      local file, line = reader.bytecode_line(log, t, k)
      return file and ("%s:%d"):format(file, line) or nil
   end
   for i, l in ipairs(view.ir) do
      local k
      if l.ins then
         if first[l.ins] then l.mc = {first[l.ins], last[l.ins]} end
         k = reader.ins_bytecode(t, l.ins)
      elseif l.snapshot then
         k = reader.snap_bytecode(t, l.snapshot)
      end
      if k and bc_line[k] then
         l.bc, l.src = bc_line[k], source(k)
         if l.ins then
            bc_ir[k] = bc_ir[k] or {}
            table.insert(bc_ir[k], i - 1)
         end
      end
   end
   for _, l in ipairs(view.bytecode) do l.ir = l.k and bc_ir[l.k] end
   return view
end

return M
