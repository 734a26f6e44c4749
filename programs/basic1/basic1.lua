-- snabb basic1 NPACKETS: Source -> Tee -> Sink, the topology of Snabb's `snabbmark basic1`.
-- Packets are counted where Source transmits them; prints packets, seconds and Mpps.
local config = require("core.config")
local engine = require("core.engine")
local link = require("core.link")
local basic = require("apps.basic.basic_apps")
local runtime = require("snabb.runtime")
local argparse = require("argparse")
local cli = require("programs.cli")
local observe = require("observe.observe")

local M = {}

-- For `snabb help` (programs/main.lua finds the command by its folder).
M.summary = "Source -> Tee -> Sink microbenchmark: snabb basic1 NPACKETS"
-- It runs an app graph: stop signals stop it cleanly, caught before it starts.
M.engine = true

local function parser ()
   local p = argparse("snabb basic1", "Source -> Tee -> Sink: packets, seconds and Mpps.")
      :add_help("-h --help")
   p:argument("npackets", "packets for Source to send, e.g. 100e6"):convert(cli.count("NPACKETS"))
   cli.add_observe_options(p)
   return p
end

local function basic1 (npackets)
   local c = config.new()
   config.app(c, "Source", basic.Source)
   config.app(c, "Tee", basic.Tee)
   config.app(c, "Sink", basic.Sink)
   config.link(c, "Source.tx -> Tee.rx")
   config.link(c, "Tee.tx1 -> Sink.rx1")
   config.link(c, "Tee.tx2 -> Sink.rx2")
   engine.configure(c)
   local source_tx = engine.link_table["Source.tx -> Tee.rx"]
   local start = runtime.now()
   engine.main({no_report = true, done = function () return link.stats(source_tx).txpackets >= npackets end})
   local seconds = runtime.now() - start
   local packets = tonumber(link.stats(source_tx).txpackets)
   engine.report()
   print()
   print(("Processed %.1f million packets in %.2f seconds (rate: %.1f Mpps)."):format(
      packets / 1e6, seconds, packets / seconds / 1e6))
   engine.stop()
end

function M.run (args)
   local p = parser()
   local opts = cli.parse(p, args)
   if not opts then return 2 end
   observe.run(cli.observe_options(opts, "snabb basic1"), function () basic1(opts.npackets) end)
   return 0
end

return M
