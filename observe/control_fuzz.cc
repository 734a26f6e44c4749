// A connection's first request, as raw bytes, through the control server's parsing and routing
// (control_server.h: answer_bytes, the limits and answers a session gives), with the Lua
// handlers' part answered "{}": every input must get one whole HTTP response, never a crash or
// a hang. Seeds: control_fuzz_seeds/ (a request of each endpoint, chunked, over the limit).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "observe/control_server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string out = snabb::control::answer_bytes(reinterpret_cast<const char*>(data), size,
                                                       "/nonexistent-snabb-rundir");
  // "HTTP/1.1 404 Not Found\r\n...\r\n\r\n{...}": a status line, headers, then the body.
  if (out.compare(0, 5, "HTTP/") != 0 || out.find("\r\n\r\n") == std::string::npos) std::abort();
  return 0;
}
