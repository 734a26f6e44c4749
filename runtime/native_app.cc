#include "runtime/native_app.h"

#include <map>

namespace snabb::runtime {
namespace {

std::map<std::string, NativeAppFactory>& factories() {
  static std::map<std::string, NativeAppFactory> registry;
  return registry;
}

}  // namespace

NativeAppRegistrar::NativeAppRegistrar(const char* class_name, NativeAppFactory factory) {
  factories()[class_name] = std::move(factory);
}

std::unique_ptr<App> make_native_app(const std::string& class_name) {
  auto it = factories().find(class_name);
  return it == factories().end() ? nullptr : it->second();
}

}  // namespace snabb::runtime
