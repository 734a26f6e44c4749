// sample-cost: what one profiling sample costs this machine, by design. It spins reading the TSC
// for SECONDS; every gap over 300 cycles is an interruption (gaps over 100 us are taken as the
// thread being preempted and left out). Prints interruptions per second of running time, their
// median length and the share of running time they take, under one sampling design:
//   0 none; 1 a 1 kHz wall-clock timer (CLOCK_MONOTONIC) sending SIGPROF to an empty handler,
//   as jit/vmprofile did; 2 perf_event_open's cpu-clock sampling at 1 kHz into an mmap ring, no
//   signal; 4 a timer of the thread's CPU time sending SIGPROF, which the kernel checks at its
//   scheduler tick, as jit/vmprofile does now; 5 (no SECONDS) what sending a signal to itself and
//   handling it takes, the part of a sample the CPU-time timer adds to a tick.
// Build and run alternating (the figures in README.md, "The cost of always-on observation"):
//   gcc -O2 -o /tmp/sample-cost tools/sample-cost.c
//   for r in $(seq 12); do for m in 0 1 2 4; do taskset -c 1 /tmp/sample-cost $m 1; done; done
#define _GNU_SOURCE
#include <linux/perf_event.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

static volatile uint64_t signals;
static void on_signal(int s, siginfo_t* i, void* c) { signals++; }
static int compare(const void* a, const void* b) {
  const uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  if (argc < 3 && !(argc == 2 && atoi(argv[1]) == 5)) {
    fprintf(stderr,
            "usage: sample-cost MODE SECONDS (MODE: 0 none, 1 wall timer, 2 perf, 4 cpu timer, 5 "
            "signal)\n");
    return 2;
  }
  const int mode = atoi(argv[1]);
  if (mode == 5) {  // a signal's delivery alone: sent to ourselves, no interrupt involved
    struct sigaction sa = {0};
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, NULL);
    const int n = 100000;
    const uint64_t start = __rdtsc();
    for (int i = 0; i < n; i++) syscall(SYS_tgkill, getpid(), gettid(), SIGPROF);
    printf("mode 5: %.2f us per signal sent to itself and handled\n",
           (__rdtsc() - start) / 2600.0 / n);
    return 0;
  }
  const double seconds = atof(argv[2]);
  struct perf_event_mmap_page* ring = NULL;
  if (mode == 1 || mode == 4) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, NULL);
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev._sigev_un._tid = gettid();
    ev.sigev_signo = SIGPROF;
    timer_t timer;
    if (timer_create(mode == 1 ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &ev, &timer) != 0) {
      perror("timer_create");
      return 1;
    }
    const struct itimerspec period = {{0, 1000000}, {0, 1000000}};
    timer_settime(timer, 0, &period, NULL);
  } else if (mode == 2) {
    struct perf_event_attr a = {0};
    a.size = sizeof a;
    a.type = PERF_TYPE_SOFTWARE;
    a.config = PERF_COUNT_SW_CPU_CLOCK;
    a.sample_period = 1000000;  // ns
    a.sample_type = PERF_SAMPLE_IP;
    a.exclude_kernel = 1;
    a.exclude_hv = 1;
    const int fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) {
      perror("perf_event_open");
      return 1;
    }
    ring = mmap(NULL, 65 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ring == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
  }
  static uint64_t gaps[1 << 20];
  size_t n = 0;
  uint64_t lost = 0, preempted = 0;
  const uint64_t tsc_hz = 2600000000ull;  // this VM's TSC; only scales the figures
  const uint64_t end = __rdtsc() + (uint64_t)(seconds * tsc_hz);
  uint64_t prev = __rdtsc();
  for (;;) {
    const uint64_t t = __rdtsc(), d = t - prev;
    prev = t;
    if (d > 300) {
      if (d < 100 * tsc_hz / 1000000) {
        if (n < sizeof gaps / sizeof gaps[0]) gaps[n++] = d;
        lost += d;
      } else {
        preempted += d;
      }
    }
    if (t > end) break;
  }
  qsort(gaps, n, sizeof gaps[0], compare);
  const double running = (seconds * tsc_hz - preempted) / tsc_hz;
  // A PERF_SAMPLE_IP record is 16 bytes (header and ip).
  const uint64_t samples = ring ? ring->data_head / 16 : signals;
  printf("mode %d: %.0f gaps/s, median %.1f us, lost %.2f%% of running time, %.0f samples/s\n",
         mode, n / running, (n ? gaps[n / 2] : 0) * 1e6 / tsc_hz, 100.0 * lost / (running * tsc_hz),
         samples / running);
  return 0;
}
