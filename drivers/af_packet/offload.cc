// GSO segmentation and checksum completion (offload.h).
#include "drivers/af_packet/offload.h"

#include <arpa/inet.h>
#include <net/ethernet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace snabb::drivers::af_packet {
namespace {

// The Internet checksum (RFC 1071): a one's-complement sum of 16-bit words. Summed here in the
// machine's byte order, which gives the same bytes once folded and stored the same way.
uint64_t csum_add(const uint8_t* p, size_t len, uint64_t sum) {
  for (; len >= 4; p += 4, len -= 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    sum += w;
  }
  if (len >= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    sum += w;
    p += 2;
    len -= 2;
  }
  if (len) {
    const uint8_t last[2] = {*p, 0};
    uint16_t w;
    std::memcpy(&w, last, 2);
    sum += w;
  }
  return sum;
}
uint16_t csum_fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}
void put16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }  // v already in network order
uint16_t get16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return ntohs(v);
}
uint32_t get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return ntohl(v);
}

// Where a frame's IP and TCP/UDP headers start, found by walking its headers.
struct Layers {
  uint32_t ip = 0, l4 = 0, end = 0;  // offsets of the IP header, the L4 header, and the payload
  bool v6 = false;
  uint8_t proto = 0;
};
bool parse(const uint8_t* d, uint32_t len, Layers* l) {
  uint32_t off = 12;
  uint16_t type = 0;
  for (;;) {  // VLAN tags (802.1Q, 802.1ad) may be stacked
    if (off + 2 > len) return false;
    type = get16(d + off);
    if (type != ETH_P_8021Q && type != ETH_P_8021AD) break;
    off += 4;
  }
  l->ip = off + 2;
  if (type == ETH_P_IP) {
    if (l->ip + 20 > len) return false;
    l->proto = d[l->ip + 9];
    l->l4 = l->ip + (d[l->ip] & 15) * 4;
  } else if (type == ETH_P_IPV6) {
    l->v6 = true;
    l->l4 = l->ip + 40;
    if (l->l4 > len) return false;
    l->proto = d[l->ip + 6];
    // Hop-by-hop, routing and destination options headers come before TCP/UDP.
    while (l->proto == 0 || l->proto == 43 || l->proto == 60) {
      if (l->l4 + 8 > len) return false;
      l->proto = d[l->l4];
      l->l4 += (d[l->l4 + 1] + 1) * 8;
    }
  } else {
    return false;
  }
  if (l->proto == IPPROTO_TCP) {
    if (l->l4 + 20 > len) return false;
    l->end = l->l4 + (d[l->l4 + 12] >> 4) * 4;
  } else if (l->proto == IPPROTO_UDP) {
    l->end = l->l4 + 8;
  } else if (l->proto == IPPROTO_SCTP) {
    l->end = l->l4 + 12;
  } else {
    return false;
  }
  return l->end <= len;
}

