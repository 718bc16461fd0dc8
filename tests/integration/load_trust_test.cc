// File: tests/integration/load_trust_test.cc
//
// What a real broker serves when the file under it is not what it seems:
// a model rewritten in place by another process while it loads is served
// as the old bytes entirely, the new bytes entirely, or load_failed, never a
// mix; a file named .safetensors / .gguf that does not parse as that format
// is load_failed with the reason and leaves nothing in the pool; and GGUF
// metadata (arrays too) still reads right through the client API.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "broker_fixture.hpp"
#include "modelpool/client.hpp"

namespace modelpool::testing {
namespace {

constexpr std::uint64_t kMiB = 1ULL << 20;

std::string code_of(const json& r) {
  if (r.value("ok", false)) return "ok";
  return r.value("error", json::object()).value("code", "");
}

std::string le64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(v >> (8 * i));
  return out;
}
std::string le32(std::uint32_t v) { return le64(v).substr(0, 4); }

// True when `len` bytes at `offset` of the segment equal the file at `path`.
bool segment_holds(const std::string& segment, std::uint64_t offset, std::uint64_t len,
                   const std::string& path) {
  std::ifstream seg(segment, std::ios::binary);
  std::ifstream file(path, std::ios::binary);
  seg.seekg(static_cast<std::streamoff>(offset));
  std::vector<char> a(4 * kMiB), b(4 * kMiB);
  for (std::uint64_t done = 0; done < len;) {
    const auto n = static_cast<std::streamsize>(std::min<std::uint64_t>(a.size(), len - done));
    if (!seg.read(a.data(), n) || !file.read(b.data(), n)) return false;
    if (!std::equal(a.begin(), a.begin() + n, b.begin())) return false;
    done += static_cast<std::uint64_t>(n);
  }
  return true;
}

// A writer process (dd) copies `from` over `to` at byte `seek`, in place.
void rewrite_with_dd(const std::string& from, const std::string& to, std::uint64_t seek_mib) {
  auto [status, out] =
      run_command({"/bin/dd", "if=" + from, "of=" + to, "bs=1M", "seek=" + std::to_string(seek_mib),
                   "conv=notrunc", "status=none"});
  ASSERT_EQ(status, 0) << out;
}

// Each round: an acquire starts the load of a 512 MiB file; once `list`
// shows the entry LOADING, a dd process rewrites its first and last 64 MiB.
// Whatever the race gives, the reply is never a mix: load_failed, or ok
// with bytes equal to the old file or to the new one, all of them.
TEST(LoadTrust, FileRewrittenInPlaceWhileItLoadsIsNeverServedAsAMix) {
  ScratchDir models;
  constexpr std::uint64_t kSize = 512 * kMiB, kPart = 64 * kMiB;
  const std::string model = models.write_random("big.bin", kSize, 21);
  const std::string old_copy = models.path() + "/old.copy";
  ASSERT_EQ(run_command({"/bin/cp", model, old_copy}).first, 0);
  Broker broker(models.path());
  broker.start();
  int failed = 0, old_served = 0, new_served = 0;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string head = models.write_random("head.part", kPart, 100 + round);
    const std::string tail = models.write_random("tail.part", kPart, 200 + round);
    ASSERT_EQ(broker.admin("clear")["ok"], true);
    RawConn c(broker.worker_socket());
    c.send_frame(json{{"op", "acquire"}, {"model", "big.bin"}}.dump());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    // Each poll is a round trip to the broker; the entry appears LOADING.
    while (broker.admin("list")["models"].empty() && std::chrono::steady_clock::now() < deadline) {
    }
    rewrite_with_dd(head, model, 0);
    rewrite_with_dd(tail, model, (kSize - kPart) / kMiB);
    auto r = c.recv();
    ASSERT_TRUE(r.has_value());
    if (code_of(*r) == "load_failed") {
      ++failed;
      EXPECT_NE((*r)["error"]["message"].get<std::string>().find("changed"), std::string::npos)
          << r->dump();
    } else {
      ASSERT_EQ(code_of(*r), "ok") << r->dump();
      const auto offset = (*r)["offset"].get<std::uint64_t>();
      const bool is_old = segment_holds(broker.segment_path(), offset, kSize, old_copy);
      const bool is_new = segment_holds(broker.segment_path(), offset, kSize, model);
      EXPECT_TRUE(is_old || is_new) << "a mix of two versions was served";
      old_served += is_old;
      new_served += is_new;
      c.request({{"op", "release"}, {"handle", (*r)["handle"]}});
    }
    // The next acquire serves the file as it is now, all of it.
    json again = c.request({{"op", "acquire"}, {"model", "big.bin"}});
    ASSERT_EQ(code_of(again), "ok") << again.dump();
    EXPECT_TRUE(
        segment_holds(broker.segment_path(), again["offset"].get<std::uint64_t>(), kSize, model));
    c.request({{"op", "release"}, {"handle", again["handle"]}});
    ASSERT_EQ(run_command({"/bin/cp", model, old_copy}).first, 0);
  }
  std::printf("rewrites during load: %d load_failed, %d old bytes, %d new bytes\n", failed,
              old_served, new_served);
}

