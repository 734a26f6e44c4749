-- Build step: collects the "BEGIN FFI" ... "END FFI" regions of the runtime's C headers into a Lua
-- module that feeds them to ffi.cdef, so C++ and Lua share one definition of every struct.
-- Usage: luajit ffi_cdefs.lua OUT.lua HEADER...
local out_path = assert(arg[1], "usage: ffi_cdefs.lua OUT.lua HEADER...")
local regions = {}
for i = 2, #arg do
   local text = assert(io.open(arg[i])):read("*a")
   local region = text:match("// BEGIN FFI\n(.-)// END FFI")
   if not region then io.stderr:write(arg[i], ": no BEGIN FFI/END FFI region\n") os.exit(1) end
   regions[#regions+1] = "/* " .. arg[i] .. " */\n" .. region
end
local f = assert(io.open(out_path, "w"))
f:write("-- Generated from the runtime's C headers by vm/ffi_cdefs.lua. Do not edit.\n",
        "require('ffi').cdef[==[\n", table.concat(regions), "]==]\n")
f:close()
