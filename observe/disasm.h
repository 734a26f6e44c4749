// Machine code to text through Capstone (Debian's libcapstone), for `snabb auditlog`: LuaJIT's own
// disassembler modules are not in the binary. Intel syntax, as jit.dump prints it.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
/* Disassembles len bytes of code that runs at address into out (NUL-terminated, cut to outlen),
   one instruction a line: "address  mnemonic operands", addresses as %012x; a byte Capstone cannot
   decode is ".byte 0xNN". Returns the length of the whole text (if it is outlen or more, call again
   with a bigger buffer), or -1 if Capstone cannot start (snabb_error() says why). */
int snabb_disasm(const uint8_t* code, size_t len, uint64_t address, char* out, size_t outlen);
// END FFI

#ifdef __cplusplus
}

#include <cstdint>
#include <span>
#include <string>

namespace snabb::observe {

// The text snabb_disasm writes; throws std::runtime_error if Capstone cannot start.
std::string disassemble(std::span<const uint8_t> code, uint64_t address);

}  // namespace snabb::observe
#endif
