-- core.config: a description of an app graph. config.app and config.link only record and check what
-- they are given; engine.configure makes it so. Errors point at the line of the config file.
local lib = require("core.lib")

local M = {}

-- The config's line: the caller at `level`, or the first Lua function above it (a pcall's caller).
local function where (level)
   local info = debug.getinfo(level + 1, "Sl")
   while info and info.what == "C" do
      level = level + 1
      info = debug.getinfo(level + 1, "Sl")
   end
   return info and ("%s:%d"):format(info.short_src, info.currentline) or "?"
end

function M.new ()
   return {apps = {}, links = {}}
end

local function is_config (c)
   return type(c) == "table" and type(c.apps) == "table" and type(c.links) == "table"
end
M.is_config = is_config

function M.app (c, name, class, arg)
   if not is_config(c) then error("config.app: first argument is not a config (config.new())", 2) end
   if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
      error(("config.app: app name must be an identifier, got %s"):format(tostring(name)), 2)
   end
   if type(class) ~= "table" or (type(class.new) ~= "function" and type(class.native) ~= "string") then
      error(("config.app: app '%s': class is %s, not an app class (a table with new(), " ..
             "or a native class); unknown app class?"):format(name, tostring(class)), 2)
   end
   if class.native and arg ~= nil then
      error(("config.app: app '%s': %s takes no argument, got %s"):format(
         name, class.native, lib.describe(arg)), 2)
   end
   -- The argument is checked against the class's config here, as in Snabb (c.apps[name].arg is
   -- the parsed argument); the error names the config's line.
   local here = where(2)
   if type(class.config) == "table" then
      local ok, parsed = pcall(M.parse_app_arg, arg, class.config)
      if not ok then error(("%s: app '%s': %s"):format(here, name, parsed), 0) end
      arg = parsed
   end
   -- A name defined again is replaced, as in Snabb, whose programs build a base config and then
   -- redefine apps of it (snabbmark's basic1 variants); engine.configure sees the last one.
   c.apps[name] = {class = class, arg = arg, where = here, parsed = type(class.config) == "table"}
end

-- Snabb's: an app's argument against its class's config (core.lib's parse); a string argument is
-- Lua source for it (a table constructor, e.g. from the command line).
function M.parse_app_arg (arg, conf)
   if type(arg) == "string" then
      local chunk = loadstring("return " .. arg)
      if chunk then
         local ok, value = pcall(chunk)
         if ok and type(value) == "table" then arg = value end
      end
   end
   return lib.parse(arg, conf)
end

-- "a.out -> b.in" -> "a", "out", "b", "in", or nil.
function M.parse_link (spec)
   if type(spec) ~= "string" then return nil end
   return spec:match("^%s*([%a_][%w_]*)%.([%w_]+)%s*%->%s*([%a_][%w_]*)%.([%w_]+)%s*$")
end

function M.format_link (from_app, from_port, to_app, to_port)
   return ("%s.%s -> %s.%s"):format(from_app, from_port, to_app, to_port)
end

-- Snabb's: the pattern of a link spec, and a spec in its canonical form ("a.out -> b.in").
M.link_syntax = [[ *([%w_]+)%.([%w_]+) *-> *([%w_]+)%.([%w_]+) *]]
function M.canonical_link (spec)
   local from_app, from_port, to_app, to_port = M.parse_link(spec)
   if not from_app then error(("link parse error: %s"):format(tostring(spec)), 2) end
   return M.format_link(from_app, from_port, to_app, to_port)
end

