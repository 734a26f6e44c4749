// lib/pf/bpf_loop.cc: libpcap's interpreter over an array of packets (bpf_loop.h), the baseline
// of tools/bench-filter.
#include "lib/pf/bpf_loop.h"

uint64_t snabb_bpf_filter_loop(const struct bpf_insn* insns, const uint8_t* const* packets,
                               const uint32_t* caplens, const uint32_t* wirelens, size_t n,
                               size_t rounds, size_t ahead) {
  uint64_t accepted = 0;
  for (size_t r = 0; r < rounds; r++) {
    for (size_t i = 0; i < n; i++) {
      // The packet `ahead` places on (prefetcht0), as tools/bench-filter.lua's Lua loops do.
      if (ahead != 0) __builtin_prefetch(packets[i + ahead], 0);
      // bpf_filter(program, packet, wire length, bytes present): what pcap_offline_filter runs.
      accepted += bpf_filter(insns, packets[i], wirelens[i], caplens[i]) != 0;
    }
  }
  return accepted;
}
