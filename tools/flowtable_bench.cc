// The C++ side of tools/bench-flowtable: std::unordered_map lookups per second on the same keys
// as lib.ctable's, hits and misses, for a 16-byte 5-tuple-sized key and a uint32_t key.
//
//   flowtable_bench gen FILE KEYSIZE N SEED   writes 3N keys of KEYSIZE (4 or 16) bytes: N to
//       insert, the same N in a shuffled order (the hit lookups), N keys not inserted (misses);
//   flowtable_bench run FILE KEYSIZE N PASSES inserts the first N into an unordered_map (reserved
//       for N) and prints "hit MLOOKUPS_PER_S found F" and "miss ...", each over PASSES passes of
//       the N lookups (per CPU second), and a checksum of the values found.
//
// The keys: key i of 3N carries a 32-bit bijective mix of i in its first word (so all differ); a
// 16-byte key is an IPv4 5-tuple with that word as source address and random ports, destination
// and protocol. The unordered_map hashes a uint32_t with std::hash (the identity in libstdc++) and
// a 16-byte key with std::hash of its two 64-bit halves, combined: cheaper than lib.ctable's
// seeded hash, to the peer's advantage.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

struct Key16 {
  std::array<uint64_t, 2> w;
  bool operator==(const Key16& o) const { return w == o.w; }
};

struct Hash16 {
  size_t operator()(const Key16& k) const {
    size_t a = std::hash<uint64_t>{}(k.w[0]), b = std::hash<uint64_t>{}(k.w[1]);
    return a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
  }
};

// CPU time, as the Lua side's os.clock(): steadier than wall time while others load the machine.
double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// A bijection of 32-bit integers (murmur3's finalizer).
uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x85ebca6bU;
  x ^= x >> 13;
  x *= 0xc2b2ae35U;
  x ^= x >> 16;
  return x;
}

int usage() {
  std::fprintf(stderr,
               "usage: flowtable_bench gen FILE KEYSIZE N SEED | run FILE KEYSIZE N PASSES\n");
  return 2;
}

int gen(const char* file, int keysize, uint32_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> keys(size_t{3} * n * keysize);
  std::vector<uint32_t> order(n);
  for (uint32_t i = 0; i < n; i++) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<uint8_t> key(keysize);
  auto make = [&](uint32_t i) {
    uint32_t first = mix32(i ^ static_cast<uint32_t>(seed));
    std::memcpy(key.data(), &first, 4);
    if (keysize == 16) {
      uint64_t r = rng();
      uint32_t dst = 0x0a000000 | (r & 0xffffff);  // 10.x.y.z
      uint16_t sport = r >> 24, dport = r >> 40;
      std::memcpy(&key[4], &dst, 4);
      std::memcpy(&key[8], &sport, 2);
      std::memcpy(&key[10], &dport, 2);
      key[12] = (r >> 56) & 1 ? 6 : 17;
      key[13] = key[14] = key[15] = 0;
    }
  };
  for (uint32_t i = 0; i < n; i++) {
    make(i);
    std::memcpy(&keys[size_t{i} * keysize], key.data(), keysize);
  }
  for (uint32_t i = 0; i < n; i++) {
    std::memcpy(&keys[(size_t{n} + i) * keysize], &keys[size_t{order[i]} * keysize], keysize);
    make(n + i);
    std::memcpy(&keys[(size_t{2} * n + i) * keysize], key.data(), keysize);
  }
  std::ofstream out(file, std::ios::binary);
  out.write(reinterpret_cast<const char*>(keys.data()), static_cast<std::streamsize>(keys.size()));
  return out ? 0 : 1;
}

template <typename K, typename H>
int run(const std::vector<uint8_t>& bytes, uint32_t n, int passes) {
  auto key = [&](size_t i) {
    K k;
    std::memcpy(&k, &bytes[i * sizeof(K)], sizeof(K));
    return k;
  };
  std::unordered_map<K, uint32_t, H> map;
  map.reserve(n);
  for (uint32_t i = 0; i < n; i++) map.emplace(key(i), i);
  // Lookup keys in a flat array, as lib.ctable's side reads them.
  std::vector<K> hits(n), misses(n);
  for (uint32_t i = 0; i < n; i++) {
    hits[i] = key(n + i);
    misses[i] = key(size_t{2} * n + i);
  }
  uint64_t sum = 0;
  for (const auto* set : {&hits, &misses}) {
    double t0 = cpu_seconds();
    uint64_t found = 0;
    for (int p = 0; p < passes; p++) {
      for (const K& k : *set) {
        auto it = map.find(k);
        if (it != map.end()) {
          sum += it->second;
          found++;
        }
      }
    }
    double s = cpu_seconds() - t0;
    std::printf("%s %.3f found %llu\n", set == &hits ? "hit" : "miss",
                static_cast<double>(n) * passes / s / 1e6, static_cast<unsigned long long>(found));
  }
  std::printf("checksum %llu\n", static_cast<unsigned long long>(sum));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) return usage();
  std::string mode = argv[1];
  int keysize = std::atoi(argv[3]);
  uint32_t n = static_cast<uint32_t>(std::strtoul(argv[4], nullptr, 10));
  if ((keysize != 4 && keysize != 16) || n == 0) return usage();
  if (mode == "gen") return gen(argv[2], keysize, n, std::strtoull(argv[5], nullptr, 10));
  if (mode != "run") return usage();
  std::ifstream in(argv[2], std::ios::binary);
  std::vector<uint8_t> bytes(size_t{3} * n * keysize);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()))) {
    std::fprintf(stderr, "flowtable_bench: %s: cannot read %zu bytes\n", argv[2], bytes.size());
    return 1;
  }
  int passes = std::atoi(argv[5]);
  if (keysize == 4) return run<uint32_t, std::hash<uint32_t>>(bytes, n, passes);
  return run<Key16, Hash16>(bytes, n, passes);
}
