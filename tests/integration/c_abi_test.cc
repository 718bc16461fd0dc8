// The C ABI, through the example C program and by direct calls, against
// the real broker: a model of one file, a repository of several files and an
// hf: snapshot.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include "broker_fixture.hpp"
#include "modelpool/modelpool.h"

namespace modelpool::testing {
namespace {

std::string safetensors_with_two_tensors() {
  const std::string header = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                             R"("b":{"dtype":"U8","shape":[3],"data_offsets":[16,19]}})";
  std::string file(8, '\0');
  file[0] = static_cast<char>(header.size());
  return file + header + std::string(19, '\x01');
}

// One F32 tensor `name` of four floats, every byte `fill`.
std::string safetensors_one_tensor(const std::string& name, char fill) {
  const std::string header =
      R"({")" + name + R"(":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  std::string file(8, '\0');
  file[0] = static_cast<char>(header.size());
  return file + header + std::string(16, fill);
}

std::string bytes_of(const mp_file& f) {
  return f.data == nullptr ? std::string() : std::string(static_cast<const char*>(f.data), f.size);
}

TEST(CAbi, CWorkerAcquiresAndReadsTensors) {
  ScratchDir models;
  models.write("t.safetensors", safetensors_with_two_tensors());
  Broker broker(models.path());
  broker.start();
  auto [st, out] =
      run_command({binary_path("clientlib/c_worker"), broker.worker_socket(), "t.safetensors"});
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  json row = broker.admin("list")["models"][0];
  EXPECT_NE(out.find("size " + std::to_string(row["size"].get<std::uint64_t>())), std::string::npos)
      << out;
  EXPECT_NE(out.find("tensors 2"), std::string::npos) << out;
  json acquired =
      RawConn(broker.worker_socket()).request({{"op", "acquire"}, {"model", "t.safetensors"}});
  EXPECT_NE(out.find("checksum " + acquired["checksum"].get<std::string>()), std::string::npos)
      << out;
  EXPECT_EQ(row["refs"], 0) << "the C program released its handle";
}

TEST(CAbi, CWorkerReportsTheBrokersErrorCode) {
  ScratchDir models;
  Broker broker(models.path());
  broker.start();
  auto [st, out] =
      run_command({binary_path("clientlib/c_worker"), broker.worker_socket(), "missing.bin"});
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << out;
  EXPECT_NE(out.find("not_found"), std::string::npos) << out;
}

// A repository below --models: two shards (the index lists the second
// first), its index and config.json.
class CAbiRepository : public ::testing::Test {
 protected:
  void SetUp() override {
    shard1_ =
        models_.write("org/m/model-00001-of-00002.safetensors", safetensors_one_tensor("a", 1));
    shard2_ =
        models_.write("org/m/model-00002-of-00002.safetensors", safetensors_one_tensor("b", 2));
    models_.write("org/m/model.safetensors.index.json",
                  R"({"weight_map": {"b": "model-00002-of-00002.safetensors",)"
                  R"( "a": "model-00001-of-00002.safetensors"}})");
    models_.write("org/m/config.json", config_);
  }
  ScratchDir models_;
  std::string shard1_, shard2_;
  const std::string config_ = R"({"model_type": "test"})";
};

TEST_F(CAbiRepository, FilesByIndexAndByNameAreTheFilesBytes) {
  Broker broker(models_.path());
  broker.start();
  mp_client* client = nullptr;
  ASSERT_EQ(mp_connect(broker.worker_socket().c_str(), &client), MP_OK) << mp_last_error_message();
  mp_model* model = nullptr;
  ASSERT_EQ(mp_acquire(client, "org/m", -1, &model), MP_OK) << mp_last_error_message();

  size_t count = 0;
  ASSERT_EQ(mp_model_file_count(model, &count), MP_OK);
  std::vector<std::string> names;
  for (size_t i = 0; i < count; ++i) {
    mp_file f{};
    ASSERT_EQ(mp_model_file_at(model, i, &f), MP_OK) << mp_last_error_message();
    names.push_back(std::string(f.name) + (f.weights != 0 ? "*" : ""));
    EXPECT_EQ(f.size, bytes_of(f).size()) << f.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"model-00002-of-00002.safetensors*",
                                             "model-00001-of-00002.safetensors*", "config.json",
                                             "model.safetensors.index.json"}));
  mp_file f{};
  ASSERT_EQ(mp_model_file(model, "config.json", &f), MP_OK) << mp_last_error_message();
  EXPECT_EQ(bytes_of(f), config_);
  EXPECT_EQ(f.weights, 0);
  ASSERT_EQ(mp_model_file(model, "model-00001-of-00002.safetensors", &f), MP_OK);
  EXPECT_EQ(f.format, MP_FORMAT_SAFETENSORS);
  EXPECT_EQ(bytes_of(f), safetensors_one_tensor("a", 1));
  // Tensors span the shards, in index order, and lie in their shard's bytes.
  mp_tensor t{};
  ASSERT_EQ(mp_model_tensor_at(model, 0, &t), MP_OK);
  EXPECT_STREQ(t.name, "b");
  ASSERT_EQ(mp_model_tensor(model, "a", &t), MP_OK);
  EXPECT_GE(static_cast<const char*>(t.data), static_cast<const char*>(f.data));
  EXPECT_LE(static_cast<const char*>(t.data) + t.size, static_cast<const char*>(f.data) + f.size);

  EXPECT_EQ(mp_model_file(model, "pytorch_model.bin", &f), MP_NOT_FOUND);
  EXPECT_NE(std::string(mp_last_error_message()).find("pytorch_model.bin"), std::string::npos);
  EXPECT_EQ(mp_model_file_at(model, count, &f), MP_NOT_FOUND);
  EXPECT_EQ(mp_model_file(model, nullptr, &f), MP_BAD_REQUEST);
  EXPECT_STREQ(mp_model_commit(model), "");
  EXPECT_STREQ(mp_model_commit(nullptr), "");
  EXPECT_EQ(mp_release(model), MP_OK);
  mp_disconnect(client);
}

TEST_F(CAbiRepository, CWorkerListsTheFilesAndTheCommitOfAnHfSnapshot) {
  namespace fs = std::filesystem;
  ScratchDir cache;
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  const std::string repo = cache.path() + "/models--org--m";
  cache.write("models--org--m/blobs/w", safetensors_one_tensor("w", 3));
  cache.write("models--org--m/refs/main", commit);
  fs::create_directories(repo + "/snapshots/" + commit);
  fs::create_symlink("../../blobs/w", repo + "/snapshots/" + commit + "/model.safetensors");
  Broker broker(models_.path(), {"--hf-cache", cache.path()});
  broker.start();

  auto [st, out] =
      run_command({binary_path("clientlib/c_worker"), broker.worker_socket(), "org/m"});
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  EXPECT_NE(out.find("files 4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("file model-00002-of-00002.safetensors " +
                     std::to_string(fs::file_size(shard2_)) + " weights\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("file config.json " + std::to_string(config_.size()) + " other\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("commit "), std::string::npos) << out;

  std::tie(st, out) =
      run_command({binary_path("clientlib/c_worker"), broker.worker_socket(), "hf:org/m"});
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  EXPECT_NE(out.find("commit " + commit + "\n"), std::string::npos) << out;
  EXPECT_NE(out.find("file model.safetensors "), std::string::npos) << out;
}

}  // namespace
}  // namespace modelpool::testing
