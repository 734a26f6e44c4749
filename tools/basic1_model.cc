// basic1_model NPACKETS: a benchmark instrument (tools/, not the runtime), the per-packet work of
// `snabb basic1` (Source -> Tee -> Sink) as plain C++ loops on the runtime's own packet pool and
// links (the free list's and the ring's owners in packet.h and link.h), once for each width of the
// moves that copy a 60-byte packet with its header: 8 bytes (stock LuaJIT), 16 (SSE2), 32 (AVX2)
// and 64 (AVX-512), the last two where the CPU has them. It prints packets per second for each, so
// what copy width alone is worth on this machine is measured, not guessed: the rest (pool, rings,
// drops, link syncs after every app) is the same work the Lua apps do, in the same order. What it
// leaves out is the engine's part: no Lua calls, no TSC reads around each app, no observation.
#include <immintrin.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/link.h"
#include "runtime/packet.h"

namespace {

using namespace snabb::runtime;  // a tool over the runtime, not part of it

constexpr uint32_t kPullPackets = 512;  // engine.pull_burst
constexpr uint16_t kSmall = 60;         // packet.lua's small-clone size: header + 60 bytes = 64

// The free list's address is a constant, as it is in compiled Lua.
packet_freelist* const freelist = snabb_packet_freelist();

packet* pop() {
  if (freelist->nfree == 0 && snabb_packet_grow() <= 0) {
    std::fprintf(stderr, "basic1_model: packet pool exhausted\n");
    std::exit(1);
  }
  return freelist_pop(freelist);
}

// As packet.lua's free: the packet goes back as it is, untouched.
void free_packet(packet* p) { freelist_push(freelist, p); }

// The copies take void*: struct packet is packed (runtime/packet.h), these copy whole aligned
// slots.

// One move per 8-byte word, none merged: the code stock LuaJIT emits for a 64-byte copy.
void copy_words8(void* to, const void* from) {
  auto* d = reinterpret_cast<volatile uint64_t*>(to);
  const auto* s = reinterpret_cast<const uint64_t*>(from);
  for (int i = 0; i < 8; ++i) d[i] = s[i];
}

void copy_sse16(void* to, const void* from) {
  auto* d = reinterpret_cast<__m128i*>(to);
  const auto* s = reinterpret_cast<const __m128i*>(from);
  for (int i = 0; i < 4; ++i) _mm_storeu_si128(d + i, _mm_loadu_si128(s + i));
}

__attribute__((target("avx2"))) void copy_avx32(void* to, const void* from) {
  auto* d = reinterpret_cast<__m256i*>(to);
  const auto* s = reinterpret_cast<const __m256i*>(from);
  for (int i = 0; i < 2; ++i) _mm256_storeu_si256(d + i, _mm256_loadu_si256(s + i));
  _mm256_zeroupper();  // as compiled Lua does after a 32-byte copy
}

__attribute__((target("avx512f"))) void copy_avx64(void* to, const void* from) {
  _mm512_storeu_si512(to, _mm512_loadu_si512(from));
  _mm256_zeroupper();
}

template <void (*Copy)(void*, const void*)>
packet* clone(const packet* p) {
  packet* c = pop();
  Copy(c, p);
  c->headroom = PACKET_HEADROOM;
  return c;
}

struct Graph {
  Link* source_tee = snabb_link_new();
  Link* tee_sink1 = snabb_link_new();
  Link* tee_sink2 = snabb_link_new();
  packet* template_packet = pop();
  Graph(const Graph&) = delete;
  Graph() {
    template_packet->length = kSmall;
    template_packet->headroom = PACKET_HEADROOM;
    std::fill_n(template_packet->data, kSmall, 0);
  }
  ~Graph() {
    free_packet(template_packet);
    for (Link* l : {source_tee, tee_sink1, tee_sink2}) snabb_link_delete(l);
  }
};

// One breath: Source's pull, then Tee's and Sink's pushes, each followed by the engine's link
// syncs.
template <void (*Copy)(void*, const void*)>
uint32_t breathe(Graph& g) {
  const uint32_t n = std::min(kPullPackets, LINK_RING_SIZE - link_nreadable(g.source_tee));
  for (uint32_t i = 0; i < n; ++i) link_transmit(g.source_tee, clone<Copy>(g.template_packet));
  link_sync(g.source_tee);

  for (uint32_t i = link_nreadable(g.source_tee); i > 0; --i) {
    packet* p = link_receive(g.source_tee);
    link_transmit(g.tee_sink1, clone<Copy>(p));
    link_transmit(g.tee_sink2, p);
  }
  for (Link* l : {g.source_tee, g.tee_sink1, g.tee_sink2}) link_sync(l);

  for (Link* l : {g.tee_sink1, g.tee_sink2}) {
    for (uint32_t i = link_nreadable(l); i > 0; --i) free_packet(link_receive(l));
    link_sync(l);
  }
  return n;
}

// Mpps of Source packets over npackets.
template <void (*Copy)(void*, const void*)>
double run(double npackets) {
  Graph g;
  for (int i = 0; i < 1000; ++i) breathe<Copy>(g);  // warm the pool and caches
  double sent = 0;
  const uint64_t start = rdtsc();
  while (sent < npackets) sent += breathe<Copy>(g);
  return sent / ((rdtsc() - start) / tsc_hz()) / 1e6;
}

// The core's clock in TSC cycles: a chain of dependent adds runs at one per core cycle. (Under a
// hypervisor the TSC ticks at its nominal rate while the core may run faster: figures in "cycles"
// elsewhere are TSC cycles.)
double core_cycles_per_tsc_cycle() {
  constexpr uint64_t kAdds = 400'000'000;
  uint64_t x = 0;
  const uint64_t start = rdtsc();
  for (uint64_t i = 0; i < kAdds / 4; ++i) {
    asm volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
  }
  return static_cast<double>(kAdds) / static_cast<double>(rdtsc() - start);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace snabb::runtime;
  const double npackets = argc > 1 ? std::atof(argv[1]) : 100e6;
  if (argc > 2 || !(npackets >= 1)) {
    std::fprintf(stderr, "usage: basic1_model [NPACKETS]   (default 100e6)\n");
    return 2;
  }
  if (freelist == nullptr) {
    std::fprintf(stderr, "basic1_model: %s\n", snabb_error());
    return 1;
  }
  const double ratio = core_cycles_per_tsc_cycle();
  std::printf("core clock %.2f GHz, TSC %.2f GHz: a TSC cycle is %.2f core cycles\n",
              ratio * tsc_hz() / 1e9, tsc_hz() / 1e9, ratio);
  struct Variant {
    const char* name;
    double (*run)(double);
    bool supported;
    std::vector<double> mpps;
  };
  std::vector<Variant> variants = {
      {"8-byte", run<copy_words8>, true, {}},
      {"16-byte", run<copy_sse16>, true, {}},
      {"32-byte", run<copy_avx32>, __builtin_cpu_supports("avx2") != 0, {}},
      {"64-byte", run<copy_avx64>, __builtin_cpu_supports("avx512f") != 0, {}},
  };
  for (int i = 1; i <= 5; ++i) {  // alternating, so host noise hits all alike
    std::printf("run %d:", i);
    for (Variant& v : variants) {
      if (!v.supported) continue;
      v.mpps.push_back(v.run(npackets));
      std::printf(" %s moves %.1f Mpps%s", v.name, v.mpps.back(),
                  &v == &variants.back() ? "" : ",");
    }
    std::printf("\n");
  }
  std::printf("basic1 model, %.0f packets, median of 5:\n", npackets);
  for (const Variant& v : variants) {
    if (!v.supported) continue;
    const double m = median(v.mpps);
    std::printf("  %s moves %.1f Mpps (%.1f TSC cycles per Source packet)\n", v.name, m,
                tsc_hz() / m / 1e6);
  }
  return 0;
}
