#include "vm/lua_app.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "vm/vm.h"

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
  lua_pushvalue(L, self_index);
  self_ = luaL_ref(L, LUA_REGISTRYINDEX);
}

LuaApp::~LuaApp() {
  for (int ref : {self_, pull_}) luaL_unref(owner_, LUA_REGISTRYINDEX, ref);
  for (const Entry& e : entries_) {
    luaL_unref(owner_, LUA_REGISTRYINDEX, e.method);
    luaL_unref(owner_, LUA_REGISTRYINDEX, e.link);
  }
}

void LuaApp::add_push_entry(lua_State* L, int method_index, int link_index) {
  Entry e;
  lua_pushvalue(L, method_index);
  e.method = luaL_ref(L, LUA_REGISTRYINDEX);
  if (!lua_isnil(L, link_index)) {  // (nil: called without it)
    lua_pushvalue(L, link_index);
    e.link = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  entries_.push_back(e);
}

void LuaApp::push_for_run(lua_State* L) {
  luaL_checkstack(L, stack_slots(), "engine run");
  auto push = [L](int ref, int* slot) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    *slot = lua_gettop(L);
  };
  push(self_, &self_slot_);
  push(pull_, &pull_slot_);
  for (Entry& e : entries_) {
    push(e.method, &e.method_slot);
    push(e.link, &e.link_slot);
  }
}

void LuaApp::end_run() {
  self_slot_ = pull_slot_ = 0;
  for (Entry& e : entries_) e.method_slot = e.link_slot = 0;
}

void LuaApp::call(int method_ref, int method_slot, int link_ref, int link_slot) {
  lua_State* L = running_ ? running_ : owner_;
  int handler = running_handler_;
  if (!running_) {
    push_traceback_handler(L);
    handler = lua_gettop(L);
  }
  const int nargs = link_ref == LUA_NOREF ? 1 : 2;
  if (running_ && method_slot) {
    lua_pushvalue(L, method_slot);
    lua_pushvalue(L, self_slot_);
    if (nargs == 2) lua_pushvalue(L, link_slot);
  } else {
    lua_rawgeti(L, LUA_REGISTRYINDEX, method_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, self_);
    if (nargs == 2) lua_rawgeti(L, LUA_REGISTRYINDEX, link_ref);
  }
  const int rc = lua_pcall(L, nargs, 0, handler);
  std::string message;
  if (rc != 0) {
    message = lua_tostring(L, -1) ? lua_tostring(L, -1) : "(non-string error)";
    lua_pop(L, 1);
  }
  if (!running_) lua_pop(L, 1);
  if (rc != 0) throw std::runtime_error(message);
}

}  // namespace snabb::vm