// CRC32c (Castagnoli, reflected), SCTP's checksum (RFC 4960 appendix B).
constexpr auto kCrc32cTable = [] {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (c & 1 ? 0x82f63b78 : 0);
    t[i] = c;
  }
  return t;
}();
uint32_t crc32c(const uint8_t* p, size_t len) {
  uint32_t c = ~0u;
  while (len--) c = kCrc32cTable[(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

}  // namespace

bool complete_checksum(uint8_t* frame, uint32_t len, uint32_t start, uint32_t offset) {
  if (start + offset + 2 > len) return false;
  // SCTP's field (offset 8, the kernel's csum_not_inet) takes a CRC32c, least significant byte
  // first, computed with the field zeroed; TCP's and UDP's the Internet checksum.
  Layers l;
  if (offset == 8 && start + 12 <= len && parse(frame, len, &l) && l.proto == IPPROTO_SCTP &&
      l.l4 == start) {
    std::memset(frame + start + 8, 0, 4);
    const uint32_t c = crc32c(frame + start, len - start);
    const uint8_t le[4] = {uint8_t(c), uint8_t(c >> 8), uint8_t(c >> 16), uint8_t(c >> 24)};
    std::memcpy(frame + start + 8, le, 4);
    return true;
  }
  put16(frame + start + offset, csum_fold(csum_add(frame + start, len - start, 0)));
  return true;
}

bool GsoFrame::init(const uint8_t* data, uint32_t len, const uint8_t* tag,
                    const virtio_net_hdr& vnet, uint32_t max_segment) {
  const uint32_t t = tag ? 4 : 0;
  if (len < 14) return false;
  std::memcpy(hdr_, data, 12);
  if (tag) std::memcpy(hdr_ + 12, tag, 4);
  std::memcpy(hdr_ + 12 + t, data + 12, std::min<uint32_t>(sizeof hdr_ - 12 - t, len - 12));
  Layers l;
  const uint8_t type = vnet.gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
  mss_ = vnet.gso_size;
  if (!parse(hdr_, std::min<uint32_t>(sizeof hdr_, len + t), &l) || mss_ == 0 ||
      (l.proto == IPPROTO_TCP) !=
          (type == VIRTIO_NET_HDR_GSO_TCPV4 || type == VIRTIO_NET_HDR_GSO_TCPV6) ||
      (l.proto == IPPROTO_UDP) != (type == VIRTIO_NET_HDR_GSO_UDP_L4) ||
      l.end + mss_ > max_segment) {
    return false;
  }
  ip_ = l.ip, l4_ = l.l4, end_ = l.end, v6_ = l.v6, proto_ = l.proto;
  payload_ = data + end_ - t;
  total_ = len + t - end_;
  segments_ = std::max(1u, (total_ + mss_ - 1) / mss_);
  seq_ = proto_ == IPPROTO_TCP ? get32(hdr_ + l4_ + 4) : 0;
  id_ = v6_ ? 0 : get16(hdr_ + ip_ + 4);
  return true;
}

uint32_t GsoFrame::segment(uint32_t i, uint8_t* d) const {
  const uint32_t off = i * mss_, size = std::min(mss_, total_ - off), len = end_ + size;
  std::memcpy(d, hdr_, end_);
  std::memcpy(d + end_, payload_ + off, size);
  if (v6_) {
    put16(d + ip_ + 4, htons(static_cast<uint16_t>(len - ip_ - 40)));
  } else {  // total length, the next ID, the header checksum
    put16(d + ip_ + 2, htons(static_cast<uint16_t>(len - ip_)));
    put16(d + ip_ + 4, htons(static_cast<uint16_t>(id_ + i)));
    put16(d + ip_ + 10, 0);
    put16(d + ip_ + 10, csum_fold(csum_add(d + ip_, l4_ - ip_, 0)));
  }
  if (proto_ == IPPROTO_TCP) {  // FIN and PSH on the last segment only, CWR on the first
    const uint32_t s = htonl(seq_ + off);
    std::memcpy(d + l4_ + 4, &s, 4);
    if (i + 1 < segments_) d[l4_ + 13] &= ~(0x01 | 0x08);
    if (i > 0) d[l4_ + 13] &= ~0x80;
  } else {
    put16(d + l4_ + 4, htons(static_cast<uint16_t>(len - l4_)));
  }
  // The TCP or UDP checksum, over the pseudo-header and the whole segment.
  uint8_t* field = d + l4_ + (proto_ == IPPROTO_TCP ? 16 : 6);
  put16(field, 0);
  const uint32_t l4len = len - l4_;
  uint64_t sum = csum_add(d + ip_ + (v6_ ? 8 : 12), v6_ ? 32 : 8, 0);  // the addresses
  sum += htons(static_cast<uint16_t>(proto_)) + htons(static_cast<uint16_t>(l4len)) +
         htons(static_cast<uint16_t>(l4len >> 16));
  uint16_t c = csum_fold(csum_add(d + l4_, l4len, sum));
  if (c == 0 && proto_ == IPPROTO_UDP) c = 0xffff;  // 0 would mean "no checksum"
  put16(field, c);
  return len;
}

}  // namespace snabb::drivers::af_packet
