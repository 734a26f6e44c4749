"""The build macros of Lua in the binary: lua_modules (Lua compiled in as bytecode, see
vm/embedded_modules.h), ffi_cdefs (C headers' FFI regions for ffi.cdef), native_module (a C++ +
FFI + Lua unit) and snabb_selftest."""

def lua_modules(name, srcs, prefix = None, deps = [], visibility = None):
    """Embeds srcs; "run/run.lua" is required as PREFIX.run.run (PREFIX: the package path).

    Args:
      name: the cc_library to link into the binary.
      srcs: Lua files (labels); their module names come from prefix and the file name.
      prefix: module prefix, e.g. "core" for runtime/*.lua.
      deps: other cc deps.
      visibility: as usual.
    """
    prefix = prefix if prefix != None else native.package_name().replace("/", ".")
    args = []
    for src in srcs:
        path = src.split(":")[-1]
        if not path.endswith(".lua"):
            fail("lua_modules: %s is not a .lua file" % src)
        module = (prefix + "." if prefix else "") + path[:-len(".lua")].replace("/", ".")
        args.append("%s=$(location %s)" % (module, src))
    native.genrule(
        name = name + "_embed",
        srcs = srcs,
        outs = [name + "_embedded.cc"],
        cmd = "luajit $(location //vm:embed_lua.lua) $@ " + " ".join(args),
        tools = ["//vm:embed_lua.lua"],
    )
    native.cc_library(
        name = name,
        srcs = [name + "_embedded.cc"],
        deps = ["//vm:embedded_modules"] + deps,
        alwayslink = True,
        visibility = visibility,
    )

def snabb_selftest(name, modules, deps = []):
    """A test that runs `snabb selftest MODULE...` (each module's selftest() function)."""
    native.sh_test(
        name = name,
        srcs = ["//tests:run_selftest.sh"],
        args = ["$(location //programs:snabb)"] + modules,
        data = ["//programs:snabb"] + deps,
    )

def ffi_cdefs(name, hdrs):
    """Generates NAME.lua, a module that feeds the "BEGIN FFI" regions of hdrs to ffi.cdef.

    Args:
      name: the generated file's base name; list ":NAME.lua" in a lua_modules target's srcs.
      hdrs: C headers with // BEGIN FFI ... // END FFI regions.
    """
    native.genrule(
        name = name + "_gen",
        srcs = hdrs,
        outs = [name + ".lua"],
        cmd = "luajit $(location //vm:ffi_cdefs.lua) $@ $(SRCS)",
        tools = ["//vm:ffi_cdefs.lua"],
    )

def native_module(name, hdrs, srcs = [], lua = [], deps = [], lua_deps = [], cdefs = None,
                  lua_name = None, **kwargs):
    """One native + FFI + Lua unit: C++ with a C ABI, its FFI declarations, and the Lua over them.

    Makes
      NAME       cc_library(srcs, hdrs, deps, **kwargs), alwayslink: Lua calls it through ffi.C
                 only, so no C++ reference would keep it in the binary;
      CDEFS.lua  the "BEGIN FFI" regions of hdrs (ffi_cdefs), required as PREFIX.CDEFS;
      LUA_NAME   lua_modules(lua + [CDEFS.lua], deps = [NAME] + lua_deps).

    Args:
      name: the cc_library.
      hdrs: its headers; those with a "BEGIN FFI" region make CDEFS.lua (all of them must).
      srcs: its sources.
      lua: the Lua modules over it (labels), beside CDEFS.lua.
      deps: the cc_library's deps.
      lua_deps: the Lua modules' other deps (other lua_modules, libraries).
      cdefs: the generated module's name (default NAME_cdefs).
      lua_name: the lua_modules target (default NAME_lua).
      **kwargs: for the cc_library (copts, linkopts).
    """
    cdefs = cdefs or name + "_cdefs"
    native.cc_library(
        name = name,
        srcs = srcs,
        hdrs = hdrs,
        deps = deps,
        alwayslink = True,
        **kwargs
    )
    ffi_cdefs(name = cdefs, hdrs = hdrs)
    lua_modules(
        name = lua_name or name + "_lua",
        srcs = lua + [":" + cdefs + ".lua"],
        deps = [":" + name] + lua_deps,
    )
