// memory: DMA chunks and physical addresses for core.memory (memory.h).
#include "runtime/memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

namespace {

using snabb::runtime::set_error;
constexpr size_t kAlign = 2u << 20;

}  // namespace

extern "C" {

size_t snabb_memory_huge_page_size(void) {
  static const size_t size = [] {
    std::ifstream meminfo("/proc/meminfo");
    for (std::string line; std::getline(meminfo, line);) {
      if (line.rfind("Hugepagesize:", 0) == 0) return std::stoul(line.substr(13)) * 1024;
    }
    return kAlign;
  }();
  return size;
}

void* snabb_memory_chunk(size_t bytes, int* huge) {
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
  *huge = mem != MAP_FAILED;
  if (mem == MAP_FAILED) {
    const size_t span = bytes + kAlign;
    void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
      set_error(std::string("DMA memory: mmap of ") + std::to_string(bytes) +
                " bytes: " + std::strerror(errno));
      return nullptr;
    }
    const auto start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (start + kAlign - 1) & ~(kAlign - 1);
    if (aligned > start) munmap(raw, aligned - start);
    munmap(reinterpret_cast<void*>(aligned + bytes), start + span - aligned - bytes);
    mem = reinterpret_cast<void*>(aligned);
    madvise(mem, bytes, MADV_HUGEPAGE);
    std::memset(mem, 0, bytes);  // every page present, so that each has its physical address
  }
  mlock(mem, bytes);  // best effort: kept in memory, not moved by swapping (RLIMIT_MEMLOCK)
  return mem;
}

uint64_t snabb_memory_physical(const void* address) {
  const auto virt = reinterpret_cast<uintptr_t>(address);
  const long page = sysconf(_SC_PAGESIZE);
  const int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    set_error(std::string("/proc/self/pagemap: ") + std::strerror(errno));
    return 0;
  }
  uint64_t entry = 0;
  const ssize_t n = pread(fd, &entry, sizeof entry,
                          static_cast<off_t>(virt / static_cast<uintptr_t>(page) * sizeof entry));
  close(fd);
  const uint64_t frame = entry & ((1ull << 55) - 1);
  if (n != sizeof entry || !(entry >> 63)) {
    set_error("virtual_to_physical: page not present (not DMA memory from memory.dma_alloc?)");
    return 0;
  }
  if (frame == 0) {
    set_error(
        "virtual_to_physical: the kernel shows physical addresses to root only "
        "(/proc/self/pagemap)");
    return 0;
  }
  return frame * static_cast<uint64_t>(page) + virt % static_cast<uintptr_t>(page);
}

}  // extern "C"
