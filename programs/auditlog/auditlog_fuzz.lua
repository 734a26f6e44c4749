-- programs.auditlog.auditlog_fuzz: one fuzz input, arbitrary bytes, as an auditlog through what
-- `snabb auditlog --all` and `--json` do with a file: the reader (observe.auditlog_reader.
-- decode_string), the selection, the jit.dump-style listing with machine code, and the JSON. Logs
-- may come from another machine, a killed process or a full disk. Whatever the bytes, the reader
-- must return a log or raise one line naming the input, and the listing and JSON must be made of
-- what it returns (a trace whose IR makes no sense is listed as corrupt); a crash, a hang or any
-- other error (a Lua error from our code, an error of another shape) is a finding.
-- auditlog_fuzz.cc calls one per input (returns 0, or 1 for a finding).
local reader = require("observe.auditlog_reader")
local auditlog = require("programs.auditlog.auditlog")

local M = {}

local NAME = "fuzz.log"
local sink = {write = function () end}

local function list (d)
   local sel = auditlog.select(d, {all = true})
   auditlog.print_text(d, NAME, sink, sel, {mcode = true})
   auditlog.json(d, sel)
   -- The cross-reference lookups (snabb inspect's, a profile's of sampled addresses).
   for _, t in ipairs(d.traces) do
      for ins = 1, t.nins do reader.ins_line(d, t, ins) end
      for sn = 0, #t.snapshots - 1 do reader.snap_bytecode(t, sn) end
      local size = t.mcode and t.mcode.size or 0
      for offset = -1, size, math.max(1, math.floor(size / 64)) do reader.ins_of_offset(t, offset) end
   end
end

function M.one (bytes)
   local ok, d = pcall(reader.decode_string, bytes, NAME)
   if not ok then
      if type(d) == "string" and d:sub(1, #NAME + 2) == NAME .. ": " and not d:find("\n") then
         return 0
      end
      io.stderr:write("auditlog_fuzz: the reader raised: ", tostring(d), "\n")
      return 1
   end
   local listed, err = xpcall(list, debug.traceback, d)
   if listed then return 0 end
   io.stderr:write("auditlog_fuzz: listing a decoded log: ", tostring(err), "\n")
   return 1
end

return M
