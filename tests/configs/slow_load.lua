-- PcapReader -> PcapWriter behind a config that takes as long to load as the test wants, for
-- signals that come while a config loads (tests/safety_test.sh):
--   snabb run slow_load.lua IN OUT MARKER
-- creates MARKER, then waits until MARKER.go exists before it returns its graph.
local ffi = require("ffi")
local pcap = require("apps.pcap.pcap")
ffi.cdef("int usleep(unsigned int usec);")
local input, output, marker = ...
io.open(marker, "w"):close()
repeat
   ffi.C.usleep(10000)
   local go = io.open(marker .. ".go")
until go and go:close()
local c = config.new()
config.app(c, "reader", pcap.PcapReader, input)
config.app(c, "writer", pcap.PcapWriter, output)
config.link(c, "reader.output -> writer.input")
return c
