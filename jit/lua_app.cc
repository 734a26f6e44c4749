#include "jit/lua_app.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "jit/vm.h"

namespace snabb::vm {
namespace {

int ref_method(lua_State* L, int self_index, const char* name) {
  lua_getfield(L, self_index, name);
  if (!lua_isfunction(L, -1)) {
    lua_pop(L, 1);
    return LUA_NOREF;
  }
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

}  // namespace

LuaApp::LuaApp(lua_State* L, int self_index) : owner_(L) {
  self_index = self_index < 0 ? lua_gettop(L) + self_index + 1 : self_index;
  pull_ = ref_method(L, self_index, "pull");
  push_ = ref_method(L, self_index, "push");
  lua_pushvalue(L, self_index);
  self_ = luaL_ref(L, LUA_REGISTRYINDEX);
}

LuaApp::~LuaApp() {
  for (int ref : {self_, pull_, push_}) luaL_unref(owner_, LUA_REGISTRYINDEX, ref);
}

void LuaApp::push_for_run(lua_State* L) {
  luaL_checkstack(L, 3, "engine run");
  for (auto [ref, slot] :
       {std::pair{self_, &self_slot_}, {pull_, &pull_slot_}, {push_, &push_slot_}}) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    *slot = lua_gettop(L);
  }
}

void LuaApp::call(int method_ref, int method_slot) {
  lua_State* L = running_ ? running_ : owner_;
  int handler = running_handler_;
  if (!running_) {
    push_traceback_handler(L);
    handler = lua_gettop(L);
  }
  if (running_ && method_slot) {
    lua_pushvalue(L, method_slot);
    lua_pushvalue(L, self_slot_);
  } else {
    lua_rawgeti(L, LUA_REGISTRYINDEX, method_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, self_);
  }
  const int rc = lua_pcall(L, 1, 0, handler);
  std::string message;
  if (rc != 0) {
    message = lua_tostring(L, -1) ? lua_tostring(L, -1) : "(non-string error)";
    lua_pop(L, 1);
  }
  if (!running_) lua_pop(L, 1);
  if (rc != 0) throw std::runtime_error(message);
}

}  // namespace snabb::vm
