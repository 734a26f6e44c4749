// AF_PACKET ports: a Linux interface as an app. Receiving reads a TPACKET_V3 ring the kernel fills
// (memory-mapped, in blocks: no system call per packet); sending batches packets into sendmmsg.
// The VLAN tag the kernel strips on receive is put back, so apps see frames as they were on the
// wire; GSO frames (up to 64 KiB) are cut into the segments they stand for, and checksums left
// to the hardware are completed, so every frame arrives as the wire would have carried it. An
// interface that goes away is closed, counted, and opened again when it comes back.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "runtime/error.h"
#include "runtime/link.h"

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
struct af_packet_stats {
  uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes; /* packets into and out of the graph */
  uint64_t rx_kernel_drops; /* PACKET_STATISTICS: frames the kernel dropped for lack of ring room */
  uint64_t rx_gso_frames;   /* GSO frames received (up to 64 KiB) and cut into segments... */
  uint64_t rx_gso_segments; /* ...these, counted in rx_packets too */
  uint64_t rx_checksummed;  /* frames whose offloaded (partial) checksum was completed here */
  uint64_t rx_oversize;     /* frames dropped: larger than a packet and not cut into segments */
  uint64_t rx_truncated;    /* frames dropped: cut short by the kernel, or shorter than 14 bytes */
  uint64_t tx_oversize;     /* frames dropped: larger than the interface's MTU allows */
  uint64_t tx_oversize_largest; /* the largest of them, in bytes */
  uint64_t tx_errors;           /* other frames the kernel refused (dropped, counted here) */
  uint64_t mtu;                 /* the interface's MTU (read at open and twice a second) */
  uint64_t reopened;            /* times the interface came back after going away */
  uint64_t down;                /* 1 while the interface is gone */
};

struct af_packet_port;
/* Opens an interface: promisc != 0 for promiscuous mode; fanout > 0 joins that PACKET_FANOUT group
   with fanout_mode (PACKET_FANOUT_HASH 0, LB 1, CPU 2, ROLLOVER 3, RND 4, QM 5). NULL when it
   cannot (snabb_error() says why). */
struct af_packet_port* snabb_af_packet_open(const char* ifname, int promisc, int fanout,
                                            int fanout_mode);
/* Moves received frames into `out` (as many as fit); returns how many, or -1 (the packet pool is
   exhausted: snabb_error() says why). */
int32_t snabb_af_packet_rx(struct af_packet_port* s, struct link* out);
/* Sends what `in` holds; returns how many were sent (refused ones are counted and freed), or -1
   (a packet freed twice: snabb_error() says so). */
int32_t snabb_af_packet_tx(struct af_packet_port* s, struct link* in);
/* Checks the interface: reopens it if it came back. Returns 1 when up, 0 when gone. */
int snabb_af_packet_check(struct af_packet_port* s);
void snabb_af_packet_stats(struct af_packet_port* s, struct af_packet_stats* out);
void snabb_af_packet_close(struct af_packet_port* s);
// END FFI

#ifdef __cplusplus
}
#endif
