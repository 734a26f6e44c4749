// snabb.runtime (runtime_binding.h): the engine's graph set from Lua (Lua apps behind LuaApp,
// native apps by handle), engine runs and breaths, the clock and the safety nets' functions.
#include "vm/runtime_binding.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/clock.h"
#include "runtime/engine.h"
#include "runtime/native_app.h"
#include "vm/lua_app.h"
#include "vm/safety.h"
#include "vm/vm.h"

namespace snabb::vm {
namespace {

using runtime::App;
using runtime::AppNode;
using runtime::Link;

// Apps of the current graph: Lua apps are rebuilt by every set_graph, native apps live until
// native_delete.
std::vector<std::unique_ptr<LuaApp>> lua_apps;
std::map<int, std::unique_ptr<App>> native_apps;
int next_native_handle = 1;

// Addresses of FFI objects arrive as numbers (tonumber(ffi.cast("uintptr_t", ptr))).
template <typename T>
T* address_field(lua_State* L, int index) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(lua_tonumber(L, index)));
}

std::vector<Link*> link_list(lua_State* L, int node_index, const char* field) {
  std::vector<Link*> links;
  lua_getfield(L, node_index, field);
  const int n = static_cast<int>(lua_objlen(L, -1));
  for (int i = 1; i <= n; ++i) {
    lua_rawgeti(L, -1, i);
    links.push_back(address_field<Link>(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return links;
}

// set_graph{ {name=, app=TABLE | native=HANDLE, stats=ADDR, inputs={ADDR...}, outputs={...},
//             failed=BOOL, zone=N (vmprofile zone, optional),
//             push={ {links={ADDR...}, method=FUNCTION, link=LINK}, ... } (a Lua app's push
//             entries in call order: method(app, link); without method: c_push or the native
//             app's push),
//             c_pull=ADDR, c_push=ADDR, c_arg=ADDR (a Lua app's methods in C, optional)}, ... }
// in breath order.
int set_graph(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  // The engine is iterating the graph's nodes during a run: replacing them would pull them from
  // under it.
  if (LuaApp::running()) return luaL_error(L, "set_graph: called during an engine run");
  std::vector<AppNode> nodes;
  std::vector<std::unique_ptr<LuaApp>> apps;
  const int n = static_cast<int>(lua_objlen(L, 1));
  for (int i = 1; i <= n; ++i) {
    lua_rawgeti(L, 1, i);
    const int node_index = lua_gettop(L);
    AppNode node;
    lua_getfield(L, node_index, "name");
    node.name = luaL_checkstring(L, -1);
    lua_getfield(L, node_index, "stats");
    node.stats = address_field<app_stats>(L, -1);
    lua_getfield(L, node_index, "failed");
    node.failed = lua_toboolean(L, -1);
    lua_getfield(L, node_index, "zone");
    node.profile_zone = static_cast<int>(lua_tointeger(L, -1));
    LuaApp* lua_app = nullptr;
    lua_getfield(L, node_index, "native");
    if (lua_isnumber(L, -1)) {
      auto it = native_apps.find(static_cast<int>(lua_tointeger(L, -1)));
      if (it == native_apps.end()) return luaL_error(L, "set_graph: stale native app handle");
      node.app = it->second.get();
    } else {
      lua_getfield(L, node_index, "app");
      luaL_checktype(L, -1, LUA_TTABLE);
      apps.push_back(std::make_unique<LuaApp>(L, -1));
      lua_getfield(L, node_index, "c_pull");
      lua_getfield(L, node_index, "c_push");
      lua_getfield(L, node_index, "c_arg");
      apps.back()->set_c_methods(reinterpret_cast<app_c_method>(address_field<void>(L, -3)),
                                 reinterpret_cast<app_c_method>(address_field<void>(L, -2)),
                                 address_field<void>(L, -1));
      node.app = lua_app = apps.back().get();
    }
    node.inputs = link_list(L, node_index, "inputs");
    node.outputs = link_list(L, node_index, "outputs");
    lua_getfield(L, node_index, "push");
    const int push_index = lua_gettop(L);
    const int entries =
        lua_istable(L, push_index) ? static_cast<int>(lua_objlen(L, push_index)) : 0;
    for (int e = 1; e <= entries; ++e) {
      lua_rawgeti(L, push_index, e);
      const int entry_index = lua_gettop(L);
      node.push_entries.push_back({link_list(L, entry_index, "links")});
      lua_getfield(L, entry_index, "method");
      lua_getfield(L, entry_index, "link");
      if (lua_app && lua_isfunction(L, -2)) lua_app->add_push_entry(L, -2, -1);
      lua_settop(L, entry_index - 1);
    }
    node.app->set_links(node.inputs, node.outputs);
    nodes.push_back(std::move(node));
    lua_settop(L, node_index - 1);
  }
  runtime::engine().set_graph(std::move(nodes));
  lua_apps = std::move(apps);  // the old Lua apps are released only now that nothing uses them
  return 0;
}

// Pushes true, or false, app, method, message after a failure.
int push_run_result(lua_State* L, bool ok) {
  if (ok) {
    lua_pushboolean(L, 1);
    return 1;
  }
  const runtime::AppFailure& f = runtime::engine().last_failure();
  lua_pushboolean(L, 0);
  lua_pushstring(L, f.app.c_str());
  lua_pushstring(L, f.method.c_str());
  lua_pushstring(L, f.message.c_str());
  return 4;
}

// A C function may use at most LUAI_MAXCSTACK (8,000) stack slots, and a run takes 2 per app it
// puts there and 2 per push entry: apps get stack slots until this many are used, the others are
// called through the registry (2,666 apps ended in "stack overflow" when every app had its slots).
constexpr int kSlotsOnStack = 6000;

// run(deadline_seconds, busywait, hz): breathes until the monotonic clock passes the deadline
// (hz > 0: that many breaths a second).
// For the length of a run: one error handler for every call, and the first Lua apps' objects,
// methods and push entries' links (kSlotsOnStack slots) on L's stack (lua_apps does not change
// during a run: set_graph comes between runs).
class RunScope {
 public:
  explicit RunScope(lua_State* L) : L_(L), top_(lua_gettop(L)) {
    push_traceback_handler(L);
    LuaApp::set_running_thread(L, lua_gettop(L));
    int slots = 0;
    for (auto& app : lua_apps) {
      slots += app->stack_slots();
      if (slots > kSlotsOnStack) break;
      app->push_for_run(L);
    }
    luaL_checkstack(L, LUA_MINSTACK, "engine run");  // room for each call's method and self
  }
  ~RunScope() {
    for (auto& app : lua_apps) app->end_run();
    LuaApp::set_running_thread(nullptr, 0);
    lua_settop(L_, top_);
  }
  RunScope(const RunScope&) = delete;
  RunScope& operator=(const RunScope&) = delete;

 private:
  lua_State* L_;
  int top_;
};

int run(lua_State* L) {
  const double deadline = luaL_checknumber(L, 1);
  const bool busywait = lua_isnone(L, 2) || lua_toboolean(L, 2);
  const double hz = luaL_optnumber(L, 3, 0);
  bool ok;
  {
    RunScope scope(L);
    ok = runtime::engine().run_until(static_cast<uint64_t>(deadline * 1e9), busywait, hz);
  }
  return push_run_result(L, ok);
}

// breathe(): one breath; returns true and the packets it moved, or the failure as run() does.
int breathe(lua_State* L) {
  runtime::engine().clear_failure();
  uint64_t moved = 0;
  {
    RunScope scope(L);
    moved = runtime::engine().breathe();
  }
  const bool ok = !runtime::engine().failed();
  const int n = push_run_result(L, ok);
  if (!ok) return n;
  lua_pushnumber(L, static_cast<lua_Number>(moved));
  return n + 1;
}

// running(): whether an engine run (or breath) is under way, i.e. we are inside an app's call.
int running(lua_State* L) {
  lua_pushboolean(L, LuaApp::running() != nullptr);
  return 1;
}

int native_new(lua_State* L) {
  const char* class_name = luaL_checkstring(L, 1);
  std::unique_ptr<App> app = runtime::make_native_app(class_name);
  if (!app) return luaL_error(L, "no native app class '%s'", class_name);
  native_apps[next_native_handle] = std::move(app);
  lua_pushinteger(L, next_native_handle++);
  return 1;
}

int native_delete(lua_State* L) {
  native_apps.erase(static_cast<int>(luaL_checkinteger(L, 1)));
  return 0;
}

int now(lua_State* L) {
  lua_pushnumber(L, static_cast<double>(runtime::monotonic_ns()) / 1e9);
  return 1;
}

void release_apps() {
  runtime::engine().set_graph({});
  lua_apps.clear();
  native_apps.clear();
}

}  // namespace

NativeModule runtime_binding() { return {"snabb.runtime", luaopen_snabb_runtime, release_apps}; }

}  // namespace snabb::vm

extern "C" int luaopen_snabb_runtime(lua_State* L) {
  using namespace snabb::vm;
  static const luaL_Reg functions[] = {{"set_graph", set_graph},
                                       {"run", run},
                                       {"breathe", breathe},
                                       {"native_new", native_new},
                                       {"native_delete", native_delete},
                                       {"now", now},
                                       {"catch_signals", catch_signals},
                                       {"stop_requested", stop_requested},
                                       {"running", running},
                                       {"stop_signal", stop_signal},
                                       {"safety_install", safety_install},
                                       {"set_watchdog", set_watchdog},
                                       {nullptr, nullptr}};
  lua_newtable(L);
  luaL_register(L, nullptr, functions);
  return 1;
}
