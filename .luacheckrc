-- luacheck settings for the whole tree (`luacheck .`): LuaJIT, and the globals that `snabb` gives
-- configs and scripts (programs/main.lua's set_globals, as Snabb has them).
std = "luajit"
unused_secondaries = false
self = false -- an app method need not use self (Snabb's app interface)
local snabb_globals = {globals = {"config", "engine", "link", "packet", "lib", "counter", "timer", "memory",
                                  "main", "timeline"}}
files["tests"] = snabb_globals
files["examples"] = snabb_globals
files["tools"] = snabb_globals
-- syntax_error.lua is a deliberate syntax error (tests/run_test.sh).
exclude_files = {"third_party/luajit/debian-src", "bazel-*", "tests/configs/syntax_error.lua"}
