-- The graphs tools/bench-l2 measures with `snabb bench`: snabb bench tools/bench-l2-apps.lua WHICH.
--   tag       Tagger -> Untagger (VID 100)        mux       Tagger -> VlanMux trunk (out: vlan100)
--   learning  learning bridge, ports a and b       flooding  flooding bridge, ports a and b
--   arp       ARP, north to south (static next_mac) nd       nd_light, north to south (remote_mac)
local which = ...
local c = config.new()
local vlan = require("apps.vlan.vlan")
if which == "tag" or which == "mux" then
   config.app(c, "tag", vlan.Tagger, {tag = 100})
   if which == "tag" then
      config.app(c, "untag", vlan.Untagger, {tag = 100})
      config.link(c, "tag.output -> untag.input")
   else
      config.app(c, "mux", vlan.VlanMux)
      config.link(c, "tag.output -> mux.trunk")
   end
elseif which == "learning" or which == "flooding" then
   config.app(c, "bridge", require("apps.bridge." .. which).bridge, {ports = {"a", "b"}})
elseif which == "arp" then
   config.app(c, "arp", require("apps.ipv4.arp").ARP,
              {self_ip = "10.0.0.1", next_mac = "02:00:00:00:00:02", quiet = true})
elseif which == "nd" then
   config.app(c, "nd", require("apps.ipv6.nd_light").nd_light,
              {local_mac = "02:00:00:00:00:01", local_ip = "2001:db8::1", next_hop = "2001:db8::2",
               remote_mac = "02:00:00:00:00:02", quiet = true})
else
   error("bench-l2-apps.lua: unknown graph " .. tostring(which), 0)
end
return c
