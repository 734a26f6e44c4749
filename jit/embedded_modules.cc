#include "jit/embedded_modules.h"

#include <map>
#include <string>

namespace snabb::vm {
namespace {

std::map<std::string, EmbeddedModule, std::less<>>& registry() {
  static std::map<std::string, EmbeddedModule, std::less<>> modules;
  return modules;
}

}  // namespace

EmbeddedModuleRegistrar::EmbeddedModuleRegistrar(const char* name, const unsigned char* bytecode,
                                                 size_t size) {
  registry()[name] = {name, bytecode, size};
}

const EmbeddedModule* find_embedded_module(std::string_view name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

}  // namespace snabb::vm

extern "C" const char* snabb_embedded_module(int index, const unsigned char** bytecode,
                                             size_t* size) {
  for (const auto& [name, module] : snabb::vm::registry()) {
    if (index-- == 0) {
      *bytecode = module.bytecode;
      *size = module.size;
      return module.name;
    }
  }
  return nullptr;
}
