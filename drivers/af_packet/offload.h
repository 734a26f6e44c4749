// What a NIC's offloads would have done, done in software for frames a packet socket receives as
// the kernel's stack holds them: GSO frames (TSO from a local sender, GRO on a NIC; up to 64 KiB)
// cut into the segments they stand for, and checksums left to the hardware completed. The kernel
// describes both in a virtio_net_hdr before each frame (PACKET_VNET_HDR). Used by af_packet.cc;
// separate so that offload_test.cc can feed it frames this machine's kernel does not make.
#pragma once
#include <stdint.h>

namespace snabb::drivers::af_packet {

// The header PACKET_VNET_HDR puts before each frame (linux/virtio_net.h, which C++ cannot include:
// it has a field named `class`). In the machine's byte order.
struct virtio_net_hdr {
  uint8_t flags, gso_type;
  uint16_t hdr_len, gso_size, csum_start, csum_offset;
};
enum : uint8_t {
  VIRTIO_NET_HDR_F_NEEDS_CSUM = 1,  // complete the checksum: csum_start, csum_offset
  VIRTIO_NET_HDR_GSO_NONE = 0,
  VIRTIO_NET_HDR_GSO_TCPV4 = 1,
  VIRTIO_NET_HDR_GSO_TCPV6 = 4,
  VIRTIO_NET_HDR_GSO_UDP_L4 = 5,  // UDP_SEGMENT (USO), Linux 6.2 on
  VIRTIO_NET_HDR_GSO_ECN = 0x80,
};

// Completes a checksum left to the hardware: the field at start + offset holds the pseudo-header's
// sum; the one's-complement sum from start to the end goes there (SCTP's CRC32c for an SCTP
// header at start and offset 8). False (nothing done) when the field is not inside the frame.
bool complete_checksum(uint8_t* frame, uint32_t len, uint32_t start, uint32_t offset);

// A GSO frame being cut into segments, as the kernel's own segmentation makes them: IPv4 total
// length, ID (one more per segment) and header checksum, IPv6 payload length, TCP sequence
// numbers with FIN and PSH on the last segment only and CWR on the first only, UDP length, and
// full TCP/UDP checksums (a GRO frame's are stale, a TSO frame's partial).
class GsoFrame {
 public:
  // data, len: the frame as received; tag: a VLAN tag (TPID and TCI, network order) the kernel
  // took off, to put back after the addresses, or null. False when it cannot be cut: not TCP
  // (GSO_TCPV4/6) or UDP (GSO_UDP_L4) over IPv4/IPv6, or segments larger than `max_segment`.
  bool init(const uint8_t* data, uint32_t len, const uint8_t* tag, const virtio_net_hdr& vnet,
            uint32_t max_segment);
  uint32_t segments() const { return segments_; }
  // Writes segment i (< segments()) into out (room for max_segment bytes); returns its length.
  uint32_t segment(uint32_t i, uint8_t* out) const;

 private:
  uint8_t hdr_[256];                    // the headers, tag put back
  uint32_t ip_ = 0, l4_ = 0, end_ = 0;  // offsets of the IP and L4 headers and of the payload
  bool v6_ = false;
  uint8_t proto_ = 0;
  const uint8_t* payload_ = nullptr;
  uint32_t total_ = 0, mss_ = 0, segments_ = 0, seq_ = 0;
  uint16_t id_ = 0;
};

}  // namespace snabb::drivers::af_packet
