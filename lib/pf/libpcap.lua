-- lib.pf.libpcap: libpcap's own filter compiler and BPF interpreter through the FFI (libpcap is
-- linked into the binary), the oracle that lib.pf and lib.pf.bpf are tested against and the
-- source of the BPF that lib.pf.bpf translates. Expressions are compiled for Ethernet
-- (DLT_EN10MB) on a dead handle, optimised unless asked not to, with an unknown netmask, as
-- `tcpdump -d` does offline; packets are matched by pcap_offline_filter (bpf_filter underneath).
local ffi = require("ffi")
local C = ffi.C

-- libpcap's struct bpf_insn, bpf_program and pcap_pkthdr (of 64-bit Linux: its struct timeval
-- is two longs) under our own names: ljsyscall, which every snabb process loads, declares struct
-- bpf_insn as eBPF's instruction and struct timeval its own way.
ffi.cdef([[
struct snabb_bpf_insn { uint16_t code; uint8_t jt; uint8_t jf; uint32_t k; };
struct snabb_bpf_program { unsigned int bf_len; struct snabb_bpf_insn *bf_insns; };
struct snabb_pf_pkthdr { long tv_sec; long tv_usec; uint32_t caplen; uint32_t len; };
typedef struct pcap pcap_t;
pcap_t *pcap_open_dead(int linktype, int snaplen);
void pcap_close(pcap_t *p);
int pcap_compile(pcap_t *p, struct snabb_bpf_program *fp, const char *str, int optimize,
                 uint32_t netmask);
char *pcap_geterr(pcap_t *p);
void pcap_freecode(struct snabb_bpf_program *fp);
int pcap_offline_filter(const struct snabb_bpf_program *fp, const struct snabb_pf_pkthdr *h,
                        const uint8_t *pkt);
unsigned int bpf_filter(const struct snabb_bpf_insn *pc, const uint8_t *pkt, unsigned int wirelen,
                        unsigned int buflen);
/* Reading and writing captures as tcpdump does (programs/filter). */
pcap_t *pcap_open_offline_with_tstamp_precision(const char *fname, unsigned int precision,
                                                char *errbuf);
int pcap_next_ex(pcap_t *p, struct snabb_pf_pkthdr **h, const uint8_t **data);
int pcap_datalink(pcap_t *p);
const char *pcap_datalink_val_to_name(int dlt);
void *pcap_dump_open(pcap_t *p, const char *fname);
void pcap_dump(uint8_t *dumper, const struct snabb_pf_pkthdr *h, const uint8_t *data);
int pcap_dump_flush(void *dumper);
void pcap_dump_close(void *dumper);
]])

local M = {}

M.DLT_EN10MB = 1
M.SNAPLEN = 262144
local NETMASK_UNKNOWN = 0xffffffff

-- The program of `expr` (cdata struct snabb_bpf_program, freed with pcap_freecode when
-- collected), or nil and libpcap's message (pcap_geterr), e.g. "syntax error" or "illegal port
-- number 99999 > 65535". A dead handle for each compile, closed after it (the program does not
-- need it; one kept for the process's life was LeakSanitizer's "leak" at exit): pcap_compile
-- reads its link type and snapshot length and keeps its last error in it.
function M.compile (expr, optimize)
   assert(type(expr) == "string", "expression must be a string")
   local dead = C.pcap_open_dead(M.DLT_EN10MB, M.SNAPLEN)
   assert(dead ~= nil, "pcap_open_dead failed")
   local prog = ffi.new("struct snabb_bpf_program")
   local err
   if C.pcap_compile(dead, prog, expr, optimize == false and 0 or 1, NETMASK_UNKNOWN) ~= 0 then
      err = ffi.string(C.pcap_geterr(dead))
   end
   C.pcap_close(dead)
   if err then return nil, err end
   return ffi.gc(prog, C.pcap_freecode)
end

-- Whether the packet at ptr (caplen bytes present, wirelen on the wire, caplen by default) passes
-- prog, by libpcap's interpreter.
local hdr = ffi.new("struct snabb_pf_pkthdr")
function M.match (prog, ptr, caplen, wirelen)
   hdr.caplen, hdr.len = caplen, wirelen or caplen
   return C.pcap_offline_filter(prog, hdr, ptr) ~= 0
end

-- prog's instructions as a Lua array of {code =, jt =, jf =, k =} (numbers), as `tcpdump -dd`.
function M.instructions (prog)
   local insns = {}
   for i = 0, prog.bf_len - 1 do
      local ins = prog.bf_insns[i]
      insns[i + 1] = {code = ins.code, jt = ins.jt, jf = ins.jf, k = tonumber(ins.k)}
   end
   return insns
end

function M.selftest ()
   print("selftest: lib.pf.libpcap")
   -- "tcp port 80" as `tcpdump -dd -y EN10MB 'tcp port 80'` (libpcap 1.10.3) prints it: first
   -- ldh [12] (0x28), jeq #0x86dd.
   local prog = assert(M.compile("tcp port 80"))
   local insns = M.instructions(prog)
   assert(#insns == prog.bf_len and #insns > 10, #insns)
   assert(insns[1].code == 0x28 and insns[1].k == 12, "first instruction: ldh [12]")
   assert(insns[2].code == 0x15 and insns[2].k == 0x86dd, "second: jeq #0x86dd")
   assert(insns[#insns].code == 0x06 and insns[#insns].k == 0, "last: ret #0")
   local unopt = assert(M.compile("tcp port 80", false))
   assert(unopt.bf_len > prog.bf_len, "the unoptimised program is longer")
   -- Errors are libpcap's text.
   local p, err = M.compile("tcp port")
   assert(p == nil and err == "can't parse filter expression: syntax error", err)
   p, err = M.compile("port 99999")
   assert(p == nil and err == "illegal port number 99999 > 65535", err)
   p, err = M.compile("vlan 5000")
   assert(p == nil and err == "VLAN tag 5000 greater than maximum 4095", err)
   -- libpcap 1.10.3 takes a protocol number over 255 (its test of the byte is never true).
   assert(M.compile("ip proto 300"))
   -- A TCP SYN to port 80 in IPv4 over Ethernet (54 bytes): Ethernet, IPv4 (IHL 5, proto 6),
   -- TCP from 1234 to 80, flags SYN.
   local frame = ffi.new("uint8_t[54]")
   local bytes = {
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00, -- Ethernet, IPv4
      0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 192, 168, 1, 2, -- IPv4, TCP
      0x04, 0xd2, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0, 0, 0, 0, 0, 0} -- TCP, SYN
   for i, b in ipairs(bytes) do frame[i - 1] = b end
   assert(M.match(prog, frame, 54) and M.match(unopt, frame, 54, 60))
   assert(M.match(assert(M.compile("net 192.168.0.0/16")), frame, 54))
   assert(M.match(assert(M.compile("tcp[tcpflags] & tcp-syn != 0")), frame, 54))
   assert(not M.match(assert(M.compile("udp")), frame, 54))
   assert(not M.match(assert(M.compile("ip6")), frame, 54))
   -- len is the wire length; a load past caplen rejects.
   local greater = assert(M.compile("greater 100"))
   assert(not M.match(greater, frame, 54) and M.match(greater, frame, 54, 200))
   assert(not M.match(prog, frame, 36, 54), "the port lies past 36 captured bytes")
   -- bpf_filter itself (what tools/bench-filter times) agrees.
   assert(C.bpf_filter(prog.bf_insns, frame, 54, 54) ~= 0)
   assert(C.bpf_filter(prog.bf_insns, frame, 54, 36) == 0)
   print("selftest: ok")
end

return M
