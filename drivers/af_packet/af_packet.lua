-- drivers.af_packet.af_packet: a Linux interface as an app (drivers/af_packet/af_packet.h).
--   config.app(c, "eth", af_packet.AfPacket, {ifname = "eth0", promisc = true})
-- Receives into `output`, sends what arrives on `input`. If the interface goes away, what is sent
-- meanwhile is counted (tx_errors) and dropped, and the port reopens when the interface is back.
local ffi = require("ffi")
require("core.cdefs")
require("drivers.af_packet.cdefs")
local engine = require("core.engine")
local lib = require("core.lib")
local C = ffi.C

local M = {}

local ERRLEN = 512
local errbuf = ffi.new("char[?]", ERRLEN)

local AfPacket = {
   inputs = {"input"}, outputs = {"output"},
   config = {ifname = {required = true}, promisc = {default = false}, fanout = {default = 0}},
}
M.AfPacket = AfPacket

function AfPacket:new (conf)
   local dev = C.snabb_af_packet_open(conf.ifname, conf.promisc and 1 or 0, conf.fanout, errbuf, ERRLEN)
   if dev == nil then error(ffi.string(errbuf), 0) end
   return setmetatable({dev = ffi.gc(dev, C.snabb_af_packet_close), ifname = conf.ifname, up = true,
                        stats = ffi.new("struct af_packet_stats"), check_due = lib.throttle(0.5)},
                       {__index = AfPacket})
end

function AfPacket:pull ()
   local o = self.output.output
   if o then C.snabb_af_packet_rx(self.dev, o) end
end

function AfPacket:push ()
   C.snabb_af_packet_tx(self.dev, self.input.input)
end

-- Twice a second: is the interface still there (or back)? Also folds in the kernel's drop count.
function AfPacket:tick ()
   if not self.check_due() then return end
   local up = C.snabb_af_packet_check(self.dev) == 1
   if up ~= self.up then
      engine.log(("af_packet: interface %s %s"):format(self.ifname, up and "is back" or "is gone; dropping what is sent to it until it returns"))
      self.up = up
   end
end

function AfPacket:port_stats ()
   C.snabb_af_packet_stats(self.dev, self.stats)
   return self.stats
end

function AfPacket:report ()
   local s = self:port_stats()
   print(("%s: rx %d packets (kernel drops %d), tx %d (errors %d), reopened %d times%s"):format(
      self.ifname, tonumber(s.rx_packets), tonumber(s.rx_kernel_drops), tonumber(s.tx_packets),
      tonumber(s.tx_errors), tonumber(s.reopened), s.down == 1 and ", now gone" or ""))
end

function AfPacket:stop ()
   C.snabb_af_packet_close(ffi.gc(self.dev, nil))
end

return M
