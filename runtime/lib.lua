-- core.lib: small helpers shared by apps and programs (config parsing, throttling, hexdumps).
local ffi = require("ffi")
require("core.cdefs")

local M = {}

-- How a value looks in a message: strings quoted, tables shown by a few of their fields.
function M.describe (value)
   local t = type(value)
   if t == "string" then return ("%q"):format(value) end
   if t ~= "table" then return tostring(value) end
   local mt = getmetatable(value)
   if mt and mt.__tostring then return tostring(value) end
   local fields, n = {}, 0
   for k, v in pairs(value) do
      n = n + 1
      if n > 4 then fields[#fields+1] = "..."; break end
      local key = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or "[" .. M.describe(k) .. "]"
      fields[#fields+1] = ("%s = %s"):format(key, type(v) == "table" and "{...}" or M.describe(v))
   end
   return "{" .. table.concat(fields, ", ") .. "}"
end

-- An xpcall handler that makes any error value a message: strings as they are; anything else
-- (error({}), error()) is described, after the file:line of the Lua code that raised it. `level`:
-- where the stack search for that code starts (default 2: the handler's caller).
function M.error_message (err, level)
   if type(err) == "string" then return err end
   local where = ""
   for l = level or 2, 20 do
      local info = debug.getinfo(l, "Sl")
      if not info then break end
      if info.currentline > 0 then where = ("%s:%d: "):format(info.short_src, info.currentline); break end
   end
   if err == nil then return where .. "error raised without a message (error() or error(nil))" end
   return ("%serror raised with a %s instead of a message: %s"):format(where, type(err), M.describe(err))
end

-- What a parameter spec allows, in words: "a whole number of bytes from 0 to 10240".
local function allowed (s)
   if s.allows then return s.allows end
   local kind = s.integer and "a whole number" or s.type == "number" and "a number" or
                s.type and ("a " .. s.type) or "anything"
   if s.unit then kind = kind .. " of " .. s.unit end
   if s.min and s.max then return ("%s from %s to %s"):format(kind, s.min, s.max) end
   if s.min then return ("%s of at least %s"):format(kind, s.min) end
   if s.max then return ("%s of at most %s"):format(kind, s.max) end
   return kind
end

-- Raises, as one line, why the last failing C call failed (runtime/error.h: the call returned its
-- failure value and snabb_error() says why), after "what: " when what is given. level as error()'s,
-- counted from c_error's caller (default 1: the caller's position; 0: the message alone).
function M.c_error (what, level)
   local message = ffi.string(ffi.C.snabb_error())
   if what then message = what .. ": " .. message end
   level = level or 1
   error(message, level > 0 and level + 1 or 0)
end

-- The value a parameter spec accepts for v (numbers may be given as numeric strings), or nil.
local function check (s, v)
   if s.check then return s.check(v) end
   if s.integer or s.type == "number" then
      v = tonumber(v)
      if not v or v ~= v or v == math.huge or v == -math.huge then return nil end
      if s.integer and v ~= math.floor(v) then return nil end
      if (s.min and v < s.min) or (s.max and v > s.max) then return nil end
      return v
   end
   if s.type and type(v) ~= s.type then return nil end
   return v
end

-- Parses an app's argument against a spec {key = {required=bool, default=value, ...}, ...}. A key
-- may also say what it allows: type = "string"|"boolean"|"number"|"table"|"function", integer =
-- true (a whole number), min, max, unit (for the message); numbers may be given as numeric
-- strings. A value no such field describes (Replay's rate) gives check = function (v) returning
-- the value to use or nil, and allows = what it allows, in words (allows also rewords the
-- others). positional = true: an argument that is not a table is this parameter's value (Snabb's
-- Source(60)). Unknown keys are refused. Errors name the parameter and what it allows; the engine
-- adds the config line and the app's name.
function M.parse (arg, spec)
   local result = {}
   if arg ~= nil and type(arg) ~= "table" then
      local positional
      for key, s in pairs(spec) do if s.positional then positional = key end end
      if not positional then
         error(next(spec) == nil and ("takes no parameters, got %s"):format(M.describe(arg))
               or ("expected a table of parameters, got %s"):format(M.describe(arg)), 2)
      end
      arg = {[positional] = arg}
   end
   arg = arg or {}
   for key in pairs(arg) do
      if spec[key] == nil then
         local known = {}
         for k in pairs(spec) do known[#known+1] = k end
         table.sort(known)
         error(("unknown parameter %s (known: %s)"):format(
            type(key) == "string" and "'" .. key .. "'" or "[" .. M.describe(key) .. "]",
            #known > 0 and table.concat(known, ", ") or "none"), 2)
      end
   end
   for key, s in pairs(spec) do
      local value = arg[key]
      if value == nil then
         if s.required then
            error(("missing required parameter '%s' (%s)"):format(key, allowed(s)), 2)
         end
         value = s.default
      else
         local checked = check(s, value)
         if checked == nil then
            error(("parameter '%s' must be %s, got %s"):format(key, allowed(s), M.describe(value)), 2)
         end
         value = checked
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
   clock = clock or require("snabb.runtime").now
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

-- A text table whose columns are as wide as their widest cell (header included), two spaces
-- apart: rows are lists of cells (strings or numbers, written with tostring); `right` says which
-- columns (by index) are right-aligned, as numbers are. Widths count UTF-8 characters, not bytes.
function M.table_text (header, rows, right)
   right = right or {}
   local width = {}
   local function measure (row)
      for i, cell in ipairs(row) do
         local n = #tostring(cell):gsub("[\128-\191]", "")
         width[i] = math.max(width[i] or 0, n)
      end
   end
   measure(header)
   for _, row in ipairs(rows) do measure(row) end
   local lines = {}
   local function line (row)
      local cells = {}
      for i, cell in ipairs(row) do
         local s = tostring(cell)
         local pad = (" "):rep(width[i] - #s:gsub("[\128-\191]", ""))
         cells[i] = right[i] and pad .. s or (i < #row and s .. pad or s)
      end
      lines[#lines+1] = table.concat(cells, "  ")
   end
   line(header)
   for _, row in ipairs(rows) do line(row) end
   return table.concat(lines, "\n") .. "\n"
end

function M.selftest ()
   print("selftest: core.lib")
   local conf = M.parse({size = 64}, {size = {default = 60}, name = {default = "x"}})
   assert(conf.size == 64 and conf.name == "x")
   local ok, err = pcall(M.parse, {sise = 64}, {size = {default = 60}})
   assert(not ok and err:match("unknown parameter 'sise' %(known: size%)"), err)
   ok, err = pcall(M.parse, {}, {name = {required = true}})
   assert(not ok and err:match("missing required parameter 'name'"), err)
   -- Typed parameters: the message names the parameter, what it allows and what it got.
   local size = {size = {default = 60, integer = true, min = 0, max = 100, unit = "bytes", positional = true}}
   assert(M.parse(nil, size).size == 60 and M.parse({}, size).size == 60)
   assert(M.parse(64, size).size == 64 and M.parse("64", size).size == 64)
   for _, bad in ipairs({"huge", -1, 101, 1.5, 0/0, math.huge, {}, true}) do
      ok, err = pcall(M.parse, {size = bad}, size)
      assert(not ok and err:match("^parameter 'size' must be a whole number of bytes from 0 to 100, got "), err)
   end
   err = select(2, pcall(M.parse, {size = "huge"}, size))
   assert(err == [[parameter 'size' must be a whole number of bytes from 0 to 100, got "huge"]], err)
   err = select(2, pcall(M.parse, {name = 5}, {name = {type = "string"}}))
   assert(err == "parameter 'name' must be a string, got 5", err)
   local even = {n = {check = function (v) return v % 2 == 0 and v or nil end, allows = "an even number"}}
   assert(M.parse({n = 4}, even).n == 4)
   err = select(2, pcall(M.parse, {n = 3}, even))
   assert(err == "parameter 'n' must be an even number, got 3", err)
   err = select(2, pcall(M.parse, "x", {}))
   assert(err == [[takes no parameters, got "x"]], err)
   err = select(2, pcall(M.parse, {1}, {}))
   assert(err == "unknown parameter [1] (known: none)", err)
   assert(M.describe({code = 5}) == "{code = 5}" and M.describe(nil) == "nil", M.describe({code = 5}))
   -- Error values that are not messages: described, with the line that raised them.
   local function raise (e) error(e) end
   err = select(2, xpcall(raise, M.error_message, {code = 5}))
   assert(err:match("^runtime/lib.lua:%d+: error raised with a table instead of a message: {code = 5}$"), err)
   err = select(2, xpcall(raise, M.error_message, nil))
   assert(err:match("^runtime/lib.lua:%d+: error raised without a message"), err)
   err = select(2, xpcall(raise, M.error_message, "as it is"))
   assert(err:match("lib.lua:%d+: as it is$"), err)
   assert(M.equal({a = {1, 2}}, {a = {1, 2}}) and not M.equal({a = {1, 2}}, {a = {1, 3}}))
   local t = 0
   local throttled = M.throttle(1, function () return t end)
   assert(throttled() and not throttled())
   t = 1
   assert(throttled())
   assert(M.hexdump("\0\1\255") == "0000  00 01 ff")
   assert(M.comma_value(1234567) == "1,234,567" and M.comma_value(12) == "12")
   assert(M.table_text({"app", "µs"}, {{"a_long_name", 1.5}, {"b", 12}}, {[2] = true}) ==
          "app           µs\na_long_name  1.5\nb             12\n")
   print("selftest: core.lib ok")
end

return M
