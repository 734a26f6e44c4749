"""lua_modules: compiles Lua sources into the binary as bytecode (see vm/embedded_modules.h)."""

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
