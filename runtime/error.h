// The C ABI's one error convention. A C entry point that can fail returns its failure value (NULL,
// or a negative number, as its comment in the header says) and leaves a message saying why, in the
// user's terms, for snabb_error(): one per thread, like DPDK's rte_errno. Nothing is thrown across
// the ABI: a C++ exception unwinding through LuaJIT's frames would lose its message (and skip the
// VM's own cleanup), so c_call catches at the boundary. Lua raises the message with core.lib's
// c_error, as one readable line.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
/* Why the calling thread's last failed C call failed ("" before any did). */
const char* snabb_error(void);
// END FFI

#ifdef __cplusplus
}

#include <exception>
#include <string>

namespace snabb::runtime {

// Sets what snabb_error() says, for a C entry point that returns its failure value itself.
void set_error(std::string message);

// The body of a C entry point: body()'s result, or `failed` with the message of what it threw.
template <typename R, typename F>
R c_call(R failed, F&& body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    set_error(e.what());
  } catch (...) {
    set_error("unknown C++ exception");
  }
  return failed;
}

}  // namespace snabb::runtime
#endif
