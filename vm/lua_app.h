// A Lua app behind the engine's App interface: pull and the push entries (push or a push_link
// method, each with the link it is called with, as Snabb calls them) are called through registry
// references taken once per configuration (copied to stack slots for each engine run), never
// looked up by name per breath. An app may instead hand a method to C (fields c_pull/c_push:
// app_c_method, c_arg: its argument), e.g. a driver whose breath is all C: then the engine calls
// the C function and Lua is not entered at all.
#pragma once
#include <luajit-2.1/lua.hpp>
#include <vector>

#include "runtime/engine.h"

namespace snabb::vm {

class LuaApp : public runtime::App {
 public:
  // Takes references to the app object at self_index and its pull/push methods (nil if absent).
  LuaApp(lua_State* L, int self_index);
  ~LuaApp() override;
  LuaApp(const LuaApp&) = delete;
  LuaApp& operator=(const LuaApp&) = delete;

  bool has_pull() const override { return c_pull_ || pull_ != LUA_NOREF; }
  bool has_push() const override { return c_push_ || !entries_.empty(); }
  void pull() override { c_pull_ ? c_pull_(c_arg_) : call(pull_, pull_slot_, LUA_NOREF, 0); }
  void push() override {
    if (c_push_ || !entries_.empty()) push_entry(0);
  }
  void push_entry(size_t entry) override {
    if (c_push_) return c_push_(c_arg_);
    const Entry& e = entries_[entry];
    call(e.method, e.method_slot, e.link, e.link_slot);
  }
  // Adds a push entry: the function at method_index called as method(self, link) with the value at
  // link_index, or method(self) when that is nil (push entries are called in the order added).
  void add_push_entry(lua_State* L, int method_index, int link_index);

  // Methods handed to C (see above); nullptr for those that are not.
  void set_c_methods(app_c_method pull, app_c_method push, void* arg) {
    c_pull_ = pull;
    c_push_ = push;
    c_arg_ = arg;
  }

  // The Lua thread that is running the engine, and the stack index of the error handler it pushed
  // for the calls (set by snabb.runtime.run for the duration of a run: one handler for all calls).
  static void set_running_thread(lua_State* L, int handler_index) {
    running_ = L;
    running_handler_ = handler_index;
  }
  static lua_State* running() { return running_; }
  // Pushes the app, its methods and push entries' links onto the running thread's stack for the
  // length of a run, so a call copies stack slots instead of looking them up in the registry (an
  // app without slots is called through the registry); end_run forgets them.
  void push_for_run(lua_State* L);
  int stack_slots() const { return 2 + 2 * static_cast<int>(entries_.size()); }
  void end_run();

 private:
  struct Entry {
    int method = LUA_NOREF;
    int link = LUA_NOREF;
    int method_slot = 0;
    int link_slot = 0;
  };
  void call(int method_ref, int method_slot, int link_ref, int link_slot);

  lua_State* owner_;
  int self_ = LUA_NOREF;
  int pull_ = LUA_NOREF;
  int self_slot_ = 0, pull_slot_ = 0;  // stack slots during a run, 0 outside
  std::vector<Entry> entries_;
  app_c_method c_pull_ = nullptr;
  app_c_method c_push_ = nullptr;
  void* c_arg_ = nullptr;
  static inline lua_State* running_ = nullptr;
  static inline int running_handler_ = 0;
};

}  // namespace snabb::vm
