// The LuaJIT VM (vm.h): the Lua state, the searchers require uses (the modules compiled into the
// binary, files on package.path), the C modules its owner preloads, and the error handler every
// call from C++ into Lua uses.
#include "vm/vm.h"

#include "vm/embedded_modules.h"
#include "vm/source_modules.h"

namespace snabb::vm {
namespace {

// Modules compiled into the binary that always win over files of the same name: core.* is the
// runtime (Snabb's own core/*.lua on the path is never loaded, as Snabb never loads its files) and
// jit.* is LuaJIT's library, whose jit.vmdef and jit.bc must match this VM's bytecode and IR
// (Snabb's tree carries RaptorJIT's jit/bc.lua, for another VM).
bool runtime_module(std::string_view name) {
  return name.starts_with("core.") || name.starts_with("jit.");
}

int push_embedded(lua_State* L, const EmbeddedModule& m, const char* name) {
  // The chunk name stored in the bytecode (the source path) is what errors show.
  if (luaL_loadbuffer(L, reinterpret_cast<const char*>(m.bytecode), m.size, name) != 0) {
    return lua_error(L);
  }
  return 1;
}

// package.loaders entry before the file searchers: the runtime's modules compiled into snabb.
int load_runtime(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  const EmbeddedModule* m = runtime_module(name) ? find_embedded_module(name) : nullptr;
  return m ? push_embedded(L, *m, name) : 0;
}

// package.loaders entry after the file searchers: every other module compiled into snabb.
int load_embedded(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  const EmbeddedModule* m = find_embedded_module(name);
  if (!m) {
    lua_pushfstring(L, "\n\tno module '%s' compiled into snabb", name);
    return 1;
  }
  return push_embedded(L, *m, name);
}

// What core.lib's error_message makes of an error value that is not a message (error({}),
// error()): "file:line: error raised with a table instead of a message: {code = 5}", the line
// being the Lua code that raised it (its search skips this function, the handler and `error`, C
// functions all). Configs' errors get the same words.
int describe_error(lua_State* L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "core.lib");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "error_message");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

// The error handler: the message and a traceback. No caller keeps an error value that is not a
// message (each takes the string: an app's push/pull printed "(non-string error)"), so such a
// value is described first.
int traceback(lua_State* L) {
  if (!lua_isstring(L, 1)) {
    lua_pushcfunction(L, describe_error);
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 1, 0) != 0 || !lua_isstring(L, -1)) {
      lua_pop(L, 1);
      lua_pushfstring(L, "error raised with a %s instead of a message", luaL_typename(L, 1));
    }
    lua_replace(L, 1);
  }
  luaL_traceback(L, L, lua_tostring(L, 1), 1);
  return 1;
}

// The require rule (README.md): package.preload; the runtime's modules compiled in (core.*,
// jit.*); files on package.path (Lua's searcher, then modules made of Snabb's sources); the other
// modules compiled in; C libraries (package.cpath).
void install_loaders(lua_State* L, const std::vector<NativeModule>& preload) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "loaders");
  std::vector<int> refs;  // LuaJIT's: preload, Lua files, C libraries, C all-in-one
  const int n = static_cast<int>(lua_objlen(L, -1));
  for (int i = 1; i <= n; ++i) {
    lua_rawgeti(L, -1, i);
    refs.push_back(luaL_ref(L, LUA_REGISTRYINDEX));
  }
  int slot = 0;
  auto put_ref = [&](int ref) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_rawseti(L, -2, ++slot);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
  };
  auto put_function = [&](lua_CFunction f) {
    lua_pushcfunction(L, f);
    lua_rawseti(L, -2, ++slot);
  };
  put_ref(refs[0]);
  put_function(load_runtime);
  put_ref(refs[1]);
  put_function(search_source_module);
  put_function(load_embedded);
  for (size_t i = 2; i < refs.size(); ++i) put_ref(refs[i]);
  lua_pop(L, 1);
  // package.compiled_in(name): the searcher of the modules compiled in alone, for code that needs
  // ours whatever the path holds (core.engine's selftest runs our basic apps in a Snabb tree).
  lua_pushcfunction(L, load_embedded);
  lua_setfield(L, -2, "compiled_in");
  lua_getfield(L, -1, "preload");
  for (const NativeModule& m : preload) {
    lua_pushcfunction(L, m.open);
    lua_setfield(L, -2, m.name);
  }
  lua_pop(L, 2);
}

std::string pop_error(lua_State* L) {
  std::string msg = lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object is not a string)";
  lua_pop(L, 1);
  return msg;
}

}  // namespace

// The handler is made once and kept in the registry: lua_pushcfunction allocates a new function
// object each time, and apps are called millions of times a second (snabb profile showed the
// garbage collector taking ~5% of each app's time).
void push_traceback_handler(lua_State* L) {
  static const char key = 0;
  lua_pushlightuserdata(L, const_cast<char*>(&key));
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushcfunction(L, traceback);
    lua_pushlightuserdata(L, const_cast<char*>(&key));
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
  }
}

LuaVm::LuaVm(std::vector<NativeModule> preload)
    : L_(luaL_newstate(), &lua_close), modules_(std::move(preload)) {
  if (!L_) throw std::runtime_error("LuaJIT: cannot create a Lua state (out of memory)");
  lua_State* L = L_.get();
  luaL_openlibs(L);
  install_loaders(L, modules_);
}

// Modules that hold references into the Lua state (the runtime binding's apps) release them while
// it is still open.
LuaVm::~LuaVm() {
  for (const NativeModule& m : modules_) {
    if (m.close) m.close();
  }
}

int LuaVm::call(const char* module, const char* function, const std::vector<std::string>& args) {
  lua_State* L = L_.get();
  push_traceback_handler(L);
  const int handler = lua_gettop(L);
  lua_getglobal(L, "require");
  lua_pushstring(L, module);
  if (lua_pcall(L, 1, 1, handler) != 0) throw LuaError(pop_error(L));
  lua_getfield(L, -1, function);
  lua_remove(L, -2);
  for (const std::string& a : args) lua_pushlstring(L, a.data(), a.size());
  if (lua_pcall(L, static_cast<int>(args.size()), 1, handler) != 0) throw LuaError(pop_error(L));
  const int result = static_cast<int>(lua_tointeger(L, -1));
  lua_settop(L, handler - 1);
  return result;
}

void LuaVm::run(std::string_view code, const char* chunkname) {
  lua_State* L = L_.get();
  push_traceback_handler(L);
  const int handler = lua_gettop(L);
  if (luaL_loadbuffer(L, code.data(), code.size(), chunkname) != 0 ||
      lua_pcall(L, 0, 0, handler) != 0) {
    std::string msg = pop_error(L);
    lua_settop(L, handler - 1);
    throw LuaError(msg);
  }
  lua_settop(L, handler - 1);
}

}  // namespace snabb::vm
