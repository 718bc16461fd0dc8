// The acquire reply of a model of several files (its "files" list and
// "commit") through the flat reader (hot_path.hpp) against the reference
// codec (messages.hpp): the broker's encoding reads back, and a lying or
// broken broker's list gets the same verdict from both -- protocol_error,
// never a crash.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "shm/protocol/hot_path.hpp"
#include "tests/protocol/reply_compare.hpp"

namespace modelpool::proto {
namespace {

// A reply of several files, as the broker writes it.
AcquireReply repository_reply() {
  AcquireReply m{7,    "org/repo", 2 << 21,   4096, 1, 0x1122334455667788ULL, "safetensors",
                 true, {},         "0123abcd"};
  m.files = {{"model-00001-of-00002.safetensors", 2 << 21, 4096, 1, 0x1122334455667788ULL,
              "safetensors", true},
             {"model-00002-of-00002.safetensors", 4 << 21, 8192, 2, 0xffULL, "safetensors", true},
             {"config.json", 6 << 21, 17, 1, 0, "raw", false}};
  return m;
}

TEST(AcquireFiles, RepositoryReplyReadsWithoutADom) {
  const AcquireReply m = repository_reply();
  const std::string payload = encode_acquire_reply(9, m);
  // The flat scanner reads it: the same record as nlohmann's parser.
  auto flat = parse_flat_reply(payload);
  auto reference = parse_flat_reply_reference(payload);
  ASSERT_TRUE(flat.ok() && reference.ok());
  EXPECT_TRUE(*flat == *reference);
  EXPECT_TRUE(flat->files_listed);
  ASSERT_EQ(flat->files.size(), 3U);
  auto fast = acquire_reply_from(*flat);
  ASSERT_TRUE(fast.ok()) << fast.status().message();
  auto dom = decode_reply(payload);
  ASSERT_TRUE(dom.ok());
  auto ref = decode_acquire_reply(dom->body);
  ASSERT_TRUE(ref.ok());
  expect_same_reply(*fast, m);
  expect_same_reply(*ref, m);
  // The DOM's encoding (keys in another order) reads the same.
  auto via_dom = parse_flat_reply(encode_ok(9, to_json(m)));
  ASSERT_TRUE(via_dom.ok());
  auto again = acquire_reply_from(*via_dom);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->files, m.files);
  // Names outside plain ASCII go through nlohmann's parser, and read the same.
  AcquireReply odd = m;
  odd.files[2].name = "caf\xc3\xa9 \"q\".json";
  auto odd_flat = parse_flat_reply(encode_acquire_reply(9, odd));
  ASSERT_TRUE(odd_flat.ok());
  auto odd_fast = acquire_reply_from(*odd_flat);
  ASSERT_TRUE(odd_fast.ok());
  EXPECT_EQ(odd_fast->files, odd.files);
}

// A lying or broken broker's list of files: both readers refuse the same
// replies with protocol_error, and read the same files from the rest.
TEST(AcquireFiles, HostileFileListsGetTheSameVerdictFromBothReaders) {
  const std::string head =
      R"({"id":1,"ok":true,"handle":1,"model":"r","offset":0,"size":1,"generation":1,)"
      R"("checksum":"00000000000000ff","format":"safetensors","cached":true)";
  const std::string file =
      R"({"name":"a","offset":0,"size":1,"generation":1,"checksum":"00000000000000ff",)"
      R"("format":"raw","weights":true})";
  std::string many = ",\"files\":[";
  for (std::size_t i = 0; i < 300; ++i) many += (i ? "," : "") + file;
  many += "]";
  const std::vector<std::string> tails = {
      "",
      R"(,"files":[)" + file + "]",
      R"(,"files":[)" + file + "," + file + "]",
      many,
      R"(,"files":[])",
      R"(,"files":null)",
      R"(,"files":{})",
      R"(,"files":"x")",
      R"(,"files":7)",
      R"(,"files":[1])",
      R"(,"files":[null])",
      R"(,"files":[[]])",
      R"(,"files":[)" + file + R"(,1])",
      R"(,"files":[1,)" + file + "]",
      R"(,"files":[)" + file + R"(,[)" + file + "]]",
      R"(,"files":[{}])",
      R"(,"files":[)" + file + R"(],"files":null)",
      R"(,"files":null,"files":[)" + file + "]",
      R"(,"files":[1],"files":[)" + file + "]",
      R"(,"files":[)" + file + R"(],"files":[])",
      R"(,"files":[{"name":"a","offset":0,"size":1,"generation":1,"checksum":"ff","format":"raw"}])",
      R"(,"files":[{"name":"a","offset":-1,"size":1,"generation":1,"checksum":"00000000000000ff","format":"raw"}])",
      R"(,"files":[{"name":"a","offset":0.5,"size":1,"generation":1,"checksum":"00000000000000ff","format":"raw"}])",
      R"(,"files":[{"name":["a"],"offset":0,"size":1,"generation":1,"checksum":"00000000000000ff","format":"raw"}])",
      R"(,"files":[{"name":"a","offset":0,"size":1,"generation":{},"checksum":"00000000000000ff","format":"raw"}])",
      R"(,"files":[{"name":"a","offset":0,"size":1,"checksum":"00000000000000ff","format":"raw"}])",
      R"(,"files":[{"name":"a","offset":0,"size":1,"generation":1,"checksum":"00000000000000ff"}])",
      R"(,"files":[{"name":"a","offset":0,"size":1,"generation":1,"checksum":"00000000000000ff","format":null}])",
      R"(,"files":[{"name":"a","offset":0,"size":1,"generation":1,"checksum":"00000000000000ff","format":"raw","weights":"yes"}])",
      R"(,"files":[{"name":"a","offset":0,"size":1,"generation":1,"checksum":"00000000000000ff","format":"raw","weights":null}])",
      R"(,"files":[{"name":"a","offset":0,"size":1,"generation":1,"checksum":"00000000000000ff","format":"raw","weights":false,"weights":true}])",
      R"(,"files":[{"name":"a","name":7,"offset":0,"size":1,"generation":1,"checksum":"00000000000000ff","format":"raw"}])",
      R"(,"files":[{"name":7,"name":"b","offset":0,"size":18446744073709551615,"generation":1,"checksum":"00000000000000ff","format":"raw"}])",
      R"(,"files":[{"name":"a","offset":0,"size":18446744073709551616,"generation":1,"checksum":"00000000000000ff","format":"raw"}])",
      R"(,"files":[{"name":"a","offset":0,"size":1,"generation":1,"checksum":"00000000000000ff","format":"raw","x":{"name":7,"y":[{"z":1}]}}])",
      R"(,"files":[{"name":"a","offset":0,"size":1,"generation":1,"checksum":"00000000000000ff","format":"raw"}],"commit":"c")",
      R"(,"commit":7)",
      R"(,"commit":"abc","commit":"def")",
  };
  for (const std::string& tail : tails) {
    for (const std::string& p : {head + tail + "}", head + tail + "", head + tail + "}}"}) {
      SCOPED_TRACE(p);
      auto flat = parse_flat_reply(p);
      auto reference = parse_flat_reply_reference(p);
      ASSERT_EQ(flat.ok(), reference.ok());
      auto dom = decode_reply(p);
      ASSERT_EQ(flat.ok(), dom.ok());
      if (!flat.ok()) {
        EXPECT_EQ(flat.status().code(), ErrorCode::kProtocol);
        continue;
      }
      EXPECT_TRUE(*flat == *reference);
      auto ref = decode_acquire_reply(dom->body);
      auto fast = acquire_reply_from(*flat);
      ASSERT_EQ(ref.ok(), fast.ok()) << (ref.ok() ? fast : ref).status().message();
      if (!fast.ok()) {
        EXPECT_EQ(fast.status().code(), ErrorCode::kProtocol);
        EXPECT_EQ(ref.status().code(), ErrorCode::kProtocol);
        continue;
      }
      EXPECT_EQ(fast->files, ref->files);
      EXPECT_EQ(fast->commit, ref->commit);
    }
  }
}

// Truncations and single-byte corruptions of a repository reply: never a
// crash, and the same verdict from the flat reader and the DOM.
TEST(AcquireFiles, CorruptedRepositoryRepliesGetTheSameVerdict) {
  const std::string payload = encode_acquire_reply(3, repository_reply());
  std::vector<std::string> variants;
  for (std::size_t n = 0; n < payload.size(); ++n) variants.push_back(payload.substr(0, n));
  for (std::size_t i = 0; i < payload.size(); ++i) {
    for (char c : {'"', '{', '}', '[', ']', ',', ':', '0', '-', 'x', '\\', ' ', '\x80'}) {
      std::string v = payload;
      v[i] = c;
      variants.push_back(std::move(v));
    }
  }
  for (const std::string& p : variants) {
    SCOPED_TRACE(p);
    auto flat = parse_flat_reply(p);
    auto reference = parse_flat_reply_reference(p);
    ASSERT_EQ(flat.ok(), reference.ok());
    if (flat.ok()) {
      EXPECT_TRUE(*flat == *reference);
    }
    auto dom = decode_reply(p);
    const Status st = flat.ok() ? flat_reply_status(*flat) : flat.status();
    ASSERT_EQ(dom.ok(), st.ok());
    if (!dom.ok()) continue;
    auto ref = decode_acquire_reply(dom->body);
    auto fast = acquire_reply_from(*flat);
    ASSERT_EQ(ref.ok(), fast.ok());
    if (fast.ok()) {
      EXPECT_EQ(fast->files, ref->files);
      EXPECT_EQ(fast->commit, ref->commit);
      EXPECT_EQ(fast->checksum, ref->checksum);
    }
  }
}

}  // namespace
}  // namespace modelpool::proto
