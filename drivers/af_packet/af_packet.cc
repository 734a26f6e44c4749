#include "drivers/af_packet/af_packet.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "drivers/af_packet/offload.h"
#include "runtime/packet.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

namespace snabb::drivers::af_packet {
namespace {

using runtime::link_nreadable;
using runtime::packet_allocate;
using runtime::packet_free;

// 16 MiB of ring in 128 KiB blocks (a 64 KiB GSO frame fits in one). A partly filled block is
// handed over after kBlockTimeoutMs, so at a modest rate each block holds a millisecond: with 16
// blocks of 1 MiB the ring held 16 ms, and a 20 MB TCP capture lost frames (kernel drops) whenever
// the process was descheduled that long on a loaded 2-core VM; 128 blocks hold 128 ms.
constexpr uint32_t kBlockSize = 128 << 10;
constexpr uint32_t kBlocks = 128;
constexpr uint32_t kFrameSize = 2048;    // only a unit for the kernel's checks with TPACKET_V3
constexpr uint32_t kBlockTimeoutMs = 1;  // a partly filled block is handed over after this
constexpr uint32_t kTxBatch = 64;
constexpr uint32_t kMaxRxPerCall = 512;

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// One AF_PACKET socket bound to an interface, with its receive ring mapped.
class Socket {
 public:
  Socket(const std::string& ifname, bool promisc, int fanout, int fanout_mode) {
    ifindex_ = if_nametoindex(ifname.c_str());
    if (ifindex_ == 0) throw std::runtime_error("af_packet: no interface '" + ifname + "'");
    // Protocol 0: nothing is received until bind() names the interface and ETH_P_ALL.
    rx_.fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (rx_.fd < 0) throw std::runtime_error(errno_text("af_packet: socket (root needed?)"));
    const int version = TPACKET_V3, one = 1;
    option(PACKET_VERSION, &version, sizeof version, "TPACKET_V3");
    // Each frame comes with a virtio_net_hdr: how to cut a GSO frame, where a checksum left to
    // the hardware goes. Must precede the ring.
    option(PACKET_VNET_HDR, &one, sizeof one, "PACKET_VNET_HDR");
    tpacket_req3 req{};
    req.tp_block_size = kBlockSize;
    req.tp_block_nr = kBlocks;
    req.tp_frame_size = kFrameSize;
    req.tp_frame_nr = kBlockSize / kFrameSize * kBlocks;
    req.tp_retire_blk_tov = kBlockTimeoutMs;
    option(PACKET_RX_RING, &req, sizeof req, "receive ring");
    ring_.at = static_cast<uint8_t*>(
        mmap(nullptr, size_t{kBlockSize} * kBlocks, PROT_READ | PROT_WRITE, MAP_SHARED, rx_.fd, 0));
    if (ring_.at == MAP_FAILED) {
      ring_.at = nullptr;
      fail("mmap of the receive ring");
    }
    // No frame going out of the interface is received (a bridge would loop our own sends).
    setsockopt(rx_.fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
    // Sending has its own socket, without the vnet header (so frames go out as they are, with no
    // 10 bytes to prepend): bound with protocol 0 it receives nothing. It skips the qdisc.
    tx_.fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (tx_.fd < 0) fail("socket for sending");
    setsockopt(tx_.fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_ifindex = static_cast<int>(ifindex_);
    if (bind(tx_.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      fail("bind to " + ifname);
    }
    addr = {};
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(ETH_P_ALL);
    addr.sll_ifindex = static_cast<int>(ifindex_);
    if (bind(rx_.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      fail("bind to " + ifname);
    if (promisc) {
      packet_mreq mr{};
      mr.mr_ifindex = static_cast<int>(ifindex_);
      mr.mr_type = PACKET_MR_PROMISC;
      option(PACKET_ADD_MEMBERSHIP, &mr, sizeof mr, "promiscuous mode");
    }
    if (fanout > 0) {
      const int arg = (fanout & 0xffff) | (fanout_mode << 16);
      // The kernel says EINVAL alone when the group exists with another mode (or flags).
      if (setsockopt(rx_.fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0) {
        fail("PACKET_FANOUT group " + std::to_string(fanout) + " on " + ifname +
             (errno == EINVAL ? " (another member of the group has another mode?)" : ""));
      }
    }
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  unsigned ifindex() const { return ifindex_; }

  uint32_t rx(runtime::Link* out, af_packet_stats& stats) {
    uint32_t room = std::min<uint32_t>(runtime::link_nwritable(out), kMaxRxPerCall);
    uint32_t received = 0;
    while (room > 0) {
      tpacket_block_desc* block = this->block(block_);
      if (remaining_ == 0) {
        if (!ready(block)) {
          // The kernel does not always start filling at block 0 (frames can arrive between
          // setting up the ring and binding): until the first block, look for its oldest one.
          // After that it fills them in ring order, and a scan of 128 blocks (a page each) at
          // the end of every pull would be wasted.
          if (synced_) break;
          const uint32_t oldest = oldest_ready();
          if (oldest == kBlocks) break;
          block_ = oldest;
          block = this->block(block_);
        }
        synced_ = true;
        remaining_ = block->hdr.bh1.num_pkts;
        next_ = reinterpret_cast<uint8_t*>(block) + block->hdr.bh1.offset_to_first_pkt;
      }
      while (remaining_ > 0 && room > 0) {
        auto* h = reinterpret_cast<tpacket3_hdr*>(next_);
        const auto* vnet = reinterpret_cast<const virtio_net_hdr*>(
            reinterpret_cast<const uint8_t*>(h) + h->tp_mac - sizeof(virtio_net_hdr));
        if (!(vnet->gso_type | (vnet->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))) {
          if (packet* p = frame(h, stats)) {
            runtime::link_transmit(out, p);
            stats.rx_packets++;
            stats.rx_bytes += p->length;
            received++;
            room--;
          }
        } else {  // a GSO frame, or a checksum to complete
          const uint32_t n = offload(h, *vnet, out, room, stats);
          received += n;
          room -= n;
          if (segment_ > 0) break;  // the rest of its segments next time
        }
        next_ += h->tp_next_offset;
        remaining_--;
      }
      if (remaining_ == 0) {  // hand the block back to the kernel
        std::atomic_ref(block->hdr.bh1.block_status)
            .store(TP_STATUS_KERNEL, std::memory_order_release);
        block_ = (block_ + 1) % kBlocks;
      }
    }
    return received;
  }

  // Sends in batches; returns how many left the link (sent, or refused and counted).
  uint32_t tx(runtime::Link* in, af_packet_stats& stats, bool* gone) {
    uint32_t done = 0;
    iovec iov[kTxBatch];
    mmsghdr msgs[kTxBatch];
    for (uint32_t waiting = link_nreadable(in); waiting > 0;) {
      const uint32_t n = std::min(waiting, kTxBatch);
      for (uint32_t i = 0; i < n; ++i) {
        packet* p = runtime::link_peek(in, i);
        iov[i] = {p->data, p->length};
        msgs[i] = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int sent = sendmmsg(tx_.fd, msgs, n, MSG_DONTWAIT);
      if (sent < 0) {
        if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) break;  // try again next time
        // The kernel will not take the first one (interface down, frame too large, ...): drop it.
        if (errno == EMSGSIZE) {  // larger than the MTU allows
          stats.tx_oversize++;
          stats.tx_oversize_largest = std::max<uint64_t>(stats.tx_oversize_largest, iov[0].iov_len);
        } else {
          stats.tx_errors++;
        }
        *gone = errno == ENXIO || errno == ENODEV;
        sent = 1;
      } else {
        for (int i = 0; i < sent; ++i) stats.tx_bytes += iov[i].iov_len;
        stats.tx_packets += static_cast<uint32_t>(sent);
      }
      for (int i = 0; i < sent; ++i) packet_free(runtime::link_receive(in));
      done += static_cast<uint32_t>(sent);
      waiting -= static_cast<uint32_t>(sent);
      if (static_cast<uint32_t>(sent) < n || *gone) break;
    }
    return done;
  }

  uint64_t kernel_drops() {
    tpacket_stats_v3 st{};
    socklen_t len = sizeof st;
    if (getsockopt(rx_.fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0) return 0;
    return st.tp_drops;  // since the last read
  }

  uint32_t mtu() {
    ifreq ifr{};
    if (!if_indextoname(ifindex_, ifr.ifr_name) || ioctl(rx_.fd, SIOCGIFMTU, &ifr) != 0) return 0;
    return static_cast<uint32_t>(ifr.ifr_mtu);
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(errno_text("af_packet: " + what));
  }
  void option(int name, const void* value, socklen_t len, const char* what) {
    if (setsockopt(rx_.fd, SOL_PACKET, name, value, len) != 0) fail(what);
  }

  tpacket_block_desc* block(uint32_t i) {
    return reinterpret_cast<tpacket_block_desc*>(ring_.at + size_t{i} * kBlockSize);
  }
  static bool ready(tpacket_block_desc* b) {
    return std::atomic_ref(b->hdr.bh1.block_status).load(std::memory_order_acquire) &
           TP_STATUS_USER;
  }
  // The block the kernel handed over first (lowest sequence number), or kBlocks if none is ready.
  uint32_t oldest_ready() {
    uint32_t oldest = kBlocks;
    for (uint32_t i = 0; i < kBlocks; ++i) {
      if (ready(block(i)) &&
          (oldest == kBlocks || block(i)->hdr.bh1.seq_num < block(oldest)->hdr.bh1.seq_num)) {
        oldest = i;
      }
    }
    return oldest;
  }

  // A received frame as a packet, with the VLAN tag the kernel took off put back.
  packet* frame(const tpacket3_hdr* h, af_packet_stats& stats) {
    const uint8_t* data = reinterpret_cast<const uint8_t*>(h) + h->tp_mac;
    const uint32_t len = h->tp_snaplen;
    const bool tagged = h->tp_status & TP_STATUS_VLAN_VALID;
    if (len + (tagged ? 4 : 0) > PACKET_PAYLOAD_SIZE || len < 14) [[unlikely]] {
      (len < 14 ? stats.rx_truncated : stats.rx_oversize)++;
      return nullptr;
    }
    packet* p = packet_allocate();
    if (!tagged) {
      std::memcpy(p->data, data, len);
      p->length = static_cast<uint16_t>(len);
      return p;
    }
    const uint16_t tpid =
        (h->tp_status & TP_STATUS_VLAN_TPID_VALID) ? h->hv1.tp_vlan_tpid : ETH_P_8021Q;
    const uint16_t tag[2] = {htons(tpid), htons(static_cast<uint16_t>(h->hv1.tp_vlan_tci))};
    std::memcpy(p->data, data, 12);  // destination and source addresses
    std::memcpy(p->data + 12, tag, 4);
    std::memcpy(p->data + 16, data + 12, len - 12);
    p->length = static_cast<uint16_t>(len + 4);
    return p;
  }

  // A frame whose virtio_net_hdr asks for work (offload.h): a GSO frame is cut into segments, a
  // frame with a checksum left to the hardware (TP_STATUS_CSUMNOTREADY) gets it completed. Puts
  // at most `room` packets on `out` and returns how many; segment_ > 0 when the frame has
  // segments left for the next call.
  uint32_t offload(const tpacket3_hdr* h, const virtio_net_hdr& vnet, runtime::Link* out,
                   uint32_t room, af_packet_stats& stats) {
    // Cut short by the kernel (larger than a ring block), or no Ethernet header.
    if (h->tp_snaplen < h->tp_len || h->tp_snaplen < 14) {
      stats.rx_truncated++;
      return 0;
    }
    const uint32_t tag = (h->tp_status & TP_STATUS_VLAN_VALID) ? 4 : 0;
    if (vnet.gso_type == VIRTIO_NET_HDR_GSO_NONE) {
      packet* p = frame(h, stats);
      if (!p) return 0;
      if (complete_checksum(p->data, p->length, vnet.csum_start + tag, vnet.csum_offset)) {
        stats.rx_checksummed++;
      }
      runtime::link_transmit(out, p);
      stats.rx_packets++;
      stats.rx_bytes += p->length;
      return 1;
    }
    if (segment_ == 0) {
      const uint8_t* data = reinterpret_cast<const uint8_t*>(h) + h->tp_mac;
      const uint16_t tpid =
          (h->tp_status & TP_STATUS_VLAN_TPID_VALID) ? h->hv1.tp_vlan_tpid : ETH_P_8021Q;
      const uint16_t vlan[2] = {htons(tpid), htons(static_cast<uint16_t>(h->hv1.tp_vlan_tci))};
      if (!gso_.init(data, h->tp_snaplen, tag ? reinterpret_cast<const uint8_t*>(vlan) : nullptr,
                     vnet, PACKET_PAYLOAD_SIZE)) {
        stats.rx_oversize++;  // a big frame we cannot cut into packets
        return 0;
      }
    }
    uint32_t n = 0;
    for (; segment_ < gso_.segments() && n < room; ++segment_, ++n) {
      packet* p = packet_allocate();
      p->length = static_cast<uint16_t>(gso_.segment(segment_, p->data));
      stats.rx_bytes += p->length;
      runtime::link_transmit(out, p);
    }
    stats.rx_packets += n;
    stats.rx_gso_segments += n;
    if (segment_ == gso_.segments()) {
      segment_ = 0;
      stats.rx_gso_frames++;
    }
    return n;
  }

  // Closed and unmapped when the socket goes, also when its constructor throws half way (a
  // reopen that fails must not leak a descriptor and 16 MiB twice a second).
  struct Fd {
    int fd = -1;
    Fd() = default;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
      if (fd >= 0) close(fd);
    }
  };
  struct Ring {
    uint8_t* at = nullptr;
    Ring() = default;
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;
    ~Ring() {
      if (at) munmap(at, size_t{kBlockSize} * kBlocks);
    }
  };
  Fd rx_, tx_;
  Ring ring_;
  unsigned ifindex_ = 0;
  uint32_t block_ = 0;      // the block being read
  uint32_t remaining_ = 0;  // its packets not yet read
  bool synced_ = false;     // a block has been read: the kernel's next one is block_
  uint8_t* next_ = nullptr;
  GsoFrame gso_;          // the GSO frame being cut into segments...
  uint32_t segment_ = 0;  // ...and its next one, when one call does not take them all
};

}  // namespace
}  // namespace snabb::drivers::af_packet

using snabb::drivers::af_packet::Socket;

struct af_packet_port {
  std::string ifname;
  bool promisc;
  int fanout;
  int fanout_mode;
  std::unique_ptr<Socket> socket;  // null while the interface is gone
  af_packet_stats stats{};
};

extern "C" {

af_packet_port* snabb_af_packet_open(const char* ifname, int promisc, int fanout, int fanout_mode) {
  return snabb::runtime::c_call<af_packet_port*>(nullptr, [&] {
    auto s = std::make_unique<af_packet_port>();
    s->ifname = ifname;
    s->promisc = promisc != 0;
    s->fanout = fanout;
    s->fanout_mode = fanout_mode;
    s->socket = std::make_unique<Socket>(ifname, s->promisc, fanout, fanout_mode);
    s->stats.mtu = s->socket->mtu();
    return s.release();
  });
}

int32_t snabb_af_packet_rx(af_packet_port* s, struct link* out) {
  return snabb::runtime::c_call(
      -1, [&] { return static_cast<int32_t>(s->socket ? s->socket->rx(out, s->stats) : 0); });
}

int32_t snabb_af_packet_tx(af_packet_port* s, struct link* in) {
  return snabb::runtime::c_call(-1, [&] {
    if (!s->socket) {  // gone: what arrives is dropped and counted, so the graph keeps moving
      int32_t n = 0;
      while (!snabb::runtime::link_empty(in)) {
        snabb::runtime::packet_free(snabb::runtime::link_receive(in));
        s->stats.tx_errors++;
        n++;
      }
      return n;
    }
    bool gone = false;
    const auto n = static_cast<int32_t>(s->socket->tx(in, s->stats, &gone));
    if (gone) snabb_af_packet_check(s);
    return n;
  });
}

int snabb_af_packet_check(af_packet_port* s) {
  const unsigned index = if_nametoindex(s->ifname.c_str());
  if (s->socket && index == s->socket->ifindex()) {
    s->stats.rx_kernel_drops += s->socket->kernel_drops();
    s->stats.mtu = s->socket->mtu();
    return 1;
  }
  s->socket.reset();
  s->stats.down = 1;
  if (index == 0) return 0;
  try {
    s->socket = std::make_unique<Socket>(s->ifname, s->promisc, s->fanout, s->fanout_mode);
    s->stats.down = 0;
    s->stats.reopened++;
    return 1;
  } catch (const std::exception&) {
    return 0;
  }
}

void snabb_af_packet_stats(af_packet_port* s, af_packet_stats* out) { *out = s->stats; }

void snabb_af_packet_close(af_packet_port* s) { std::unique_ptr<af_packet_port> owned(s); }
}
