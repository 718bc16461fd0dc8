// File: tests/format/fixtures_test.cc
//
// The readers against files written by independent writers: make_fixtures.py
// (numpy, torch and a spec-following GGUF writer) runs once per test suite
// into a scratch directory, and every file it lists in expectations.json must
// parse to exactly the listed format, metadata and tensors (name, dtype,
// shape, offset, size and bytes), in file order. Skipped, with the reason,
// when /usr/bin/python3 has no numpy.
#include <gtest/gtest.h>
#include <stdlib.h>  // mkdtemp

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/format/format_test_util.hpp"

namespace modelpool::format::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kPython = "/usr/bin/python3";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    out.push_back(kHex[static_cast<unsigned char>(c) >> 4]);
    out.push_back(kHex[static_cast<unsigned char>(c) & 0xf]);
  }
  return out;
}

class Fixtures : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string probe = std::string(kPython) + " -c 'import numpy' >/dev/null 2>&1";
    if (std::system(probe.c_str()) != 0) {
      skip_reason_ = std::string(kPython) + " cannot import numpy (apt install python3-numpy)";
      return;
    }
    std::string tmpl = (fs::temp_directory_path() / "modelpool-format-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      error_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    // -B: no __pycache__ in the source tree.
    const std::string cmd = std::string(kPython) +
                            " -B " MODELPOOL_SOURCE_DIR "/tests/format/make_fixtures.py " +
                            dir_.string();
    if (std::system(cmd.c_str()) != 0) {
      error_ = "make_fixtures.py failed: " + cmd;
      return;
    }
    expectations_ = json::parse(slurp(dir_ / "expectations.json"), nullptr, false);
    if (expectations_.is_discarded()) error_ = "expectations.json is not JSON";
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(error_.empty()) << error_;
  }

  // Parses `file` and checks it against its entry in expectations.json.
  static void check_file(const std::string& file);

  static inline fs::path dir_;
  static inline json expectations_;
  static inline std::string skip_reason_;
  static inline std::string error_;
};

void Fixtures::check_file(const std::string& file) {
  SCOPED_TRACE(file);
  ASSERT_TRUE(expectations_["files"].contains(file)) << "the generator did not write it";
  const json& want = expectations_["files"][file];
  const std::string bytes = slurp(dir_ / file);
  auto r = parse(bytes_of(bytes));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(layout::to_string(r->format), want["format"].get<std::string>());
  EXPECT_EQ(r->metadata, want["metadata"]) << r->metadata.dump(1);
  ASSERT_EQ(r->tensors.size(), want["tensors"].size());
  for (std::size_t i = 0; i < r->tensors.size(); ++i) {
    const TensorInfo& got = r->tensors[i];
    const json& t = want["tensors"][i];
    SCOPED_TRACE(t["name"].get<std::string>());
    EXPECT_EQ(got.name, t["name"].get<std::string>());
    EXPECT_EQ(got.dtype, t["dtype"].get<std::string>());
    EXPECT_EQ(got.shape, t["shape"].get<std::vector<std::int64_t>>());
    EXPECT_EQ(got.offset, t["offset"].get<std::uint64_t>());
    ASSERT_EQ(got.size, t["size"].get<std::uint64_t>());
    ASSERT_LE(got.offset + got.size, bytes.size());
    EXPECT_EQ(hex(std::string_view(bytes).substr(got.offset, got.size)),
              t["hex"].get<std::string>());
    EXPECT_EQ(r->find(got.name), &got);
  }
  EXPECT_TRUE(index_is_sane(*r, bytes.size()));
}

TEST_F(Fixtures, SafetensorsFromNumpy) { check_file("numpy.safetensors"); }

TEST_F(Fixtures, SafetensorsWithNoTensors) { check_file("empty.safetensors"); }

TEST_F(Fixtures, SafetensorsFromTorch) {
  if (!expectations_["torch"].get<bool>()) GTEST_SKIP() << kPython << " cannot import torch";
  check_file("torch.safetensors");
}

TEST_F(Fixtures, GgufV3WithAlignmentKey) { check_file("v3.gguf"); }

TEST_F(Fixtures, GgufV2WithDefaultAlignmentAndShuffledInfos) { check_file("v2.gguf"); }

TEST_F(Fixtures, RawFile) { check_file("weights.bin"); }

// Every prefix of every fixture parses or fails cleanly; none crashes, and
// whatever parses is sane (ASan builds make this a small fuzzer).
TEST_F(Fixtures, EveryTruncationFailsCleanly) {
  for (const auto& [file, want] : expectations_["files"].items()) {
    const std::string bytes = slurp(dir_ / file);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      const std::string cut = bytes.substr(0, n);
      auto r = parse(bytes_of(cut));
      if (r.ok()) {
        EXPECT_TRUE(index_is_sane(*r, n)) << file << " cut at " << n;
      } else {
        EXPECT_EQ(r.status().code(), ErrorCode::kLoadFailed) << file << " cut at " << n;
      }
    }
  }
}

// Every single-byte corruption of the GGUF and safetensors fixtures.
TEST_F(Fixtures, EveryByteFlipFailsCleanlyOrStaysSane) {
  for (const char* file : {"numpy.safetensors", "v3.gguf"}) {
    std::string bytes = slurp(dir_ / file);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      const char saved = bytes[i];
      for (unsigned char v : {0x01, 0xff, 0x80}) {
        bytes[i] = static_cast<char>(v ^ static_cast<unsigned char>(saved));
        auto r = parse(bytes_of(bytes));
        if (r.ok()) {
          EXPECT_TRUE(index_is_sane(*r, bytes.size())) << file << " byte " << i;
        }
      }
      bytes[i] = saved;
    }
  }
}

}  // namespace
}  // namespace modelpool::format::testing
