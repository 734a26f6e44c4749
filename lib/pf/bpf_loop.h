// lib/pf/bpf_loop.h: libpcap's BPF interpreter run over an array of packets in one call, so that
// tools/bench-filter times bpf_filter itself and not a call from Lua per packet. Exported from the
// binary for Lua's ffi.C (tools/bench-filter.lua declares it, with lib.pf.libpcap's
// struct snabb_bpf_insn for libpcap's struct bpf_insn).
#ifndef SNABB_LIB_PF_BPF_LOOP_H_
#define SNABB_LIB_PF_BPF_LOOP_H_

#include <pcap/pcap.h>

#include <cstddef>
#include <cstdint>

extern "C" {

// How many of the n packets (packets[i]: caplens[i] bytes present, wirelens[i] on the wire)
// bpf_filter(insns, ...) accepts, each packet run `rounds` times (counted each time). With ahead
// > 0, the loop prefetches packets[i + ahead] before it runs packets[i]: `packets` then holds
// n + ahead addresses.
uint64_t snabb_bpf_filter_loop(const struct bpf_insn* insns, const uint8_t* const* packets,
                               const uint32_t* caplens, const uint32_t* wirelens, size_t n,
                               size_t rounds, size_t ahead);
}

#endif  // SNABB_LIB_PF_BPF_LOOP_H_
