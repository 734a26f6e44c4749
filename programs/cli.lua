-- programs.cli: what every subcommand does with a command line it cannot take, and the checks its
-- numeric options share (each refuses what it cannot use with a message naming the option).
local lib = require("core.lib")

local M = {}

-- argparse's own messages about the command line's shape (not our converters' about a value):
-- they get a pointer to the usage. Patterns of argparse 0.7's messages.
local SHAPE = {"^unknown option", "^missing ", "requires an? ", "requires %d", "^too many arguments",
               "can not be used together", "must be used", "does not take arguments",
               "^malformed argument", "must be one of"}

-- The one line of a usage error: "snabb CMD: message", with "(snabb CMD --help for usage)" after
-- argparse's messages about the command line's shape. command: a parser (its name) or the
-- command's name ("snabb run").
function M.usage_line (command, message)
   local name = type(command) == "table" and command._name or command
   -- "option '--pcap' must be used 1 time": argparse's words for a required option left out.
   message = message:gsub("^option ('[^']+') must be used 1 time$", "missing option %1")
   for _, pattern in ipairs(SHAPE) do
      if message:match(pattern) then
         message = ("%s (%s --help for usage)"):format(message, name)
         break
      end
   end
   return ("%s: %s"):format(name, message)
end

-- Prints it to stderr.
function M.usage_error (command, message)
   io.stderr:write(M.usage_line(command, message), "\n")
end

-- A usage error found after the options were parsed (an option that does not fit the config, a
-- capture that cannot be read): raised, so that it leaves whatever runs (a run directory is
-- removed), and programs.main prints it as usage_error does and exits 2.
local Usage = {__tostring = function (e) return e.usage end}

function M.fail (message)
   error(setmetatable({usage = message}, Usage), 0)
end

-- The message of an error raised by fail, or nil for any other error.
function M.failure (e)
   return getmetatable(e) == Usage and e.usage or nil
end

-- argparse takes "-1" for an option of its own ("unknown option '-1'"). A value that reads as a
-- number (-1, -0.5, -inf) after an option that takes one is joined to it ("--duration=-1",
-- "-d-1"); one that is an argument of its own ("snabb basic1 -5") goes after a "--" with the other
-- arguments. Either way the option's or argument's own check can refuse it by name.
local function negative_numbers (parser, args)
   local takes_value, known = {}, {}
   for _, option in ipairs(parser._options) do
      for _, alias in ipairs(option._aliases) do
         known[alias], takes_value[alias] = true, option._maxargs > 0 or nil
      end
   end
   local in_order, options, arguments, move, stuck = {}, {}, {}, false, false
   local i = 1
   while i <= #args do
      local a, value = args[i], args[i + 1]
      if a == "--" then
         for k = i + 1, #args do arguments[#arguments+1] = args[k] end
         for k = i, #args do in_order[#in_order+1] = args[k] end
         break
      elseif takes_value[a] and value then
         if value:match("^%-") and tonumber(value) then
            value = a:match("^%-%-") and a .. "=" .. value or a .. value
            options[#options+1], in_order[#in_order+1] = value, value
         else
            options[#options+1], options[#options+2] = a, value
            in_order[#in_order+1], in_order[#in_order+2] = a, value
         end
         i = i + 2
      else
         if a:match("^%-.") and tonumber(a) then
            arguments[#arguments+1], move = a, true
         elseif a:match("^%-.") then
            -- Only options we know (or --name=value) can move: "-rd 5" would lose its value.
            if not (known[a] or known[a:match("^(%-%-[^=]+)=")]) then stuck = true end
            options[#options+1] = a
         else
            arguments[#arguments+1] = a
         end
         in_order[#in_order+1] = a
         i = i + 1
      end
   end
   if not move or stuck then return in_order end
   options[#options+1] = "--"
   for _, a in ipairs(arguments) do options[#options+1] = a end
   return options
end

-- The options args give parser; nil (after usage_error) when they are wrong: exit status 2.
function M.parse (parser, args)
   local ok, opts = parser:pparse(negative_numbers(parser, args))
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

-- A whole number from lo to hi ("1e6" allowed). what: what the option is, in words (default "a
-- whole number"); range: the range in words (default "from 1,000 to 2,000").
function M.whole (option, lo, hi, what, range)
   range = range or ("from %s to %s"):format(lib.comma_value(lo), lib.comma_value(hi))
   return function (s)
      local n = tonumber(s)
      if n and n >= lo and n <= hi and n == math.floor(n) then return n end
      return nil, ("%s must be %s %s, got '%s'"):format(option, what or "a whole number", range, s)
   end
end

-- A count: a whole number from 1 to 2^53.
function M.count (option)
   return M.whole(option, 1, 2^53, nil, "from 1 to 2^53 (e.g. 1000 or 1e6)")
end

-- The options of the commands that run an app graph. The libraries they set take plain arguments
-- (observe.observe.run(options, fn), vm.safety.set_watchdog(seconds), drivers.dpdk.dpdk.setup(eal,
-- telemetry)): the command line is named here only, and each library is loaded when it is used.

-- --rundir, --group, --no-auditlog, --no-vmprofile (run, bench, basic1).
function M.add_observe_options (parser)
   parser:option("--rundir", "keep the run directory (audit.log, vmprofile/, apps.json) in DIR "
                    .. "(default: a temporary one, /var/run/snabb/PID or $TMPDIR/snabb-UID/PID)")
      :argname("DIR")
   parser:option("--group", "let group NAME read the run directory (default: only you)")
      :argname("NAME")
      :convert(function (name) return require("observe.rundir").check_group(name) end)
   parser:flag("--no-auditlog", "do not log JIT events")
   parser:flag("--no-vmprofile", "do not sample where the time goes")
end

-- What they ask of observe.observe.run (its options), for program (a description for reports).
function M.observe_options (opts, program)
   return {dir = opts.rundir, group = opts.group, program = program, config = opts.config,
           auditlog = not opts.no_auditlog, vmprofile = not opts.no_vmprofile}
end

-- --watchdog SECONDS (run, bench).
function M.add_watchdog_option (parser)
   parser:option("--watchdog", ("report an app whose pull or push has not returned after this "
                    .. "many seconds, and end the process at twice that (default %g, 0: off)")
                    :format(require("vm.safety").default_watchdog)):argname("SECONDS")
      :convert(function (s)
         local seconds = tonumber(s)
         if seconds and seconds >= 0 and seconds <= 1e6 then return seconds end
         return nil, ("--watchdog must be a number of seconds from 0 (off) to 1,000,000, got '%s'"):format(s)
      end)
end

function M.apply_watchdog (opts)
   if opts.watchdog then require("vm.safety").set_watchdog(opts.watchdog) end
end

-- --eal "...", --no-dpdk-telemetry (run, bench): the EAL's options, replacing a config's
-- dpdk.init{args}; for a supervisor's workers, each worker's (drivers/dpdk/dpdk.lua: setup).
function M.add_dpdk_options (parser)
   parser:option("--eal", "DPDK EAL options, written --eal=\"-l 1 --no-pci ...\" (default: set up "
                    .. "as drivers/README.md says, when a config first uses DPDK)")
   parser:flag("--no-dpdk-telemetry", "no DPDK telemetry socket (by default dpdk-telemetry.py -f "
                  .. "snabb-PID attaches)")
end

function M.apply_dpdk (opts)
   require("drivers.dpdk.dpdk").setup(opts.eal, not opts.no_dpdk_telemetry)
end

function M.selftest ()
   print("selftest: programs.cli")
   local argparse = require("argparse")
   local p = argparse("snabb x"):add_help(false)
   p:option("-d --duration"):convert(M.seconds("--duration"))
   p:option("--loops"):convert(M.count("--loops"))
   p:argument("rest"):args("*")
   local function parse (...)
      local ok, opts = p:pparse(negative_numbers(p, {...}))
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
   local size = M.whole("--size", 64, 1518, "a frame size with FCS")
   assert(size("1518") == 1518 and select(2, size("63")) ==
          "--size must be a frame size with FCS from 64 to 1,518, got '63'", select(2, size("63")))
   -- A negative number of its own is an argument, wherever it is; "--" ends options as usual.
   local opts = parse("--", "-1")
   assert(opts.rest[1] == "-1", opts.rest[1])
   opts = parse("a", "-1", "--loops", "2", "-5", "--", "-x")
   assert(table.concat(opts.rest, " ") == "a -1 -5 -x" and opts.loops == 2, table.concat(opts.rest, " "))
   local _, err = parse("-x")
   assert(err and err:match("unknown option '%-x'"), err)
   _, err = parse("-xd", "1", "-5")
   assert(err and err:match("unknown option '%-x'"), err)
   -- Usage errors: one line; argparse's complaints about the shape point to --help, the
   -- converters' (which name the option and what it allows) do not.
   assert(M.usage_line(p, "unknown option '-x'") == "snabb x: unknown option '-x' (snabb x --help for usage)")
   assert(M.usage_line("snabb bench", "option '--pcap' must be used 1 time") ==
          "snabb bench: missing option '--pcap' (snabb bench --help for usage)")
   _, err = parse("--loops", "0")
   assert(M.usage_line(p, err) == "snabb x: " .. err and not err:match("\n"), M.usage_line(p, err))
   local ok, e = pcall(M.fail, "--in x.y: no app 'x'")
   assert(not ok and M.failure(e) == "--in x.y: no app 'x'" and M.failure("other") == nil)
   print("selftest: programs.cli ok")
end

return M
