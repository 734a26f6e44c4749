// The LuaJIT VM's lifecycle: one state per process, the embedded module loader, and the entry point
// through which C++ hands control to a Lua program.
#pragma once
#include <luajit-2.1/lua.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace snabb::vm {

// A Lua error that escaped to C++: the message, with traceback where one was taken.
struct LuaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class LuaVm {
 public:
  LuaVm();
  ~LuaVm();
  LuaVm(const LuaVm&) = delete;
  LuaVm& operator=(const LuaVm&) = delete;
  lua_State* state() const { return L_.get(); }
  // Calls require(module)[function](args...) and returns its integer result (0 if none).
  int call(const char* module, const char* function, const std::vector<std::string>& args);
  // Runs a chunk of Lua source; throws LuaError.
  void run(std::string_view code, const char* chunkname = "=(c++)");

 private:
  std::unique_ptr<lua_State, decltype(&lua_close)> L_;
};

// Pushes debug.traceback-with-message for use as lua_pcall's error handler.
void push_traceback_handler(lua_State* L);

}  // namespace snabb::vm
