// File: tests/store/verify_test.cc
//
// verify_loaded on bytes in a memfd (standing in for a loaded extent): a file
// whose name promises safetensors or GGUF must parse as that format, or the
// load fails with the parser's reason; other names are detected by their
// bytes and stay raw when those do not parse.
#include "broker/store/verify.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace modelpool::broker {
namespace {

std::string le64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(v >> (8 * i));
  return out;
}

// A valid safetensors file with one F32 tensor of 4 elements.
std::string safetensors_file() {
  const std::string header = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  return le64(header.size()) + header + std::string(16, '\1');
}

// The safetensors bytes of the report: a header length of 2^40.
std::string huge_header_length() { return le64(1ULL << 40) + "{}" + std::string(100, ' '); }

Result<layout::Format> verify(const std::string& bytes, const std::string& name) {
  const int fd = ::memfd_create("verify_test", MFD_CLOEXEC);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  auto r = verify_loaded(fd, 0, bytes.size(), "", name);
  ::close(fd);
  return r;
}

TEST(Verify, SafetensorsNameWithHugeHeaderLengthIsLoadFailed) {
  auto r = verify(huge_header_length(), "models/evil.safetensors");
  ASSERT_FALSE(r.ok()) << "served as " << layout::to_string(*r);
  EXPECT_EQ(r.status().code(), ErrorCode::kLoadFailed);
  EXPECT_NE(r.status().message().find("models/evil.safetensors is not a valid safetensors file"),
            std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("1099511627776"), std::string::npos) << r.status().message();
}

TEST(Verify, GgufNameWithoutTheMagicIsLoadFailed) {
  auto r = verify(std::string(4096, 'x'), "tiny.gguf");
  ASSERT_FALSE(r.ok()) << "served as " << layout::to_string(*r);
  EXPECT_EQ(r.status().code(), ErrorCode::kLoadFailed);
  EXPECT_NE(r.status().message().find("missing the GGUF magic"), std::string::npos)
      << r.status().message();
}

TEST(Verify, EmptyFileNamedSafetensorsIsLoadFailed) {
  auto r = verify("", "empty.safetensors");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kLoadFailed);
}

TEST(Verify, SafetensorsNamedGgufIsLoadFailed) {
  EXPECT_FALSE(verify(safetensors_file(), "model.gguf").ok());
}

TEST(Verify, OtherNamesStayRawWhenTheBytesDoNotParse) {
  auto r = verify(huge_header_length(), "weights.bin");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, layout::Format::kRaw);
  // Looks like GGUF (the magic) but is cut short: still just bytes.
  r = verify("GGUF" + std::string(3, '\3'), "blob");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, layout::Format::kRaw);
  r = verify("", "empty.bin");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, layout::Format::kRaw);
}

TEST(Verify, ValidFilesAreDetectedWhateverTheirName) {
  for (const char* name : {"m.safetensors", "dir/m.safetensors", "m.bin", "m"}) {
    auto r = verify(safetensors_file(), name);
    ASSERT_TRUE(r.ok()) << name << ": " << r.status().to_string();
    EXPECT_EQ(*r, layout::Format::kSafetensors) << name;
  }
}

TEST(Verify, OnlyTheExtensionCounts) {
  // A directory called x.gguf, or a name that is only the extension.
  auto r = verify(std::string(64, 'x'), "x.gguf/model");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, layout::Format::kRaw);
  r = verify(std::string(64, 'x'), "model.GGUF");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, layout::Format::kRaw);
}

}  // namespace
}  // namespace modelpool::broker
