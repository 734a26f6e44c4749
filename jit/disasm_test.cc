#include "jit/disasm.h"

#include <gtest/gtest.h>

#include <array>

namespace snabb::observe {
namespace {

TEST(Disasm, IntelSyntaxOneLinePerInstruction) {
  // mov rax, rbx; add eax, 1; ret
  const std::array<uint8_t, 7> code = {0x48, 0x89, 0xd8, 0x83, 0xc0, 0x01, 0xc3};
  EXPECT_EQ(disassemble(code, 0x1000),
            "000000001000  mov    rax, rbx\n"
            "000000001003  add    eax, 1\n"
            "000000001006  ret    \n");
}

TEST(Disasm, UndecodableBytesAreShownAndSkipped) {
  const std::array<uint8_t, 2> code = {0x0f, 0xc3};  // 0f 0b would be ud2; 0f alone is not
  const std::string text = disassemble(std::span(code).first(1), 0x10);
  EXPECT_EQ(text, "000000000010  .byte  0x0f\n");
}

TEST(Disasm, CFunctionTruncatesAndReportsTheFullLength) {
  const std::array<uint8_t, 1> ret = {0xc3};
  char small[8];
  const int n = snabb_disasm(ret.data(), ret.size(), 0, small, sizeof small);
  EXPECT_EQ(n, static_cast<int>(disassemble(ret, 0).size()));
  EXPECT_EQ(std::string(small), disassemble(ret, 0).substr(0, sizeof small - 1));
}

}  // namespace
}  // namespace snabb::observe