class MalformedModel : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

// The report's case (a safetensors header length of 2^40) and its kin: each
// is load_failed naming the reason, for every acquire, and the pool is
// left empty.
TEST_P(MalformedModel, IsLoadFailedWithTheReasonAndLeavesNothing) {
  const auto& [name, reason] = GetParam();
  ScratchDir models;
  std::string bytes;
  if (name.ends_with(".safetensors")) {
    bytes = le64(1ULL << 40) + "{}" + std::string(4096, ' ');
  } else {
    bytes = "GGUF" + le32(3) + le64(0) + le64(1) + le64(4) + "name" + le32(99) + "xxxxxxxx";
  }
  models.write(name, bytes);
  Broker broker(models.path());
  broker.start();
  RawConn c(broker.worker_socket());
  for (int attempt = 0; attempt < 2; ++attempt) {
    json r = c.request({{"op", "acquire"}, {"model", name}});
    ASSERT_EQ(code_of(r), "load_failed") << r.dump();
    const std::string msg = r["error"]["message"].get<std::string>();
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << msg;
  }
  EXPECT_TRUE(broker.admin("list")["models"].empty());
  json stats = broker.admin("stats");
  EXPECT_EQ(stats["bytes_used"], 0);
  EXPECT_EQ(stats["load_failures"], 2);
  // The same bytes under another name are just bytes.
  models.write("plain.bin", bytes);
  json r = c.request({{"op", "acquire"}, {"model", "plain.bin"}});
  ASSERT_EQ(code_of(r), "ok") << r.dump();
  EXPECT_EQ(r["format"], "raw");
}

INSTANTIATE_TEST_SUITE_P(
    Names, MalformedModel,
    ::testing::Values(std::make_pair(std::string("huge-header.safetensors"),
                                     std::string("header length 1099511627776")),
                      std::make_pair(std::string("bad-type.gguf"),
                                     std::string("unknown metadata value type 99"))),
    [](const auto& info) { return info.index == 0 ? "Safetensors" : "Gguf"; });

// A GGUF with a 1M-element metadata array: a worker's tensor index does not
// decode it, yet metadata() and metadata_json() still give the values.
TEST(LoadTrust, GgufMetadataArraysStillReadThroughTheClient) {
  ScratchDir models;
  constexpr std::uint64_t kCount = 1'000'000;
  std::string values(kCount * 4, '\0');
  for (std::uint64_t i = 0; i < kCount; ++i) values[i * 4] = static_cast<char>(i % 7);
  std::string file = "GGUF" + le32(3) + le64(1) + le64(2);
  file += le64(12) + "general.name" + le32(8) + le64(4) + "tiny";
  file += le64(6) + "scores" + le32(9) + le32(4) + le64(kCount) + values;
  file += le64(1) + "w" + le32(1) + le64(8) + le32(0) + le64(0);  // F32 [8]
  file.resize((file.size() + 31) / 32 * 32, '\0');
  file += std::string(32, '\1');
  models.write("vocab.gguf", file);
  Broker broker(models.path());
  broker.start();
  Client client = Client::connect(broker.worker_socket());
  Model m = client.acquire("vocab.gguf");
  EXPECT_EQ(m.format(), Format::gguf);
  ASSERT_EQ(m.tensors().size(), 1U);
  EXPECT_EQ(m.tensor("w").name, "w");
  EXPECT_EQ(m.metadata("general.name"), "tiny");
  EXPECT_EQ(m.metadata("scores"), std::nullopt);  // not a string
  const json meta = json::parse(m.metadata_json());
  ASSERT_EQ(meta["scores"].size(), kCount);
  EXPECT_EQ(meta["scores"][kCount - 1], (kCount - 1) % 7);
  EXPECT_EQ(meta["general.name"], "tiny");
}

}  // namespace
}  // namespace modelpool::testing
