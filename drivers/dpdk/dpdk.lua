-- drivers.dpdk.dpdk: DPDK ports as apps (drivers/dpdk/dpdk.h: zero-copy packets).
--   local dpdk = require("drivers.dpdk.dpdk")
--   dpdk.init{args = "-l 1 --no-huge -m 1024 --no-pci", mbufs = 16384}   -- optional; else defaults
--   (DPDK's telemetry on, file prefix snabb-PID: dpdk-telemetry.py -f snabb-PID attaches)
--   config.app(c, "nic", dpdk.DpdkPort, {port = "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap"})
-- A DpdkPort receives from its queue into `output` and sends what arrives on `input`.
local ffi = require("ffi")
require("core.cdefs")
require("drivers.dpdk.cdefs")
require("core.runtime_cdefs") -- snabb_group_dir
for _, decl in ipairs({"int getpid(void);", "int sched_getcpu(void);"}) do pcall(ffi.cdef, decl) end
local lib = require("core.lib")
local C = ffi.C

local M = {}

M.default_mbufs = 16384
M.telemetry = true -- DPDK's telemetry socket; snabb run|bench --no-dpdk-telemetry turns it off

-- Sets up the EAL; errors at `level` (0: the message alone).
local function init (args, mbufs, telemetry, level, processes)
   if C.snabb_dpdk_init(args, mbufs, telemetry and 1 or 0, processes or 1) ~= 0 then
      lib.c_error(nil, level)
   end
end

-- What a program's command line asks for (snabb run/bench --eal "...", --no-dpdk-telemetry):
-- telemetry on or off for whoever sets up the EAL, and eal (EAL options as one string): the
-- options of the EAL when it starts (at a config's dpdk.init, whose args they replace, or at the
-- first DpdkPort, or at M.start()), not now: a supervisor, which runs no graph, stays out of DPDK
-- and passes them to its workers.
function M.setup (eal, telemetry)
   M.telemetry, M.eal = telemetry, eal
end

-- Sets up the EAL and the mbuf pool, once per process. options.args: EAL options as one string
-- (default: this core, no PCI scan, file prefix snabb-PID, hugepages if enough are free, else
-- ordinary memory); options.telemetry: false adds --no-telemetry (default: on unless the command
-- line says --no-dpdk-telemetry);
-- options.mbufs: how many packets DPDK may hold (default 16384; at least C.snabb_dpdk_min_mbufs(),
-- and each port opened checks that the pool can hold what it and the other ports may take);
-- options.processes: how many processes (workers) share the ports, each serving its own queues
-- (DPDK's primary and secondaries: args must let them share the EAL, e.g. "--proc-type=auto
-- --file-prefix NAME --huge-dir DIR"; the primary makes mbufs for all, each process has `mbufs`).
-- With processes > 1 the EAL starts when the first DpdkPort opens, not here: a supervisor that
-- evaluates the same config file to find its workers, and runs no graph, does not join.
function M.init (options)
   local ok, conf = pcall(lib.parse, options, {
      args = {type = "string", default = ""},
      mbufs = {integer = true, min = C.snabb_dpdk_min_mbufs(), max = 2^24, default = M.default_mbufs},
      telemetry = {type = "boolean", default = M.telemetry},
      processes = {integer = true, min = 1, max = 128, default = 1}})
   if not ok then error("dpdk.init: " .. conf, 2) end
   conf.args = M.eal or conf.args
   if conf.processes > 1 then
      if conf.args == "" then
         error(("dpdk.init: processes=%d needs EAL options that let processes share the EAL: "
                .. "args = \"--proc-type=auto --file-prefix NAME --huge-dir DIR ...\" (hugepages; "
                .. "drivers/README.md)"):format(conf.processes), 2)
      end
      M.deferred = conf
      return
   end
   init(conf.args, conf.mbufs, conf.telemetry, 3, conf.processes) -- the caller's file:line
end

-- True in a DPDK secondary process (its ports are the primary's, attached to, never set up here).
function M.secondary () return C.snabb_dpdk_secondary() == 1 end

function M.initialized () return C.snabb_dpdk_initialized() == 1 end

-- Set when this process's EAL is shared with others (dpdk.init{processes = N > 1}): {process =
-- "primary" or "secondary" (DPDK's process type), processes = N, prefix = the EAL's file prefix,
-- pid, lcores = its lcores option's value ("1@1")}. A supervisor's worker writes it to
-- status/NAME.dpdk (programs/run/supervisor.lua).
M.shared = nil

-- Ports are shared by the apps for their queues: opened by the first, closed by the last.
local ports = {} -- [spec] = {id=, users=}

-- Checked by the engine (core.lib.parse); the device's own limits are checked when the port opens.
local MAX_QUEUES = 1024 -- RTE_MAX_QUEUES_PER_PORT
local DpdkPort = {
   inputs = {"input"}, outputs = {"output"},
   config = {port = {required = true, type = "string"},
             queue = {default = 0, integer = true, min = 0, max = MAX_QUEUES - 1},
             rxqs = {default = 1, integer = true, min = 1, max = MAX_QUEUES},
             txqs = {default = 1, integer = true, min = 1, max = MAX_QUEUES},
             ring_size = {default = 1024, integer = true, min = 1, max = 65535, unit = "descriptors"},
             rss = {default = true, type = "boolean"}},
}
M.DpdkPort = DpdkPort

-- The EAL's lcore option for a process of several sharing it, when args name none: each must
-- have lcore ids of its own (DPDK keeps per-lcore state in the shared memory). In a supervisor's
-- worker, lcore id = the worker's index in its group (core.group), running on the CPU the
-- process is on (pinned there by --cpu); elsewhere (processes started by hand) that CPU's
-- number (-l CPU: the lcore id is the CPU's, so two processes on one CPU would share it).
local function lcore_option (args)
   for w in args:gmatch("%S+") do
      if w:match("^%-[lc]") or w:match("^%-%-lcores") then return "" end
   end
   local cpu = math.max(C.sched_getcpu(), 0)
   local dir = C.snabb_group_dir()
   if dir ~= nil then
      local s = require("core.group").stats(ffi.string(dir))
      for i, w in pairs(s and s.workers or {}) do
         if w.pid == C.getpid() then return ("--lcores=%d@%d "):format(i, cpu) end
      end
   end
   return ("-l %d "):format(cpu)
end

-- Starts the EAL now if it is not up: as dpdk.init said (deferred with processes > 1), else with
-- --eal's options or the defaults. Errors are the message alone.
function M.start ()
   if M.initialized() then return end
   local d = M.deferred or {args = M.eal or "", mbufs = M.default_mbufs, telemetry = M.telemetry}
   local args = d.args
   if (d.processes or 1) > 1 then args = lcore_option(args) .. args end
   init(args, d.mbufs, d.telemetry, 0, d.processes)
   M.shared = (d.processes or 1) > 1 and {
      process = M.secondary() and "secondary" or "primary", processes = d.processes,
      prefix = args:match("%-%-file%-prefix[= ](%S+)") or "rte", pid = C.getpid(),
      lcores = args:match("%-%-lcores[= ](%S+)") or args:match("%-l%s*(%S+)")} or nil
end

function DpdkPort:new (conf)
   M.start()
   if conf.queue >= math.max(conf.rxqs, conf.txqs) then
      error(("queue=%d, but the port has %d receive and %d send queues (queue 0 to %d)"):format(
         conf.queue, conf.rxqs, conf.txqs, math.max(conf.rxqs, conf.txqs) - 1), 0)
   end
   local p = ports[conf.port]
   if not p then
      local id = C.snabb_dpdk_port_open(conf.port, conf.rxqs, conf.txqs, conf.ring_size,
                                        conf.rss and 1 or 0)
      if id < 0 then lib.c_error(nil, 0) end
      p = {id = id, users = 0, conf = conf}
      ports[conf.port] = p
   end
   -- The apps of one port's queues share its setup: the first to open it sets it.
   for _, key in ipairs({"rxqs", "txqs", "ring_size", "rss"}) do
      if conf[key] ~= p.conf[key] then
         error(("%s=%s, but port %s is open with %s=%s (the apps of its queues must agree)"):format(
            key, tostring(conf[key]), conf.port, key, tostring(p.conf[key])), 0)
      end
   end
   p.users = p.users + 1
   local q = ffi.new("struct dpdk_queue", {port = p.id, queue = conf.queue})
   -- The device's counters as the app's counter files (apps/NAME/X.counter, runtime/stats.h):
   -- its xstats by DPDK's names and tx_copied (ours), copied once a second by tick, never per
   -- packet. Device-wide: every queue's app of a port has the same.
   local counter = require("core.counter")
   local shm = {tx_copied = {counter}}
   for name in pairs(M.xstats_of(p.id)) do shm[name] = {counter} end
   -- pull and push are C functions (drivers/dpdk/dpdk.h): the engine calls them without Lua.
   return setmetatable({spec = conf.port, id = p.id, queue = conf.queue, q = q,
                        c_pull = C.snabb_dpdk_pull, c_push = C.snabb_dpdk_push, c_arg = q,
                        stats = ffi.new("struct dpdk_port_stats"), shm = shm,
                        counters_due = lib.throttle(1)}, {__index = DpdkPort})
end

-- Once a second: the device's counters into the app's counter files.
function DpdkPort:tick ()
   if not self.counters_due() then return end
   local counter = require("core.counter")
   for name, value in pairs(self:xstats()) do
      if self.shm[name] then counter.set(self.shm[name], value) end
   end
   counter.set(self.shm.tx_copied, self:port_stats().tx_copied)
end

function DpdkPort:link ()
   self.q.input, self.q.output = self.input.input, self.output.output
end

function DpdkPort:port_stats ()
   C.snabb_dpdk_port_stats(self.id, self.stats)
   return self.stats
end

-- The extended statistics of port id: {name = value}.
local xstats_buf = ffi.new("struct dpdk_xstat[512]")
function M.xstats_of (id)
   local result = {}
   for i = 0, C.snabb_dpdk_xstats(id, xstats_buf, 512) - 1 do
      result[ffi.string(xstats_buf[i].name)] = tonumber(xstats_buf[i].value)
   end
   return result
end

-- The device's extended statistics: {name = value}.
function DpdkPort:xstats () return M.xstats_of(self.id) end

function DpdkPort:report ()
   local s = self:port_stats()
   print(("%s: link %s, rx %d packets (missed %d, no mbuf %d, errors %d), tx %d (errors %d, copied %d)"):format(
      self.spec, C.snabb_dpdk_link_up(self.id) == 1 and "up" or "down", tonumber(s.rx_packets),
      tonumber(s.rx_missed), tonumber(s.rx_nombuf), tonumber(s.rx_errors), tonumber(s.tx_packets),
      tonumber(s.tx_errors), tonumber(s.tx_copied)))
   local x, names = self:xstats(), {}
   for name, value in pairs(x) do if value ~= 0 then names[#names+1] = name end end
   table.sort(names)
   local rows = {}
   for i, name in ipairs(names) do rows[i] = {"  " .. name, x[name]} end
   if #rows > 0 then io.stdout:write(lib.table_text(rows[1], {unpack(rows, 2)}, {[2] = true})) end
end

function DpdkPort:stop ()
   local p = ports[self.spec]
   p.users = p.users - 1
   if p.users == 0 then
      C.snabb_dpdk_port_close(self.id)
      ports[self.spec] = nil
   end
end

-- mbufs in the pool and how many are free (all of them once every port and app has stopped).
function M.mbufs () return C.snabb_dpdk_mbufs(), C.snabb_dpdk_mbufs_free() end

return M
