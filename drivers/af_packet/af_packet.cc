#include "drivers/af_packet/af_packet.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
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

#include "runtime/packet.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

namespace snabb::af_packet {
namespace {

using runtime::link_nreadable;
using runtime::packet_allocate;
using runtime::packet_free;

constexpr uint32_t kBlockSize = 1 << 20;  // 1 MiB blocks, 16 of them
constexpr uint32_t kBlocks = 16;
constexpr uint32_t kFrameSize = 2048;    // only a unit for the kernel's checks with TPACKET_V3
constexpr uint32_t kBlockTimeoutMs = 1;  // a partly filled block is handed over after this
constexpr uint32_t kTxBatch = 64;
constexpr uint32_t kMaxRxPerCall = 512;

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// One AF_PACKET socket bound to an interface, with its receive ring mapped.
class Socket {
 public:
  Socket(const std::string& ifname, bool promisc, int fanout) {
    ifindex_ = if_nametoindex(ifname.c_str());
    if (ifindex_ == 0) throw std::runtime_error("af_packet: no interface '" + ifname + "'");
    // Protocol 0: nothing is received until bind() names the interface and ETH_P_ALL.
    fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(errno_text("af_packet: socket (root needed?)"));
    const int version = TPACKET_V3, one = 1;
    option(PACKET_VERSION, &version, sizeof version, "TPACKET_V3");
    tpacket_req3 req{};
    req.tp_block_size = kBlockSize;
    req.tp_block_nr = kBlocks;
    req.tp_frame_size = kFrameSize;
    req.tp_frame_nr = kBlockSize / kFrameSize * kBlocks;
    req.tp_retire_blk_tov = kBlockTimeoutMs;
    option(PACKET_RX_RING, &req, sizeof req, "receive ring");
    ring_ = static_cast<uint8_t*>(
        mmap(nullptr, size_t{kBlockSize} * kBlocks, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0));
    if (ring_ == MAP_FAILED) {
      ring_ = nullptr;
      fail("mmap of the receive ring");
    }
    // Our own sends are not received back (a bridge would loop them), and skip the qdisc.
    setsockopt(fd_, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
    setsockopt(fd_, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(ETH_P_ALL);
    addr.sll_ifindex = static_cast<int>(ifindex_);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("bind to " + ifname);
    if (promisc) {
      packet_mreq mr{};
      mr.mr_ifindex = static_cast<int>(ifindex_);
      mr.mr_type = PACKET_MR_PROMISC;
      option(PACKET_ADD_MEMBERSHIP, &mr, sizeof mr, "promiscuous mode");
    }
    if (fanout > 0) {
      const int arg = (fanout & 0xffff) | (PACKET_FANOUT_HASH << 16);
      option(PACKET_FANOUT, &arg, sizeof arg, "PACKET_FANOUT");
    }
  }
  ~Socket() {
    if (ring_) munmap(ring_, size_t{kBlockSize} * kBlocks);
    if (fd_ >= 0) close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  unsigned ifindex() const { return ifindex_; }

  uint32_t rx(runtime::Link* out, af_packet_stats& stats) {
    uint32_t room = std::min<uint32_t>(LINK_RING_SIZE - link_nreadable(out), kMaxRxPerCall);
    uint32_t received = 0;
    while (room > 0) {
      tpacket_block_desc* block = this->block(block_);
      if (remaining_ == 0) {
        if (!ready(block)) {
          // The kernel does not always start filling at block 0 (frames can arrive between
          // setting up the ring and binding): when it is ahead of us, go to its oldest block.
          const uint32_t oldest = oldest_ready();
          if (oldest == kBlocks) break;
          block_ = oldest;
          block = this->block(block_);
        }
        remaining_ = block->hdr.bh1.num_pkts;
        next_ = reinterpret_cast<uint8_t*>(block) + block->hdr.bh1.offset_to_first_pkt;
      }
      while (remaining_ > 0 && room > 0) {
        auto* h = reinterpret_cast<tpacket3_hdr*>(next_);
        if (packet* p = frame(h)) {
          runtime::link_transmit(out, p);
          stats.rx_packets++;
          stats.rx_bytes += p->length;
          received++;
          room--;
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
        packet* p =
            runtime::link_entry_packet(runtime::link_slot(in, runtime::link_advance(in->read, i)));
        iov[i] = {p->data, p->length};
        msgs[i] = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int sent = sendmmsg(fd_, msgs, n, MSG_DONTWAIT);
      if (sent < 0) {
        if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) break;  // try again next time
        // The kernel will not take the first one (interface down, frame too large, ...): drop it.
        *gone = errno == ENXIO || errno == ENODEV;
        stats.tx_errors++;
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
    if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0) return 0;
    return st.tp_drops;  // since the last read
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(errno_text("af_packet: " + what));
  }
  void option(int name, const void* value, socklen_t len, const char* what) {
    if (setsockopt(fd_, SOL_PACKET, name, value, len) != 0) fail(what);
  }

  tpacket_block_desc* block(uint32_t i) {
    return reinterpret_cast<tpacket_block_desc*>(ring_ + size_t{i} * kBlockSize);
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
  packet* frame(const tpacket3_hdr* h) {
    const uint8_t* data = reinterpret_cast<const uint8_t*>(h) + h->tp_mac;
    const uint32_t len = h->tp_snaplen;
    const bool tagged = h->tp_status & TP_STATUS_VLAN_VALID;
    if (len + (tagged ? 4 : 0) > PACKET_PAYLOAD_SIZE || len < 12) return nullptr;
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

  int fd_ = -1;
  unsigned ifindex_ = 0;
  uint8_t* ring_ = nullptr;
  uint32_t block_ = 0;      // the block being read
  uint32_t remaining_ = 0;  // its packets not yet read
  uint8_t* next_ = nullptr;
};

}  // namespace
}  // namespace snabb::af_packet

using snabb::af_packet::Socket;

struct snabb_af_packet {
  std::string ifname;
  bool promisc;
  int fanout;
  std::unique_ptr<Socket> socket;  // null while the interface is gone
  af_packet_stats stats{};
};

extern "C" {

snabb_af_packet* snabb_af_packet_open(const char* ifname, int promisc, int fanout, char* err,
                                      size_t errlen) {
  try {
    auto s = std::make_unique<snabb_af_packet>();
    s->ifname = ifname;
    s->promisc = promisc != 0;
    s->fanout = fanout;
    s->socket = std::make_unique<Socket>(ifname, s->promisc, fanout);
    return s.release();
  } catch (const std::exception& e) {
    std::snprintf(err, errlen, "%s", e.what());
    return nullptr;
  }
}

uint32_t snabb_af_packet_rx(snabb_af_packet* s, struct link* out) {
  return s->socket ? s->socket->rx(out, s->stats) : 0;
}

uint32_t snabb_af_packet_tx(snabb_af_packet* s, struct link* in) {
  if (!s->socket) {  // gone: what arrives is dropped and counted, so the graph keeps moving
    uint32_t n = 0;
    while (!snabb::runtime::link_empty(in)) {
      snabb::runtime::packet_free(snabb::runtime::link_receive(in));
      s->stats.tx_errors++;
      n++;
    }
    return n;
  }
  bool gone = false;
  const uint32_t n = s->socket->tx(in, s->stats, &gone);
  if (gone) snabb_af_packet_check(s);
  return n;
}

int snabb_af_packet_check(snabb_af_packet* s) {
  const unsigned index = if_nametoindex(s->ifname.c_str());
  if (s->socket && index == s->socket->ifindex()) {
    s->stats.rx_kernel_drops += s->socket->kernel_drops();
    return 1;
  }
  s->socket.reset();
  s->stats.down = 1;
  if (index == 0) return 0;
  try {
    s->socket = std::make_unique<Socket>(s->ifname, s->promisc, s->fanout);
    s->stats.down = 0;
    s->stats.reopened++;
    return 1;
  } catch (const std::exception&) {
    return 0;
  }
}

void snabb_af_packet_stats(snabb_af_packet* s, af_packet_stats* out) { *out = s->stats; }

void snabb_af_packet_close(snabb_af_packet* s) { std::unique_ptr<snabb_af_packet> owned(s); }
}
