// Registry of apps written in C++. A native app class is registered under a name (e.g.
// "basic.NativeSink") and a Lua config uses it like any Lua app (see apps/README.md).
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "runtime/engine.h"

namespace snabb::runtime {

using NativeAppFactory = std::function<std::unique_ptr<App>()>;

struct NativeAppRegistrar {
  NativeAppRegistrar(const char* class_name, NativeAppFactory factory);
};

// Returns nullptr for an unknown class name.
std::unique_ptr<App> make_native_app(const std::string& class_name);

}  // namespace snabb::runtime
