-- A config that forgets to return its config: snabb run says so (tests/cli_test.sh).
local c = config.new() -- luacheck: ignore c (never returned: the mistake under test)
