-- core.clib_h: the libc functions Snabb's code calls through ffi.C without declaring them (Snabb
-- declares them at start-up from its core/clib.h; programs/main.lua requires this module then, so
-- the same code runs here), and nop(). Return types are Snabb's (read, write, pread, pwrite,
-- memcmp and readlink give Lua numbers, not 64-bit cdata); argument types are libc's own, so that
-- sizes and offsets pass whole. Plain function declarations only: LuaJIT keeps the first of two
-- declarations of a function, so this coexists with ljsyscall's and any other library's.
local ffi = require("ffi")

ffi.cdef[[
unsigned int sleep(unsigned int seconds);
int usleep(unsigned int usec);
unsigned int alarm(unsigned int seconds);
unsigned int ualarm(unsigned int usecs, unsigned int interval);
void *memcpy(void *dest, const void *src, size_t n);
void *memset(void *s, int c, size_t n);
int memcmp(const void *s1, const void *s2, size_t n);
void *memmove(void *dest, const void *src, size_t n);
char *strncpy(char *dest, const char *src, size_t n);
int strncasecmp(const char *s1, const char *s2, size_t n);
int read(int fd, void *buf, size_t count);
int write(int fd, const void *buf, size_t count);
int fork(void);
int close(int fd);
int pread(int fd, void *buf, size_t count, int64_t offset);
int pwrite(int fd, const void *buf, size_t count, int64_t offset);
void *malloc(size_t size);
int readlink(const char *path, char *buf, size_t bufsiz);
char *dirname(char *path);
char *basename(char *path);
int inet_pton(int af, const char *src, void *dst);
const char *inet_ntop(int af, const void *src, char *dst, unsigned int size);
uint16_t htons(uint16_t);
uint16_t ntohs(uint16_t);
uint32_t htonl(uint32_t);
uint32_t ntohl(uint32_t);
void nop();
]]

local M = {}

function M.selftest ()
   print("selftest: core.clib_h")
   require("core.lib_h")
   local C = ffi.C
   assert(C.htons(0x1234) == 0x3412 and C.ntohs(0x3412) == 0x1234)
   assert(C.htonl(0x12345678) == 0x78563412 and C.ntohl(0x78563412) == 0x12345678)
   local a, b = ffi.new("uint8_t[4]", 1, 2, 3, 4), ffi.new("uint8_t[4]")
   C.memcpy(b, a, 4)
   assert(C.memcmp(a, b, 4) == 0 and b[3] == 4)
   C.memset(b, 7, 4)
   assert(b[0] == 7 and C.memcmp(a, b, 4) < 0)
   local addr = ffi.new("uint8_t[4]")
   assert(C.inet_pton(2, "10.0.0.1", addr) == 1 and addr[0] == 10 and addr[3] == 1)
   local text = ffi.new("char[16]")
   assert(ffi.string(C.inet_ntop(2, addr, text, 16)) == "10.0.0.1")
   C.nop()
   -- core.lib_h: the clocks agree with each other and with Lua's.
   local t0, m0 = C.get_time_ns(), C.get_monotonic_time()
   C.sleep_ns(2000000)
   local t1, m1 = C.get_time_ns(), C.get_monotonic_time()
   assert(t1 - t0 >= 2000000ULL, "sleep_ns slept 2 ms")
   assert(m1 - m0 >= 0.002 and math.abs(tonumber(t1) / 1e9 - m1) < 0.01)
   assert(math.abs(C.get_unix_time() - os.time()) < 2)
   C.full_memory_barrier()
   C.prefetch_for_read(a)
   C.prefetch_for_write(a)
   local path = os.tmpname()
   assert(math.abs(C.stat_mtime(path) - os.time()) < 2)
   os.remove(path)
   assert(C.stat_mtime(path) == 0)
   print("selftest: core.clib_h ok")
end

return M
