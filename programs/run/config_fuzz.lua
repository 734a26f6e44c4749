-- programs.run.config_fuzz: one fuzz input through what `snabb run` does with a config file before
-- the engine runs: run.load_config (with core.config's checks), then engine.configure of what it
-- returns, then engine.configure of an empty config. Whatever the text, each step must return or
-- raise one error message (a string); a crash, a hang, or any other error value is a finding.
-- config_fuzz.cc calls init once and one per input (returns 0, or 1 for a finding).
--
-- What a config may do to the process is bounded, so a finding is the loader's and reproduces
-- from its input alone:
-- - the config's own code runs at most LIMIT instructions (a count hook, with the JIT off: count
--   hooks do not fire in compiled code); our modules are never interrupted;
-- - os.exit/execute/remove/rename, io.popen, debug.sethook, jit.on and require("ffi") fail when
--   the config calls them (raw memory through the FFI can crash any process, by design);
-- - the globals and every loaded module's fields are put back after each input, and the links
--   the config made itself are freed.
local run = require("programs.run.run")
local config = require("core.config")
local engine = require("core.engine")
local link = require("core.link")

local M = {}

local LIMIT = 1e6
local path, source
local getinfo, sethook, setmetatable_raw = debug.getinfo, debug.sethook, debug.setmetatable
local saved = {} -- table -> {fields, metatable}
local own_links = {} -- link -> true
-- CONFIG_FUZZ_LOG=FILE: every error message is appended there (to read what a long run met).
local log = os.getenv("CONFIG_FUZZ_LOG") and assert(io.open(os.getenv("CONFIG_FUZZ_LOG"), "a"))

-- Whether the function `level` frames up is the config file's own code.
local function in_config (level)
   local info = getinfo(level + 1, "S")
   return info ~= nil and info.source == source
end

local function refuse (name, original)
   return function (...)
      if in_config(2) then error(name .. " is not available to a fuzzed config", 2) end
      return original(...)
   end
end

local function snapshot (t)
   if type(t) ~= "table" or saved[t] then return end
   local fields = {}
   for k, v in next, t do fields[k] = v end
   saved[t] = {fields = fields, meta = getmetatable(t)}
end

local function restore ()
   for t, s in next, saved do
      setmetatable_raw(t, s.meta)
      for k in next, t do
         if s.fields[k] == nil then rawset(t, k, nil) end
      end
      for k, v in next, s.fields do rawset(t, k, v) end
   end
end

-- dir: a private, writable directory (the current directory too; the C++ side made both).
function M.init (dir)
   require("programs.main").set_globals()
   -- The modules a config names, loaded before the snapshot so every input finds the same state.
   for _, m in ipairs({"apps.basic.basic_apps", "apps.pcap.pcap", "drivers.af_packet.af_packet",
                       "drivers.dpdk.dpdk", "core.lib", "core.counter"}) do
      require(m)
   end
   jit.off()
   path = dir .. "/config.lua"
   source = "@" .. path
   for _, f in ipairs({{"os", "exit"}, {"os", "execute"}, {"os", "remove"}, {"os", "rename"},
                       {"io", "popen"}, {"debug", "sethook"}, {"jit", "on"}}) do
      local lib, name = _G[f[1]], f[2]
      lib[name] = refuse(f[1] .. "." .. name, lib[name])
   end
   -- Links a config makes itself (as a script would) are its own to free; freed after each
   -- input, so that LeakSanitizer reports only what the loader and the engine lose.
   local link_new, link_free = link.new, link.free
   link.new = function ()
      local l = link_new()
      if in_config(2) then own_links[l] = true end
      return l
   end
   link.free = function (l)
      if l ~= nil then own_links[l] = nil end
      return link_free(l)
   end
   local require_original = require
   _G.require = function (name)
      if name == "ffi" and in_config(2) then error("ffi is not available to a fuzzed config", 2) end
      return require_original(name)
   end
   snapshot(_G)
   snapshot(getmetatable(""))
   for _, t in pairs(_G) do snapshot(t) end
   for _, t in pairs(package.loaded) do snapshot(t) end
   return 0
end

local function limit ()
   if in_config(2) then error("config_fuzz: instruction limit", 2) end
end

local function finding (step, err)
   io.stderr:write(("config_fuzz: %s raised %s, not one error message: %s\n"):format(
      step, type(err), tostring(err)))
   return 1
end

function M.one (text)
   local f = assert(io.open(path, "wb"))
   f:write(text)
   f:close()
   sethook(limit, "", LIMIT)
   local ok, err = pcall(function () engine.configure(run.load_config(path, {})) end)
   sethook()
   if not ok and type(err) ~= "string" then return finding("loading and configuring", err) end
   if log and not ok then log:write(err:gsub("\n", "\n  "), "\n") end
   ok, err = pcall(engine.configure, config.new())
   if not ok then return finding("configuring an empty graph afterwards", err) end
   for l in pairs(own_links) do link.free(l) end
   restore()
   return 0
end

return M
