// The C ABI's last error per thread (error.h).
#include "runtime/error.h"

#include <utility>

namespace snabb::runtime {
namespace {
thread_local std::string last_error;
}

void set_error(std::string message) { last_error = std::move(message); }

}  // namespace snabb::runtime

extern "C" const char* snabb_error(void) { return snabb::runtime::last_error.c_str(); }
