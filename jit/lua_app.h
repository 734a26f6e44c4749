// A Lua app behind the engine's App interface: pull/push are called through registry references
// taken once per configuration, never looked up by name per breath.
#pragma once
#include <luajit-2.1/lua.hpp>

#include "runtime/engine.h"

namespace snabb::jit {

class LuaApp : public runtime::App {
 public:
  // Takes references to the app object at self_index and its pull/push methods (nil if absent).
  LuaApp(lua_State* L, int self_index);
  ~LuaApp() override;
  LuaApp(const LuaApp&) = delete;
  LuaApp& operator=(const LuaApp&) = delete;

  bool has_pull() const override { return pull_ != LUA_NOREF; }
  bool has_push() const override { return push_ != LUA_NOREF; }
  void pull() override { call(pull_); }
  void push() override { call(push_); }

  // The Lua thread that is running the engine (set by snabb.core.run for the duration of a run).
  static void set_running_thread(lua_State* L) { running_ = L; }

 private:
  void call(int method_ref);

  lua_State* owner_;
  int self_ = LUA_NOREF;
  int pull_ = LUA_NOREF;
  int push_ = LUA_NOREF;
  static inline lua_State* running_ = nullptr;
};

}  // namespace snabb::jit
