-- programs.cli: what every subcommand does with a command line it cannot take, and the checks its
-- numeric options share (each refuses what it cannot use with a message naming the option).
local M = {}

-- Prints "snabb CMD: problem" and the usage to stderr.
function M.usage_error (parser, message)
   io.stderr:write(("%s: %s\n\n%s\n"):format(parser._name, message, parser:get_usage()))
end

-- argparse takes "-1" after an option for an option of its own ("unknown option '-1'"): a value
-- that reads as a number (-1, -0.5, -inf) is joined to the option before it takes values
-- ("--duration=-1", "-d-1"), so that the option's own check can refuse it by name.
local function join_negative_numbers (parser, args)
   local takes_value = {}
   for _, option in ipairs(parser._options) do
      if option._maxargs > 0 then
         for _, alias in ipairs(option._aliases) do takes_value[alias] = true end
      end
   end
   local result, i = {}, 1
   while i <= #args do
      local a, value = args[i], args[i + 1]
      if a == "--" then
         for k = i, #args do result[#result+1] = args[k] end
         break
      end
      if takes_value[a] and value and value:match("^%-") and tonumber(value) then
         result[#result+1] = a:match("^%-%-") and a .. "=" .. value or a .. value
         i = i + 2
      else
         result[#result+1] = a
         i = i + 1
      end
   end
   return result
end

-- The options args give parser; nil (after usage_error) when they are wrong: exit status 2.
function M.parse (parser, args)
   local ok, opts = parser:pparse(join_negative_numbers(parser, args))
   if ok then return opts end
   M.usage_error(parser, opts)
end

-- argparse converters (option:convert(...)): the value, or nil and a message naming the option.

-- Seconds: a finite number > 0 ("0.5", "1e-3"); no unit.
function M.seconds (option)
   return function (s)
      local n = tonumber(s)
      if n and n > 0 and n < math.huge then return n end
      return nil, ("%s must be a positive number of seconds (finite, e.g. 5 or 0.5), got '%s'"):format(option, s)
   end
end

-- A count: a whole number from 1 to 2^53 ("1e6" allowed).
function M.count (option)
   return function (s)
      local n = tonumber(s)
      if n and n >= 1 and n <= 2^53 and n == math.floor(n) then return n end
      return nil, ("%s must be a whole number from 1 to 2^53 (e.g. 1000 or 1e6), got '%s'"):format(option, s)
   end
end

function M.selftest ()
   print("selftest: programs.cli")
   local argparse = require("argparse")
   local p = argparse("snabb x"):add_help(false)
   p:option("-d --duration"):convert(M.seconds("--duration"))
   p:option("--loops"):convert(M.count("--loops"))
   p:argument("rest"):args("*")
   local function parse (...)
      local ok, opts = p:pparse(join_negative_numbers(p, {...}))
      return ok and opts or nil, not ok and opts or nil
   end
   assert(parse("--duration", "2.5").duration == 2.5 and parse("-d", "1e-3").duration == 1e-3)
   for _, bad in ipairs({"-1", "0", "nan", "inf", "-inf", "5s", ""}) do
      local _, err = parse("--duration", bad)
      assert(err == ("--duration must be a positive number of seconds (finite, e.g. 5 or 0.5), got '%s'")
         :format(bad), err)
      _, err = parse("-d", bad)
      assert(err and err:match("^%-%-duration must be a positive number of seconds"), err)
   end
   assert(parse("--loops", "1e6").loops == 1e6)
   for _, bad in ipairs({"-3", "0", "1.5", "nan", "inf", "many"}) do
      local _, err = parse("--loops", bad)
      assert(err and err:match("^%-%-loops must be a whole number from 1 to 2%^53"), err)
   end
   -- Only a value after an option that takes one is joined; "--" ends options as usual.
   local opts = parse("--", "-1")
   assert(opts.rest[1] == "-1", opts.rest[1])
   local _, err = parse("-1")
   assert(err and err:match("unknown option '%-1'"), err)
   print("selftest: programs.cli ok")
end

return M
