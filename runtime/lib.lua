-- core.lib: small helpers shared by apps and programs (config parsing, throttling, hexdumps).
local ffi = require("ffi")

local M = {}

-- Parses an app's argument against a spec {key = {required=bool, default=value}, ...}.
-- Errors name the parameter; the engine adds the app's name.
function M.parse (arg, spec)
   local result = {}
   if arg ~= nil and type(arg) ~= "table" then
      error(("expected a table of parameters, got %s"):format(type(arg)), 2)
   end
   arg = arg or {}
   for key in pairs(arg) do
      if spec[key] == nil then
         local known = {}
         for k in pairs(spec) do known[#known+1] = k end
         table.sort(known)
         error(("unknown parameter '%s' (known: %s)"):format(
            tostring(key), #known > 0 and table.concat(known, ", ") or "none"), 2)
      end
   end
   for key, s in pairs(spec) do
      local value = arg[key]
      if value == nil then
         if s.required then error(("missing required parameter '%s'"):format(key), 2) end
         value = s.default
      end
      result[key] = value
   end
   return result
end

-- Deep equality of plain values and tables (used to decide whether an app's config changed).
function M.equal (a, b)
   if type(a) ~= type(b) then return false end
   if type(a) ~= "table" then return a == b end
   for k, v in pairs(a) do
      if not M.equal(v, b[k]) then return false end
   end
   for k in pairs(b) do
      if a[k] == nil then return false end
   end
   return true
end

-- Returns a function that answers true at most once per `seconds` (clock: engine time by default).
function M.throttle (seconds, clock)
   clock = clock or require("snabb.core").now
   local deadline = clock()
   return function ()
      local now = clock()
      if now >= deadline then
         deadline = now + seconds
         return true
      end
      return false
   end
end

-- Hex dump of a string, or of `length` bytes at a pointer: "00 11 22 ..." 16 bytes a line.
function M.hexdump (data, length)
   if type(data) == "string" then length = length or #data end
   local bytes = ffi.cast("const uint8_t *", data)
   local lines = {}
   for offset = 0, length - 1, 16 do
      local line = {}
      for i = offset, math.min(offset + 15, length - 1) do line[#line+1] = ("%02x"):format(bytes[i]) end
      lines[#lines+1] = ("%04x  %s"):format(offset, table.concat(line, " "))
   end
   return table.concat(lines, "\n")
end

-- 1234567 -> "1,234,567"
function M.comma_value (n)
   local s = tostring(math.floor(tonumber(n)))
   local sign, digits = s:match("^(-?)(%d+)$")
   if not digits then return s end
   return sign .. digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
end

function M.selftest ()
   print("selftest: core.lib")
   local conf = M.parse({size = 64}, {size = {default = 60}, name = {default = "x"}})
   assert(conf.size == 64 and conf.name == "x")
   local ok, err = pcall(M.parse, {sise = 64}, {size = {default = 60}})
   assert(not ok and err:match("unknown parameter 'sise' %(known: size%)"), err)
   ok, err = pcall(M.parse, {}, {name = {required = true}})
   assert(not ok and err:match("missing required parameter 'name'"), err)
   assert(M.equal({a = {1, 2}}, {a = {1, 2}}) and not M.equal({a = {1, 2}}, {a = {1, 3}}))
   local t = 0
   local throttled = M.throttle(1, function () return t end)
   assert(throttled() and not throttled())
   t = 1
   assert(throttled())
   assert(M.hexdump("\0\1\255") == "0000  00 01 ff")
   assert(M.comma_value(1234567) == "1,234,567" and M.comma_value(12) == "12")
   print("selftest: core.lib ok")
end

return M