-- Snabb's: the graph in Graphviz's dot language.
function M.graphviz (c)
   local lines, specs = {"digraph config {"}, {}
   for spec in pairs(c.links) do specs[#specs+1] = spec end
   table.sort(specs)
   for _, spec in ipairs(specs) do
      local from_app, from_port, to_app, to_port = M.parse_link(spec)
      lines[#lines+1] = ('  %s -> %s [taillabel="%s" headlabel="%s"]'):format(
         from_app:sub(1, 12), to_app:sub(1, 12), from_port, to_port)
   end
   lines[#lines+1] = "}"
   return table.concat(lines, "\n") .. "\n"
end

-- The link at each output and input port of a config ("app.port" -> link spec), so that a new
-- link is checked without a scan of every link (that took 0.9 s to build a chain of 10,000 apps,
-- growing with the square). Made from c.links on first use; an entry whose link has since been
-- removed from c.links counts for nothing.
local port_links = setmetatable({}, {__mode = "k"})

local function ports_of (c)
   local ports = port_links[c]
   if not ports then
      ports = {output = {}, input = {}}
      for spec, l in pairs(c.links) do
         ports.output[l.from_app .. "." .. l.from_port] = spec
         ports.input[l.to_app .. "." .. l.to_port] = spec
      end
      port_links[c] = ports
   end
   return ports
end

function M.link (c, spec)
   if not is_config(c) then error("config.link: first argument is not a config (config.new())", 2) end
   local from_app, from_port, to_app, to_port = M.parse_link(spec)
   if not from_app then
      error(("config.link: '%s' is not a link; write \"app.port -> app.port\""):format(tostring(spec)), 2)
   end
   local canonical = M.format_link(from_app, from_port, to_app, to_port)
   local here = where(2)
   local existing = c.links[canonical]
   if existing then
      error(("config.link: duplicate link '%s' (first at %s)"):format(canonical, existing.where), 2)
   end
   local ports = ports_of(c)
   local output, input = from_app .. "." .. from_port, to_app .. "." .. to_port
   local other = ports.output[output]
   local l = other and c.links[other]
   if l and l.from_app == from_app and l.from_port == from_port then
      error(("config.link: output %s already feeds '%s' (at %s)"):format(output, other, l.where), 2)
   end
   other = ports.input[input]
   l = other and c.links[other]
   if l and l.to_app == to_app and l.to_port == to_port then
      error(("config.link: input %s is already fed by '%s' (at %s)"):format(input, other, l.where), 2)
   end
   c.links[canonical] = {from_app = from_app, from_port = from_port,
                         to_app = to_app, to_port = to_port, where = here}
   ports.output[output], ports.input[input] = canonical, canonical
end

local function check_port (c, link_spec, l, app, port, direction)
   local a = c.apps[app]
   if not a then
      error(("%s: link '%s' names app '%s', which the config does not define"):format(
         l.where, link_spec, app), 0)
   end
   local ports = a.class[direction] -- optional list of port names a class accepts
   if type(ports) == "table" then
      for _, p in ipairs(ports) do if p == port then return end end
      error(("%s: link '%s': app '%s' has no %s port '%s' (it has: %s)"):format(
         l.where, link_spec, app, direction == "inputs" and "input" or "output", port,
         #ports > 0 and table.concat(ports, ", ") or "none"), 0)
   end
end

-- Checks that every link joins defined apps on ports they accept; errors name the config line.
function M.check (c)
   if not is_config(c) then error("not a config (make one with config.new())", 2) end
   for spec, l in pairs(c.links) do
      check_port(c, spec, l, l.from_app, l.from_port, "outputs")
      check_port(c, spec, l, l.to_app, l.to_port, "inputs")
   end
end

function M.selftest ()
   print("selftest: core.config")
   local Class = {new = function () return {} end, inputs = {"input"}}
   local c = M.new()
   M.app(c, "a", Class)
   M.app(c, "b", Class, {first = true})
   -- Defined again: the later definition wins (Snabb's semantics).
   local Other = {new = function () return {} end, inputs = {"input"}}
   M.app(c, "b", Other, {second = true})
   assert(c.apps.b.class == Other and c.apps.b.arg.second and not c.apps.b.arg.first)
   M.link(c, "a.output->b.input")
   assert(c.links["a.output -> b.input"])
   local ok, err = pcall(M.link, c, "a.output -> b.input")
   assert(not ok and err:match("duplicate link"), err)
   ok, err = pcall(M.link, c, "a.output -> b.other")
   assert(not ok and err:match("already feeds"), err)
   -- A link removed by hand frees its ports.
   c.links["a.output -> b.input"] = nil
   M.link(c, "a.output -> b.other")
   ok, err = pcall(M.link, c, "b.output -> b.other")
   assert(not ok and err:match("input b.other is already fed by 'a.output %-> b.other'"), err)
   c.links["a.output -> b.other"] = nil
   M.link(c, "a.output -> b.input")
   ok, err = pcall(M.link, c, "a.output b.input")
   assert(not ok and err:match("is not a link"), err)
   ok, err = pcall(M.app, c, "x", nil)
   assert(not ok and err:match("unknown app class"), err)
   ok, err = pcall(M.app, c, "n", {native = "basic.NativeSink"}, {size = 1})
   assert(not ok and err:match("app 'n': basic.NativeSink takes no argument, got {size = 1}$"), err)
   M.check(c)
   M.link(c, "b.output -> nosuch.input")
   ok, err = pcall(M.check, c)
   assert(not ok and err:match("nosuch"), err)
   c.links["b.output -> nosuch.input"] = nil
   M.link(c, "b.output -> a.wrong")
   ok, err = pcall(M.check, c)
   assert(not ok and err:match("no input port 'wrong' %(it has: input%)"), err)
   -- Snabb's: arguments parsed at config.app against the class's config (a string is Lua source
   -- for a table), canonical links, the graph in dot.
   local Conf = {new = function () return {} end, config = {size = {default = 60}, name = {required = true}}}
   local d = M.new()
   M.app(d, "x", Conf, {name = "a"})
   assert(d.apps.x.arg.size == 60 and d.apps.x.arg.name == "a")
   M.app(d, "y", Conf, '{name = "b", size = 64}')
   assert(d.apps.y.arg.size == 64 and d.apps.y.arg.name == "b")
   ok, err = pcall(M.app, d, "z", Conf, {size = 1})
   assert(not ok and err:match("config%.lua:%d+: app 'z': missing required parameter 'name'"), err)
   assert(M.parse_app_arg(nil, {size = {default = 1}}).size == 1)
   assert(M.canonical_link(" x.out->y.in ") == "x.out -> y.in")
   assert(not pcall(M.canonical_link, "x.out y.in"))
   M.link(d, "x.out -> y.in")
   assert(M.graphviz(d) == 'digraph config {\n  x -> y [taillabel="out" headlabel="in"]\n}\n', M.graphviz(d))
   print("selftest: core.config ok")
end

return M
