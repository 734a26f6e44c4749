-- programs.auditlog.auditlog_fuzz: one fuzz input, arbitrary bytes, as an auditlog through what
-- `snabb auditlog --all --json` does with a file: the reader (observe.auditlog_reader.decode_string),
-- the selection and the JSON. Logs may come from another machine, a killed process or a full disk.
-- Whatever the bytes, the reader must return a log or raise one line naming the input, and the
-- selection and JSON must be made of what it returns; a crash, a hang or any other error (a Lua
-- error from our code, an error of another shape) is a finding. auditlog_fuzz.cc calls one per
-- input (returns 0, or 1 for a finding). Not yet the jit.dump-style text listing: it still fails
-- on well-typed records whose IR is nonsense (an IR type out of range, a ref to no constant).
local reader = require("observe.auditlog_reader")
local auditlog = require("programs.auditlog.auditlog")

local M = {}

local NAME = "fuzz.log"
local function list (d)
   auditlog.json(d, auditlog.select(d, {all = true}))
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
