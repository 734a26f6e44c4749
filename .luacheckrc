-- luacheck settings for the whole tree (`luacheck .`): LuaJIT, and the globals that `snabb` gives
-- configs and scripts (programs/main.lua's set_globals, as Snabb has them).
std = "luajit"
-- package.compiled_in: vm/vm.cc's searcher of the modules compiled in; table.pack/unpack: our
-- LuaJIT is built with LUA52COMPAT, as Snabb's (third_party/luajit/README.md).
read_globals = {package = {fields = {"compiled_in"}}, table = {fields = {"pack", "unpack"}}}
unused_secondaries = false
self = false -- an app method need not use self (Snabb's app interface)
local snabb_globals = {globals = {"config", "engine", "link", "packet", "lib", "counter", "timer", "memory",
                                  "main", "timeline"}}
files["tests"] = snabb_globals
files["examples"] = snabb_globals
files["tools"] = snabb_globals
-- syntax_error.lua is a deliberate syntax error (tests/run_test.sh).
exclude_files = {"third_party/luajit/debian-src", "bazel-*", "tests/configs/syntax_error.lua"}
