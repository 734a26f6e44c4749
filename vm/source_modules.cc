// Modules made at require time from the source files of a tree on package.path (source_modules.h):
// what Snabb's build turns into modules of its binary (src/Makefile's rules for .h, .inc, .yang,
// .events and .dasl files, and its binary's lookup, which reads `.` and `-` as `_`), so a Snabb
// tree runs from source beside our snabb.
#include "vm/source_modules.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace snabb::vm {
namespace {

namespace fs = std::filesystem;

// What a module is made of its file.
enum class Made { kCdef, kText, kDasl, kLua };

struct Kind {
  std::string_view suffix;  // of the module's name
  std::string_view ext;     // of its file
  Made made;
};

constexpr Kind kKinds[] = {
    {"_h", ".h", Made::kCdef},       {"_inc", ".inc", Made::kText},
    {"_yang", ".yang", Made::kText}, {"_events", ".events", Made::kText},
    {"", ".dasl", Made::kDasl},      {"", ".lua", Made::kLua},
};

// A name as Snabb's binary looks it up: `.`, `-` and `/` all read as `_`.
std::string flat(std::string_view s) {
  std::string out(s);
  std::replace_if(
      out.begin(), out.end(), [](char c) { return c == '.' || c == '-' || c == '/'; }, '_');
  return out;
}

// The file under dir whose path from dir, less ext, reads as flat_name (entries in name order,
// directories entered only when their name begins it).
std::optional<fs::path> find_flat(const fs::path& dir, std::string_view flat_name,
                                  std::string_view ext, int depth) {
  if (depth > 16) return std::nullopt;
  std::vector<fs::directory_entry> candidates;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::string f = flat(name);
    if (f.size() < flat_name.size() && flat_name.starts_with(f) && flat_name[f.size()] == '_') {
      candidates.push_back(*it);  // a directory on the way, or a file that is not it
    } else if (name.ends_with(ext) && flat(name.substr(0, name.size() - ext.size())) == flat_name) {
      candidates.push_back(*it);
    }
  }
  std::sort(candidates.begin(), candidates.end());
  for (const fs::directory_entry& e : candidates) {
    std::error_code type_ec;
    const std::string name = e.path().filename().string();
    if (e.is_directory(type_ec)) {
      const std::string f = flat(name);
      if (f.size() < flat_name.size() && flat_name.starts_with(f)) {
        if (auto found = find_flat(e.path(), flat_name.substr(f.size() + 1), ext, depth + 1)) {
          return found;
        }
      }
    } else if (name.ends_with(ext) && flat(name.substr(0, name.size() - ext.size())) == flat_name &&
               e.is_regular_file(type_ec)) {
      return e.path();
    }
  }
  return std::nullopt;
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

bool read_file(const char* path, std::string& text) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

// The directories package.path searches for Lua files: each template's part before "?.lua".
std::vector<std::string> lua_roots(lua_State* L) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  const std::string path = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
  lua_pop(L, 2);
  std::vector<std::string> roots;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(';', start);
    if (end == std::string::npos) end = path.size();
    const std::string_view t(path.data() + start, end - start);
    if (t.ends_with("?.lua") && t.find('?') == t.size() - 5) {
      std::string root(t.substr(0, t.size() - 5));
      if (std::find(roots.begin(), roots.end(), root) == roots.end()) roots.push_back(root);
    }
    start = end + 1;
  }
  return roots;
}

// The loader of a module made of a file: upvalue 1 its path, 2 what it is made as; argument 1
// the module's name (as require passes it).
int load_made(lua_State* L) {
  const char* path = lua_tostring(L, lua_upvalueindex(1));
  const auto made = static_cast<Made>(lua_tointeger(L, lua_upvalueindex(2)));
  std::string text;
  if (!read_file(path, text)) return luaL_error(L, "cannot read %s", path);
  switch (made) {
    case Made::kText:
      lua_pushlstring(L, text.data(), text.size());
      return 1;
    case Made::kCdef:
      lua_getglobal(L, "require");
      lua_pushliteral(L, "ffi");
      lua_call(L, 1, 1);
      lua_getfield(L, -1, "cdef");
      lua_pushlstring(L, text.data(), text.size());
      if (lua_pcall(L, 1, 0, 0) != 0) return luaL_error(L, "%s: %s", path, lua_tostring(L, -1));
      lua_newtable(L);
      return 1;
    case Made::kDasl: {
      lua_getglobal(L, "require");
      lua_pushliteral(L, "dynasm");
      if (lua_pcall(L, 1, 1, 0) != 0) {
        return luaL_error(L, "%s: translating it needs DynASM's dynasm.lua on package.path: %s",
                          path, lua_tostring(L, -1));
      }
      lua_getfield(L, -1, "translate_tostring");
      lua_pushstring(L, path);
      lua_createtable(L, 0, 2);
      lua_pushliteral(L, "lua");
      lua_setfield(L, -2, "lang");
      lua_pushboolean(L, 0);
      lua_setfield(L, -2, "comment");
      lua_call(L, 2, 1);
      size_t size = 0;
      const char* lua = lua_tolstring(L, -1, &size);
      const std::string chunkname = std::string("@") + path;
      if (luaL_loadbuffer(L, lua, size, chunkname.c_str()) != 0) return lua_error(L);
      lua_pushvalue(L, 1);
      lua_call(L, 1, 1);
      return 1;
    }
    case Made::kLua:
      break;
  }
  return 0;
}

}  // namespace

int search_source_module(lua_State* L) {
  const std::string name = luaL_checkstring(L, 1);
  const std::vector<std::string> roots = lua_roots(L);
  std::string tried;
  // A kind by the flat name: Snabb's lib.virtio.virtq_device requires "lib.virtio.virtio.h".
  const std::string flat_name = flat(name);
  for (const Kind& kind : kKinds) {
    if (name.size() <= kind.suffix.size() || !flat_name.ends_with(kind.suffix)) continue;
    const std::string stem = name.substr(0, name.size() - kind.suffix.size());
    std::string relative = stem;
    std::replace(relative.begin(), relative.end(), '.', '/');
    relative += kind.ext;
    for (const std::string& root : roots) {
      const fs::path exact = root + relative;
      std::optional<fs::path> found;
      // A plain Lua file at its exact name is the Lua searcher's, which came first.
      if (kind.made != Made::kLua && is_file(exact)) {
        found = exact;
      } else if (stem.find_first_of("_-") != std::string::npos) {
        found = find_flat(root.empty() ? fs::path(".") : fs::path(root), flat(stem), kind.ext, 0);
      }
      if (found) {
        const std::string path = found->string();
        if (kind.made == Made::kLua) {
          if (luaL_loadfile(L, path.c_str()) != 0) {
            return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name.c_str(),
                              path.c_str(), lua_tostring(L, -1));
          }
          return 1;
        }
        lua_pushstring(L, path.c_str());
        lua_pushinteger(L, static_cast<lua_Integer>(kind.made));
        lua_pushcclosure(L, load_made, 2);
        return 1;
      }
      if (kind.made != Made::kLua) tried += "\n\tno file '" + exact.string() + "'";
    }
  }
  lua_pushstring(L, tried.c_str());
  return 1;
}

}  // namespace snabb::vm
