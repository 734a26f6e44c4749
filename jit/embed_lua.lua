-- Build step: compiles Lua modules to LuaJIT bytecode (keeping debug info) and writes a C++ source
-- that registers them with jit/embedded_modules.h.
-- Usage: luajit embed_lua.lua OUT.cc MODULE=PATH...
local out_path = assert(arg[1], "usage: embed_lua.lua OUT.cc MODULE=PATH...")
local out = {'#include "jit/embedded_modules.h"\n', "namespace {\n"}
for i = 2, #arg do
   local name, path = arg[i]:match("^([^=]+)=(.+)$")
   local chunk, err = loadfile(path)
   if not chunk then io.stderr:write(err, "\n") os.exit(1) end
   local bc = string.dump(chunk) -- LuaJIT keeps debug info unless asked to strip
   local bytes = {}
   for j = 1, #bc do bytes[j] = bc:byte(j) end
   out[#out+1] = ("const unsigned char m%d[] = {%s};\n"):format(i, table.concat(bytes, ","))
   out[#out+1] = ("const snabb::vm::EmbeddedModuleRegistrar r%d(%q, m%d, sizeof m%d);\n")
      :format(i, name, i, i)
end
out[#out+1] = "}  // namespace\n"
local f = assert(io.open(out_path, "w"))
f:write(table.concat(out))
f:close()
