// memory: core.memory's DMA memory (Snabb's memory.dma_alloc and virtual_to_physical). Memory comes
// in chunks of whole hugepages: provisioned hugepages (MAP_HUGETLB) when there are any, else
// ordinary memory aligned to 2 MiB and advised for transparent hugepages, populated and locked so
// that each page keeps its physical address. Physical addresses are read from /proc/self/pagemap,
// which shows them to root (CAP_SYS_ADMIN) only.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "runtime/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
/* A chunk of bytes (a multiple of 2 MiB), zeroed; *huge says whether it is made of provisioned
   hugepages (then physically contiguous). NULL on failure (snabb_error). */
void *snabb_memory_chunk(size_t bytes, int *huge);
/* The physical address of address, or 0 when it cannot be known (snabb_error says why). */
uint64_t snabb_memory_physical(const void *address);
/* The size of a hugepage (Hugepagesize in /proc/meminfo; 2 MiB when it says none). */
size_t snabb_memory_huge_page_size(void);
// END FFI

#ifdef __cplusplus
}
#endif
