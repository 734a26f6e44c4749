-- programs.cli: what every subcommand does with a command line it cannot take.
local M = {}

-- Prints "snabb CMD: problem" and the usage to stderr.
function M.usage_error (parser, message)
   io.stderr:write(("%s: %s\n\n%s\n"):format(parser._name, message, parser:get_usage()))
end

-- The options args give parser; nil (after usage_error) when they are wrong: exit status 2.
function M.parse (parser, args)
   local ok, opts = parser:pparse(args)
   if ok then return opts end
   M.usage_error(parser, opts)
end

return M
