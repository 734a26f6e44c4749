// lib/shmem.cc: the file mappings of Snabb's lib.ipc.shmem (lib/ipc/shmem/shmem.h's names, through
// ffi.C). The Lua side passes its io file objects as void*: LuaJIT hands C their FILE*.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>

#include "lib/c_helpers.h"

namespace snabb::lib {
namespace {

// The descriptor of a Lua io file object (a FILE*; NULL when it is closed), or -1.
int descriptor(void* fh) { return fh ? fileno(static_cast<FILE*>(fh)) : -1; }

char* map(int fd, size_t size) {
  if (fd < 0 || size == 0) return nullptr;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return nullptr;
  int protection = (flags & O_ACCMODE) == O_RDONLY ? PROT_READ : PROT_READ | PROT_WRITE;
  void* mem = mmap(nullptr, size, protection, MAP_SHARED, fd, 0);
  return mem == MAP_FAILED ? nullptr : static_cast<char*>(mem);
}

}  // namespace
}  // namespace snabb::lib

extern "C" {

char* shmem_grow(void* fh, void* base, size_t old_size, size_t new_size) {
  int fd = snabb::lib::descriptor(fh);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(new_size)) != 0) return nullptr;
  if (base) munmap(base, old_size);
  return snabb::lib::map(fd, new_size);
}

char* shmem_attach(void* fh, size_t size) {
  return snabb::lib::map(snabb::lib::descriptor(fh), size);
}

bool shmem_unmap(void* mem, size_t size) { return munmap(mem, size) == 0; }

}  // extern "C"
