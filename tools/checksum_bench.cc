// tools/checksum_bench.cc: what one IP checksum costs on the bulk sum's two paths (lib/checksum.cc)
// for 20- (an IPv4 header), 64-, 576- and 1500-byte buffers: cksum_sse2 (portable) and
// cksum_generic (what Lua's lib.checksum.ipsum calls: AVX2 on a CPU that has it). Rounds
// alternate the paths so a noisy machine loads both alike; prints the median ns and TSC cycles
// per sum of each, and the portable/AVX2 ratio. Usage: checksum_bench [ROUNDS [SUMS_PER_ROUND]]
// (tools/bench-checksum).
#include <x86intrin.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "lib/c_helpers.h"

namespace {

using Sum = uint16_t (*)(unsigned char*, size_t, uint16_t);

struct Path {
  const char* name;
  Sum sum;
};

struct Cost {
  double ns, cycles;
};

// `sums` checksums of `size` bytes at successive offsets of `data` (16 packets' worth, in L1).
Cost run(Sum sum, std::vector<unsigned char>& data, size_t size, long sums) {
  volatile uint16_t sink = 0;
  uint16_t acc = 0;
  size_t slots = data.size() / 2048;
  auto t0 = std::chrono::steady_clock::now();
  uint64_t c0 = __rdtsc();
  for (long i = 0; i < sums; ++i) {
    acc ^= sum(&data[(static_cast<size_t>(i) % slots) * 2048], size, static_cast<uint16_t>(i));
  }
  uint64_t c1 = __rdtsc();
  auto t1 = std::chrono::steady_clock::now();
  sink = acc;
  (void)sink;
  double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
  return {ns / static_cast<double>(sums), static_cast<double>(c1 - c0) / static_cast<double>(sums)};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = argc > 1 ? std::atoi(argv[1]) : 9;
  long sums = argc > 2 ? std::atol(argv[2]) : 2000000;
  if (rounds < 1 || sums < 1) {
    std::fprintf(stderr, "usage: checksum_bench [ROUNDS [SUMS_PER_ROUND]]\n");
    return 2;
  }
  std::mt19937 random(1071);
  std::vector<unsigned char> data(16 * 2048);
  for (auto& b : data) b = static_cast<unsigned char>(random());
  const std::array<Path, 2> paths = {
      {{"portable (cksum_sse2)", cksum_sse2}, {"AVX2 (cksum_generic)", cksum_generic}}};
  std::printf("AVX2 path in use: %s; %d rounds of %ld sums, median per sum\n",
              cksum_has_avx2() ? "yes" : "no (cksum_generic runs the portable path)", rounds, sums);
  std::printf("%6s  %-26s %8s %8s\n", "bytes", "path", "ns", "cycles");
  for (size_t size : {20, 64, 576, 1500}) {
    std::array<std::vector<double>, paths.size()> ns, cycles;
    for (int r = 0; r < rounds; ++r) {
      for (size_t k = 0; k < paths.size(); ++k) {
        Cost c = run(paths[k].sum, data, size, sums);
        ns[k].push_back(c.ns);
        cycles[k].push_back(c.cycles);
      }
    }
    for (size_t k = 0; k < paths.size(); ++k) {
      std::printf("%6zu  %-26s %8.2f %8.1f\n", size, paths[k].name, median(ns[k]),
                  median(cycles[k]));
    }
    std::printf("%6zu  %-26s %8.2fx\n", size, "portable / AVX2", median(ns[0]) / median(ns[1]));
  }
}
