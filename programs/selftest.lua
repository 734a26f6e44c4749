-- snabb selftest MODULE...: runs each module's selftest() (Snabb's convention for unit tests).
local M = {}

function M.run (args)
   if #args == 0 then
      io.stderr:write("Usage: snabb selftest MODULE...\n")
      return 2
   end
   for _, name in ipairs(args) do
      local module = require(name)
      if type(module.selftest) ~= "function" then error(("module '%s' has no selftest()"):format(name), 0) end
      module.selftest()
   end
   return 0
end

return M
