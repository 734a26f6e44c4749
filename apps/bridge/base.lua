-- apps.bridge.base: what Snabb's two bridges (apps.bridge.flooding, apps.bridge.learning) share:
-- their configuration ({ports = {...}, split_horizon_groups = {NAME = {...}}, config = {...}}),
-- ports numbered from 1 (input and output of the same name), each port's split-horizon group
-- (0: a free port) and, per input port, the output links it may flood to: every other port with
-- an output link, except those of its own group.
local M = {}

local bridge = {
   _name = "base bridge",
   config = {
      ports = {default = {}, type = "table", allows = "an array of port names"},
      split_horizon_groups = {type = "table", allows = "a table of group name = {port names}"},
      config = {default = {}, type = "table", allows = "a table of the bridge's own settings"},
   },
}
M.bridge = bridge

-- A new object of `class` (which inherits from bridge) for the parsed conf.
function bridge.new_bridge (class, conf)
   local ports, by_name = {}, {}
   local function add (name, group)
      if type(name) ~= "string" then
         error(("port names must be strings, got %s"):format(require("core.lib").describe(name)), 0)
      end
      if by_name[name] then error(("port '%s' is listed twice"):format(name), 0) end
      ports[#ports + 1] = {name = name, group = group, handle = #ports + 1}
      by_name[name] = ports[#ports]
   end
   for _, name in ipairs(conf.ports) do add(name, 0) end
   local groups = {}
   for name in pairs(conf.split_horizon_groups or {}) do groups[#groups + 1] = name end
   table.sort(groups) -- numbered in name order, whatever pairs() gives
   for g, name in ipairs(groups) do
      local members = conf.split_horizon_groups[name]
      if type(members) ~= "table" or #members == 0 then
         error(("split-horizon group '%s' must be a non-empty array of port names"):format(name), 0)
      end
      for _, port in ipairs(members) do add(port, g) end
   end
   if #ports == 0 then error("no ports: give ports or split_horizon_groups", 0) end
   return setmetatable({_conf = conf, _ports = ports, _port_by_name = by_name, _groups = groups},
                       {__index = class})
end

-- Called by the engine on every link change: each port's links, and each input port's flood list.
function bridge:link ()
   local ports = self._ports
   for _, port in ipairs(ports) do
      port.l_in, port.l_out = self.input[port.name], self.output[port.name]
   end
   for _, src in ipairs(ports) do
      local flood = {}
      for _, dst in ipairs(ports) do
         if dst ~= src and dst.l_out and (src.group == 0 or dst.group ~= src.group) then
            flood[#flood + 1] = dst.l_out
         end
      end
      src.flood = flood
   end
end
bridge.unlink = bridge.link

function bridge:name () return self._name end

function M.selftest ()
   print("selftest: apps.bridge.base")
   local lib = require("core.lib")
   local class = setmetatable({}, {__index = bridge})
   -- Free ports first, then groups in name order; each port's flood list skips itself and its group.
   local b = bridge.new_bridge(class, {ports = {"x", "y"}, split_horizon_groups = {z = {"z1", "z2"}, a = {"a1"}}})
   local names, groups = {}, {}
   for i, port in ipairs(b._ports) do names[i], groups[i] = port.name, port.group end
   assert(table.concat(names, " ") == "x y a1 z1 z2" and table.concat(groups, " ") == "0 0 1 2 2")
   local link_of = {}
   b.input, b.output = {}, {}
   for _, name in ipairs(names) do link_of[name] = {name}; b.input[name], b.output[name] = {}, link_of[name] end
   b.output.y = nil -- y has no output link: nothing floods to it
   b:link()
   local function flood (name)
      local t = {}
      for i, l in ipairs(b._port_by_name[name].flood) do t[i] = l[1] end
      return table.concat(t, " ")
   end
   assert(flood("x") == "a1 z1 z2" and flood("z1") == "x a1" and flood("a1") == "x z1 z2", flood("z1"))
   for _, case in ipairs({{{ports = {"a", "a"}}, "port 'a' is listed twice"},
                          {{ports = {"a"}, split_horizon_groups = {g = {"a"}}}, "port 'a' is listed twice"},
                          {{ports = {1}}, "port names must be strings, got 1"},
                          {{ports = {}}, "no ports"},
                          {{split_horizon_groups = {g = {}}}, "split-horizon group 'g' must be a non-empty array"}}) do
      local conf = lib.parse(case[1], bridge.config)
      local ok, err = pcall(bridge.new_bridge, class, conf)
      assert(not ok and err:find(case[2], 1, true), err)
   end
   print("selftest: apps.bridge.base ok")
end

return M
