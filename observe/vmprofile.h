// vmprofile: where the CPU goes, per profile zone, always on. A timer signal (SIGPROF) of the
// engine thread's CPU time samples the interrupted instruction pointer: inside a trace's machine
// code it counts for that trace (loop or head part); elsewhere the binary's symbol table says what
// it is (interpreter, GC, JIT compiler, trace exits, our C++ runtime, other C code). Nothing is
// added to compiled traces. The kernel checks CPU-time timers at its scheduler tick, so the rate
// is at most the tick's (250 Hz with HZ=250, as here) and sampling adds no interrupts: a 1 kHz
// wall-clock timer's own interrupts cost 5.8% of basic1 in this VM (README, performance).
//
// Each zone is a file, memory-mapped, holding a matrix counts[trace][state] (struct
// vmprofile_file), so another process can read it while the program runs. The engine makes each
// app a zone (runtime::current_profile_zone is set around every app call); samples outside app
// calls go to the base zone (snabb_vmprofile_select). The zone of an app that leaves the graph is
// closed (unmapped, its file kept) and its id reused, so a process may see any number of apps.
//
// Where in a trace: the process's address table (struct vmprofile_addresses, one file per process:
// vmprofile/addresses in a run directory, FILE.addresses beside snabb -p FILE) counts each sample
// that lands in a trace's machine code by (trace number, flushes seen, absolute address). Trace
// numbers are reused after a jit.flush(), so the absolute address and the flush count are kept: a
// reader takes the auditlog trace of that number and generation (AUDITLOG.md: flushes before it
// started) whose machine code holds the address (snabb inspect's hot machine code and source
// view). The handler writes it lock-free: open addressing, linear probing of at most
// VMPROFILE_ADDRESS_PROBES slots from the key's hash; a key that finds neither its slot nor a free
// one counts in `overflow` (so sum(count) + overflow == samples). A slot is claimed by writing its
// trace, flushes and count before its address (0: free), so a reader in another process that sees
// an address sees the rest (x86-64 keeps stores in order). Nothing is allocated in the handler;
// the file is sparse (1.5 MiB, pages written where slots are taken).
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
enum {
  VMPROFILE_VERSION = 1,
  VMPROFILE_MAX_TRACE = 8191, /* traces with higher numbers count in row 0 */
  /* Zones open at once, including the unused id 0: one per app of the graph and the engine's.
     Each is a mapping (vm.max_map_count allows 65,530 per process by default). */
  VMPROFILE_MAX_ZONES = 32768,
  VMPROFILE_ADDRESSES_VERSION = 1,
  VMPROFILE_ADDRESS_SLOTS = 65536, /* a power of two */
  VMPROFILE_ADDRESS_PROBES = 32    /* slots tried per sample before it counts as overflow */
};

enum vmprofile_state {
  VMPROFILE_LOOP,     /* a trace's loop (after its LOOP label) */
  VMPROFILE_HEAD,     /* a trace's head, or a trace without a loop */
  VMPROFILE_INTERP,   /* LuaJIT's interpreter and the runtime functions it calls */
  VMPROFILE_C,        /* FFI calls into C, libc, the kernel (as seen from user space) */
  VMPROFILE_GC,       /* garbage collector and allocator */
  VMPROFILE_EXIT,     /* trace exit handling (snapshot restore) */
  VMPROFILE_RECORD,   /* JIT compiler: recording */
  VMPROFILE_OPTIMISE, /* JIT compiler: IR optimisation */
  VMPROFILE_ASSEMBLE, /* JIT compiler: machine code generation */
  VMPROFILE_RUNTIME,  /* snabb's C++ runtime (engine, links, packets) and the Lua C API it calls */
  VMPROFILE_STATES
};

/* The layout of a .vmprofile file. */
struct vmprofile_file {
  char magic[8]; /* "SNABBVMP" */
  uint32_t version;
  uint32_t states;    /* VMPROFILE_STATES */
  uint32_t max_trace; /* counts has max_trace + 1 rows */
  uint32_t hz;        /* samples per second of CPU time */
  char zone[64];      /* the zone's name, NUL-terminated */
  uint64_t samples;
  uint64_t counts[VMPROFILE_MAX_TRACE + 1][VMPROFILE_STATES];
};

/* One slot of the address table; address 0: free. */
struct vmprofile_address {
  uint64_t address; /* the sampled instruction pointer, inside the trace's machine code */
  uint32_t trace;   /* the trace's number (any: also those above VMPROFILE_MAX_TRACE) */
  uint32_t flushes; /* jit.flush() calls the profiler had seen at the sample */
  uint64_t count;
};

/* The layout of an address table file (all integers little-endian). */
struct vmprofile_addresses {
  char magic[8];     /* "SNABBVMA" */
  uint32_t version;  /* VMPROFILE_ADDRESSES_VERSION */
  uint32_t slots;    /* VMPROFILE_ADDRESS_SLOTS */
  uint32_t hz;       /* as the zone files' */
  uint32_t probes;   /* VMPROFILE_ADDRESS_PROBES */
  uint64_t samples;  /* samples in traces' machine code: sum of the slots' counts + overflow */
  uint64_t overflow; /* samples whose key found no slot */
  uint64_t used;     /* slots taken */
  uint64_t reserved[2];
  struct vmprofile_address slot[VMPROFILE_ADDRESS_SLOTS];
};

/* Creates (or truncates) a zone file, or with `append` adds to the counts already in one; returns
   the zone's id (> 0), or -1 (snabb_vmprofile_error). */
int snabb_vmprofile_zone(const char* path, const char* name, int append);
/* Creates (or truncates) the process's address table file and counts samples in traces there;
   replaces the one open before (unmapped, its file kept). 0, or -1 (snabb_vmprofile_error). */
int snabb_vmprofile_addresses(const char* path);
/* Unmaps a zone (its file stays) and frees its id for another zone; samples that would have gone
   to it go to the selected zone. */
void snabb_vmprofile_zone_close(int zone);
/* The zone for samples outside app calls. */
void snabb_vmprofile_select(int zone);
/* Starts the timer (hz samples per second of the calling thread's CPU time, at most one per
   kernel tick, delivered to that thread); 0, or -1 (snabb_vmprofile_error). */
int snabb_vmprofile_start(int hz);
/* The rate in effect (what zone files record as hz): the one asked for or the tick's, the lower;
   0 when stopped. */
int snabb_vmprofile_hz(void);
void snabb_vmprofile_stop(void);
/* A trace's machine code (jit.util.tracemc): where it is and where its loop starts (0: none). */
void snabb_vmprofile_trace(int trace, uint64_t address, uint32_t size, uint32_t loop);
/* jit.flush(): every trace is gone. */
void snabb_vmprofile_flush(void);
/* Unmaps every zone and the address table and stops the timer. */
void snabb_vmprofile_close(void);
/* For tests: the state an address is classified as and its trace (0 when none); the address of a
   code symbol of the binary (0 when there is none), hidden and static ones too. */
uint64_t snabb_vmprofile_symbol(const char* name);
int snabb_vmprofile_classify(uint64_t address, int* trace);
const char* snabb_vmprofile_error(void);
// END FFI

#ifdef __cplusplus
}
#endif
