#include "observe/disasm.h"

#include <capstone/capstone.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "runtime/error.h"

namespace snabb::observe {
namespace {

#if defined(__x86_64__)
constexpr cs_arch kArch = CS_ARCH_X86;
constexpr cs_mode kMode = CS_MODE_64;
#elif defined(__aarch64__)
constexpr cs_arch kArch = CS_ARCH_ARM64;
constexpr cs_mode kMode = CS_MODE_LITTLE_ENDIAN;
#else
#error "snabb_disasm: no Capstone architecture for this target"
#endif

class Capstone {
 public:
  Capstone() {
    if (cs_err err = cs_open(kArch, kMode, &handle_); err != CS_ERR_OK) {
      throw std::runtime_error(std::string("capstone: ") + cs_strerror(err));
    }
  }
  ~Capstone() { cs_close(&handle_); }
  Capstone(const Capstone&) = delete;
  Capstone& operator=(const Capstone&) = delete;
  csh get() const { return handle_; }

 private:
  csh handle_ = 0;
};

struct InsnFree {
  void operator()(cs_insn* insn) const { cs_free(insn, 1); }
};

void append_line(std::string& text, uint64_t address, const char* mnemonic, const char* operands) {
  char line[256];
  std::snprintf(line, sizeof line, "%012" PRIx64 "  %-6s %s\n", address, mnemonic, operands);
  text += line;
}

}  // namespace

std::string disassemble(std::span<const uint8_t> code, uint64_t address) {
  Capstone cs;
  std::unique_ptr<cs_insn, InsnFree> insn(cs_malloc(cs.get()));
  if (!insn) throw std::runtime_error("capstone: out of memory");
  std::string text;
  const uint8_t* p = code.data();
  size_t left = code.size();
  while (left > 0) {
    if (cs_disasm_iter(cs.get(), &p, &left, &address, insn.get())) {
      append_line(text, insn->address, insn->mnemonic, insn->op_str);
    } else {  // not an instruction: show the byte and go on after it
      char byte[8];
      std::snprintf(byte, sizeof byte, "0x%02x", *p);
      append_line(text, address, ".byte", byte);
      ++p, --left, ++address;
    }
  }
  return text;
}

}  // namespace snabb::observe

extern "C" int snabb_disasm(const uint8_t* code, size_t len, uint64_t address, char* out,
                            size_t outlen) {
  try {
    const std::string text = snabb::observe::disassemble({code, len}, address);
    if (outlen > 0) {
      const size_t n = std::min(text.size(), outlen - 1);
      std::memcpy(out, text.data(), n);
      out[n] = '\0';
    }
    return static_cast<int>(text.size());
  } catch (const std::exception& e) {
    snabb::runtime::set_error(e.what());
    return -1;
  }
}
