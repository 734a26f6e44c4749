-- snabb tests/dpdk_check.lua ring|null|queues|copy|exhaust|nombufs: DPDK virtual devices in a graph for a while; the
-- link counters add up, the port's counters match the apps', and every mbuf is back after stop.
local dpdk = require("drivers.dpdk.dpdk")
local basic = require("apps.basic.basic_apps")
local mode = ...
local function check (ok, ...) if not ok then error(string.format(...), 0) end end
local function links_add_up ()
   for _, l in ipairs(engine.link_stats()) do
      check(l.txpackets == l.rxpackets + l.queued + l.txdrop, "link %s does not add up", l.link)
   end
end
if mode == "nombufs" then
   -- More mbufs than the EAL has memory for: one message saying so.
   local ok, err = pcall(dpdk.init, {mbufs = 200000, args = "-l 0 --no-pci --no-huge --no-shconf "
                                        .. "--no-telemetry -m 128 --log-level=error"})
   check(not ok and err:match("no memory for 200000 mbufs"), "init: %s", tostring(err))
   print("dpdk_check nombufs: " .. err)
   return
end
-- A packet made before DPDK starts is an ordinary slot, not an mbuf: sending it copies it.
local early = packet.from_string(string.rep("\171", 60))
dpdk.init{mbufs = 8192}
local total = dpdk.mbufs()
if mode == "queues" then
   -- Two receive queues of one port, an app each: the device's per-queue counts are the apps'.
   local c = config.new()
   for q = 0, 1 do
      config.app(c, "nic" .. q, dpdk.DpdkPort, {port = "net_null0", queue = q, rxqs = 2, txqs = 2})
      config.app(c, "sink" .. q, basic.Sink)
      config.link(c, ("nic%d.output -> sink%d.input"):format(q, q))
   end
   engine.configure(c)
   engine.main({duration = 0.5})
   links_add_up()
   local x, s = engine.app_table.nic0:xstats(), engine.app_table.nic0:port_stats()
   local out = {}
   for _, a in ipairs(engine.app_stats()) do out[a.name] = a.packets_out end
   check(x.rx_q0_packets == out.nic0 and x.rx_q1_packets == out.nic1 and out.nic0 > 1e6 and out.nic1 > 1e6,
         "queues: device %s/%s, apps %d/%d", tostring(x.rx_q0_packets), tostring(x.rx_q1_packets), out.nic0, out.nic1)
   check(s.rx_packets == out.nic0 + out.nic1, "port rx %d", tonumber(s.rx_packets))
   engine.stop()
   local _, free = dpdk.mbufs()
   check(free == total, "%d of %d mbufs back after stop", free, total)
   print(("dpdk_check queues: two queues, %d and %d packets, counted alike by the device"):format(out.nic0, out.nic1))
   return
end
if mode == "exhaust" then
   -- An app that keeps every packet: the pool runs dry, the device counts what it could not receive,
   -- nothing crashes, and every mbuf comes back once the app is stopped.
   local Hoard = {}
   function Hoard:new () return setmetatable({kept = {}}, {__index = Hoard}) end
   function Hoard:push ()
      local i = self.input.input
      while not link.empty(i) do table.insert(self.kept, link.receive(i)) end
   end
   function Hoard:stop () for _, p in ipairs(self.kept) do packet.free(p) end end
   local c = config.new()
   config.app(c, "nic", dpdk.DpdkPort, {port = "net_null0"})
   config.app(c, "hoard", Hoard)
   config.link(c, "nic.output -> hoard.input")
   engine.configure(c)
   engine.main({duration = 0.3})
   local s = engine.app_table.nic:port_stats()
   local kept = #engine.app_table.hoard.kept
   -- (net_null does not count failed receives in rx_nombuf; devices that do, do.)
   check(kept == total and s.rx_packets == total, "kept %d of %d mbufs", kept, total)
   engine.stop()
   local _, free = dpdk.mbufs()
   check(free == total, "%d of %d mbufs back after stop", free, total)
   print(("dpdk_check exhaust: all %d mbufs held, receiving went on without them, all back after stop"):format(total))
   return
end
if mode == "copy" then
   local Once = {}
   function Once:new () return setmetatable({}, {__index = Once}) end
   function Once:pull ()
      if early then link.transmit(self.output.output, early) early = nil end
   end
   local Keep = {}
   function Keep:new () return setmetatable({got = {}}, {__index = Keep}) end
   function Keep:push ()
      local i = self.input.input
      while not link.empty(i) do
         local p = link.receive(i)
         table.insert(self.got, packet.tostring(p))
         packet.free(p)
      end
   end
   local c = config.new()
   config.app(c, "once", Once)
   config.app(c, "nic", dpdk.DpdkPort, {port = "net_ring0"})
   config.app(c, "keep", Keep)
   config.link(c, "once.output -> nic.input")
   config.link(c, "nic.output -> keep.input")
   engine.configure(c)
   engine.main({duration = 0.2})
   local got, s = engine.app_table.keep.got, engine.app_table.nic:port_stats()
   check(#got == 1 and got[1] == string.rep("\171", 60), "copied packet: %d received", #got)
   check(s.tx_copied == 1, "tx_copied %d", tonumber(s.tx_copied))
   engine.stop()
   print("dpdk_check copy: a packet from before init went out as a copy, byte for byte")
   return
end
local c = config.new()
if mode == "ring" then
   -- net_ring0 is a loopback: what is sent comes back.
   config.app(c, "source", basic.Source, {size = 60})
   config.app(c, "nic", dpdk.DpdkPort, {port = "net_ring0"})
   config.app(c, "sink", basic.Sink)
   config.link(c, "source.output -> nic.input")
   config.link(c, "nic.output -> sink.input")
else
   c = dofile("examples/dpdk_forward.lua")
end
engine.configure(c)
engine.main({duration = 2})
links_add_up()
if mode == "ring" then
   -- Stop sending and let the ring drain, then every packet sent has come back.
   local drain = config.new()
   config.app(drain, "nic", dpdk.DpdkPort, {port = "net_ring0"})
   config.app(drain, "sink", basic.Sink)
   config.link(drain, "nic.output -> sink.input")
   engine.configure(drain)
   engine.main({duration = 0.2})
   links_add_up()
   local s = engine.app_table.nic:port_stats()
   local sink = engine.link_table["nic.output -> sink.input"]
   check(s.rx_packets == s.tx_packets and s.tx_packets > 1e6, "ring: sent %d, received %d",
         tonumber(s.tx_packets), tonumber(s.rx_packets))
   check(link.stats(sink).rxpackets == s.rx_packets, "sink got %d of %d", tonumber(link.stats(sink).rxpackets),
         tonumber(s.rx_packets))
else
   for _, name in ipairs({"p0", "p1"}) do
      local s = engine.app_table[name]:port_stats()
      local app
      for _, a in ipairs(engine.app_stats()) do if a.name == name then app = a end end
      check(s.rx_packets == app.packets_out and s.tx_packets == app.packets_in and s.rx_packets > 1e6,
            "%s: port rx %d tx %d, app out %d in %d", name, tonumber(s.rx_packets), tonumber(s.tx_packets),
            app.packets_out, app.packets_in)
   end
end
engine.stop()
local _, free = dpdk.mbufs()
check(free == total, "%d of %d mbufs back in the pool after stop", free, total)
print(("dpdk_check %s: counters add up, %d of %d mbufs free after stop"):format(mode, free, total))
