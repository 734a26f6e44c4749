// DPDK ports with zero-copy packets. Once DPDK is initialised, every packet the pool hands out
// can be an rte_mbuf: the mbuf pool is made of full packet slots (10,816-byte data rooms) and its
// mempool operations are our free list (a "snabb" mempool handler), so DPDK's receive path takes
// its buffers from the same stack packet.allocate pops, and a packet a PMD has sent comes back to
// it. A received packet is the mbuf's data with our 4-byte header just before it; sending sets the
// mbuf's offset and length from the header. Packets from before initialisation (ordinary pool
// slots) are copied into an mbuf when sent, and retired rather than handed to DPDK.
//
// The DpdkPort app (dpdk.lua) hands its pull and push to snabb_dpdk_pull/push, which move whole
// bursts between a queue and a link: no Lua runs in a port's part of a breath.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "runtime/error.h"
#include "runtime/link.h"

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
struct dpdk_port_stats {
  uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
  uint64_t rx_missed; /* dropped by the device: no room in the receive ring */
  uint64_t rx_errors, tx_errors;
  uint64_t rx_nombuf; /* receive failed for lack of packets in the pool */
  uint64_t tx_copied; /* packets copied into an mbuf because they were not one */
};

/* Initialises the EAL once per process with `args` (space-separated EAL options; "": defaults,
   file prefix snabb-PID) and creates the packet pool's mbufs (at least snabb_dpdk_min_mbufs(), at
   most what the packet pool has room for); 0, or -1 (snabb_error() says why). Errors carry DPDK's
   cause (its error log lines). telemetry 0 adds --no-telemetry (else DPDK's telemetry socket is
   on, in /var/run/dpdk/PREFIX for root). processes > 1: that many processes share the ports (DPDK
   primary and secondaries; args must let them: --proc-type, --file-prefix, hugepages): the
   primary makes processes x mbufs, a secondary takes its mbufs from them. */
int snabb_dpdk_init(const char* args, int64_t mbufs, int telemetry, int processes);
/* 1 in a DPDK secondary process (its ports are the primary's: attached, never set up here). */
int snabb_dpdk_secondary(void);
/* The fewest mbufs a port can forward with (one queue each way, 32-descriptor rings). */
uint32_t snabb_dpdk_min_mbufs(void);
int snabb_dpdk_initialized(void);
/* Opens and starts a port: a PCI address or a virtual-device spec ("net_null0", "net_pcap0,
   rx_pcap=in.pcap"). Returns its port id, or -1 (snabb_error() says why): queues and ring_size the
   device cannot take, or a pool too small for what the open ports hold (each receive queue: its
   ring and a pull of 256; each send queue: its ring), are refused by name. */
int snabb_dpdk_port_open(const char* spec, uint16_t rxqs, uint16_t txqs, uint16_t ring_size,
                         int rss);
/* One queue of a port and the links of the app that drives it (NULL: not linked). */
struct dpdk_queue {
  uint16_t port, queue;
  struct link *input, *output;
};
/* The app's pull: receives into output, a breath's worth at most. (app_c_method) */
void snabb_dpdk_pull(void* queue);
/* The app's push: sends what input holds, as much as the device takes (the rest stays queued). */
void snabb_dpdk_push(void* queue);
void snabb_dpdk_port_stats(uint16_t port, struct dpdk_port_stats* s);
/* The device's extended statistics (names as the PMD gives them); returns how many, up to max. */
struct dpdk_xstat {
  char name[64];
  uint64_t value;
};
int snabb_dpdk_xstats(uint16_t port, struct dpdk_xstat* out, int max);
/* 1 when the link is up. */
int snabb_dpdk_link_up(uint16_t port);
void snabb_dpdk_port_close(uint16_t port);
/* mbufs in the pool, and how many of them are free (in the packet free list). */
uint32_t snabb_dpdk_mbufs(void);
uint32_t snabb_dpdk_mbufs_free(void);
// END FFI

#ifdef __cplusplus
}
#endif
