-- vm.source_modules_fuzz: one fuzz input through what reads Snabb's sources (vm/source_modules.cc)
-- and its event specs (core.timeline). The input's first line is a module name, the rest a file's
-- text: the name goes to the source-module searcher (the walk that reads `.` and `-` as `_`); the
-- text is written as a header, a .yang, an .inc and an .events file under a private directory on
-- the path and required as the modules Snabb's build makes of them (X_h: ffi.cdef of the text);
-- and it is read as a timeline's event specs. Each step must return or raise one error message (a
-- string); a crash, a hang, or any other error value is a finding. source_modules_fuzz.cc calls
-- init once and one per input (returns 0, or 1 for a finding).
local timeline = require("core.timeline")

local M = {}

local dir, n = nil, 0
local search -- package.loaders' source-module searcher (vm/vm.cc's order: the fourth)

function M.init (path)
   dir = path
   package.path = path .. "/?.lua;" .. package.path
   search = package.loaders[4]
   return 0
end

local function finding (what, ok, result)
   if ok or type(result) == "string" then return 0 end
   io.stderr:write(("source_modules_fuzz: %s raised a %s, not a message\n"):format(what, type(result)))
   return 1
end

function M.one (input)
   local name, text = input:match("^([^\n]*)\n?(.*)$")
   local found = 0
   found = found + finding("the searcher", pcall(search, name:sub(1, 200)))
   n = n + 1 -- a fresh stem for each input: require keeps what it loaded
   for _, kind in ipairs({"h", "yang", "inc", "events"}) do
      local path = ("%s/fuzz-%d.%s"):format(dir, n, kind)
      local f = assert(io.open(path, "w"))
      f:write(text)
      f:close()
      found = found + finding(kind, pcall(require, ("fuzz_%d_%s"):format(n, kind)))
      os.remove(path)
   end
   found = found + finding("the event specs", pcall(timeline.load_events_from_string, false, text, "fuzz"))
   return found > 0 and 1 or 0
end

return M
