-- snabb selftest MODULE...: runs each module's selftest() (Snabb's convention for unit tests).
local argparse = require("argparse")
local cli = require("programs.cli")

local M = {}

-- For `snabb help` (programs/main.lua finds the command by its folder).
M.summary = "run modules' self-tests: snabb selftest MODULE..."

-- The modules compiled into snabb that have a selftest(): those whose bytecode names "selftest"
-- and, loaded, have the function (only these are loaded).
function M.modules ()
   local found, i = {}, 0
   while true do
      local name, bytecode = require("programs.main").embedded_module(i, true)
      if not name then break end
      i = i + 1
      if bytecode:find("selftest", 1, true) then
         local ok, module = pcall(require, name)
         if ok and type(module) == "table" and type(module.selftest) == "function" then
            found[#found+1] = name
         end
      end
   end
   return found
end

function M.run (args)
   local p = argparse("snabb selftest", "Run modules' self-tests (their selftest() functions).")
      :add_help("-h --help")
   for _, a in ipairs(args) do -- (finding them loads them: only for the help)
      if a == "-h" or a == "--help" then p:epilog("Modules with a selftest: " .. table.concat(M.modules(), ", ")) end
   end
   p:argument("module", "a module compiled into snabb, e.g. core.lib"):args("+")
   local opts = cli.parse(p, args)
   if not opts then return 2 end
   local selftests = {}
   for _, name in ipairs(opts.module) do
      -- Only a module that is not there is a usage error; one that fails to load is reported as is.
      local ok, module = pcall(require, name)
      if not ok and tostring(module):find(("module '%s' not found:"):format(name), 1, true) == 1 then
         cli.usage_error(p, ("no module '%s' (modules with a selftest: %s)"):format(
            name, table.concat(M.modules(), ", ")))
         return 2
      elseif not ok then
         error(module, 0)
      elseif type(module) ~= "table" or type(module.selftest) ~= "function" then
         cli.usage_error(p, ("module '%s' has no selftest() (modules with one: %s)"):format(
            name, table.concat(M.modules(), ", ")))
         return 2
      end
      selftests[#selftests+1] = module.selftest
   end
   for _, selftest in ipairs(selftests) do selftest() end
   return 0
end

return M
