// control_server: the control server of a running instance (`snabb run`), HTTP/JSON over a Unix
// socket in its run directory (RUNDIR/control, mode 0600, the peer's UID checked with
// SO_PEERCRED) and, when asked, TCP (`snabb run --listen 127.0.0.1:PORT`). Boost.Asio and Beast
// on a thread of its own, never the dataplane's: it answers GET /counters, /metrics and /profile
// itself from the run directory's shared-memory files, and hands every request whose path a Lua
// handler claims (observe/control.lua: /config, /tap...) to a mailbox that engine.main polls
// between slices; the Lua side answers with snabb_control_reply. The client half
// (snabb_control_call) is what `snabb config` and `snabb tap` use. observe/README.md has the
// endpoints and limits.
#pragma once
#include <stdint.h>

#include "runtime/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
enum {
  CONTROL_MAX_BODY = 1048576,  /* a request body above this gets 413 */
  CONTROL_MAX_HEADER = 16384,  /* request line and headers above this get 431 */
  CONTROL_MAX_SESSIONS = 4096, /* connections open at once; more are answered 503 and closed */
  CONTROL_MAX_WAITING = 1024   /* requests waiting for Lua; more are answered 503 */
};
/* A request handed to Lua: valid until the next snabb_control_take. */
struct snabb_control_request {
  uint64_t id;
  const char* method;
  const char* path;  /* the target up to '?' */
  const char* query; /* after '?', or "" */
  const char* body;
  uint64_t body_len;
};
/* Starts the server thread on the Unix socket RUNDIR/control (made afresh, mode 0600) and, with
   tcp_port >= 0, on TCP tcp_host:tcp_port (0: a port the system picks). 0, or -1 (snabb_error:
   e.g. "--listen 127.0.0.1:80: Permission denied"). */
int snabb_control_start(const char* rundir, const char* tcp_host, int tcp_port);
/* The same, GET /counters, /metrics and /profile reading run directory data_dir instead (snabb
   inspect serves another run's). */
int snabb_control_start_for(const char* rundir, const char* data_dir, const char* tcp_host,
                            int tcp_port);
/* The TCP port listened on, 0 when none. */
int snabb_control_tcp_port(void);
/* Stops the thread, closes every connection, removes the socket (requests waiting are dropped). */
void snabb_control_stop(void);
/* Nonzero while requests wait for Lua: a word the server thread writes atomically, for the
   engine's poll (a plain load, no call). */
volatile int32_t* snabb_control_pending(void);
/* Takes the oldest request waiting for Lua into *r: 1, or 0 when none waits. */
int snabb_control_take(struct snabb_control_request* r);
/* The answer to request id (taken). content_type NULL: application/json. Unknown ids (the client
   gave up) are ignored. */
void snabb_control_reply(uint64_t id, int status, const char* content_type, const char* body,
                         uint64_t len);
/* Requests whose path starts with prefix go to Lua (observe.control.handle registers them). */
void snabb_control_route(const char* prefix);
/* Client: sends METHOD target (with body, len bytes) to the server on Unix socket path, waits at
   most timeout_ms; the status (> 0) with the body in *response (free it with
   snabb_control_free), or -1 (snabb_error: "connection refused (PATH)", ...). */
int snabb_control_call(const char* path, const char* method, const char* target, const char* body,
                       uint64_t len, int timeout_ms, char** response, uint64_t* response_len);
void snabb_control_free(char* p);
// END FFI

#ifdef __cplusplus
}

#include <string>
#include <vector>

namespace snabb::control {

// An answer, and whether it goes to Lua instead.
struct Answer {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string allow;  // for 405: the methods the path takes
  bool to_lua = false;
};

// What the server answers to method and target (with body) on its own: /counters, /metrics and
// /profile from run directory rundir, 404/405 with the endpoints, or to_lua for a path with a
// prefix in lua_prefixes. Exposed for the fuzz target (control_fuzz.cc).
Answer route(const std::string& method, const std::string& target, const std::string& rundir,
             const std::vector<std::string>& lua_prefixes);

// A JSON string literal of s (quoted; control characters and invalid UTF-8 bytes escaped).
std::string json_string(const std::string& s);

// Parses raw bytes as one request with the server's limits and answers it as the server would
// (Lua's part answered 200 "{}"), serialised; for the fuzz target.
std::string answer_bytes(const char* data, size_t size, const std::string& rundir);

}  // namespace snabb::control
#endif
