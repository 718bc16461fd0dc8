// File: clientlib/tests/model_test.cc
//
// Tensor views of an acquired model, and the C ABI, against FakeBroker.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "clientlib/tests/fake_broker.hpp"
#include "modelpool/client.hpp"
#include "modelpool/modelpool.h"

namespace modelpool {
namespace {

using testing::FakeBroker;

// A safetensors file: u64 LE header length, JSON header, tensor bytes.
std::string safetensors_file() {
  const std::string header = R"({"__metadata__":{"arch":"tiny"},)"
                             R"("w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})";
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  file += header;
  for (int i = 0; i < 24; ++i) file.push_back(static_cast<char>(i));
  return file;
}

TEST(ModelTensors, SafetensorsTensorsAreViewsIntoTheMapping) {
  FakeBroker broker;
  const std::string file = safetensors_file();
  broker.add_model("tiny.safetensors", file, "safetensors");
  Client client = Client::connect(broker.worker_socket());
  Model model = client.acquire("tiny.safetensors");
  ASSERT_EQ(model.format(), Format::safetensors);
  const auto& tensors = model.tensors();
  ASSERT_EQ(tensors.size(), 2U);
  const Tensor w = model.tensor("w");
  EXPECT_EQ(w.dtype, "F32");
  EXPECT_EQ(w.shape, (std::vector<std::int64_t>{2, 2}));
  ASSERT_EQ(w.data.size(), 16U);
  const std::size_t data_start = file.size() - 24;
  EXPECT_EQ(w.data.data(), model.bytes().data() + data_start);
  EXPECT_EQ(model.tensor("b").data.data(), model.bytes().data() + data_start + 16);
  EXPECT_EQ(model.metadata("arch"), "tiny");
  EXPECT_EQ(model.metadata("none"), std::nullopt);
  EXPECT_NE(model.metadata_json().find("\"arch\""), std::string::npos);
  try {
    (void)model.tensor("missing");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

TEST(ModelTensors, InvalidIndexIsLoadFailed) {
  FakeBroker broker;
  broker.add_model("bad.safetensors", "\x08\0\0\0\0\0\0\0{{{{", "safetensors");
  Client client = Client::connect(broker.worker_socket());
  Model model = client.acquire("bad.safetensors");
  try {
    (void)model.tensors();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kLoadFailed);
  }
}

TEST(CAbi, AcquireTensorsAndRelease) {
  FakeBroker broker;
  const std::string file = safetensors_file();
  const auto& m = broker.add_model("tiny.safetensors", file, "safetensors");
  EXPECT_EQ(mp_abi_version(), MODELPOOL_ABI_VERSION);

  mp_client* client = nullptr;
  ASSERT_EQ(mp_connect(broker.worker_socket().c_str(), &client), MP_OK);
  mp_model* model = nullptr;
  ASSERT_EQ(mp_acquire(client, "tiny.safetensors", -1, &model), MP_OK);
  mp_disconnect(client);  // the model stays valid
  EXPECT_EQ(mp_model_size(model), file.size());
  EXPECT_EQ(mp_model_checksum(model), m.checksum);
  EXPECT_EQ(mp_model_generation(model), 1U);
  EXPECT_EQ(mp_model_format(model), MP_FORMAT_SAFETENSORS);
  EXPECT_STREQ(mp_model_name(model), "tiny.safetensors");
  EXPECT_EQ(std::memcmp(mp_model_data(model), file.data(), file.size()), 0);

  std::size_t count = 0;
  ASSERT_EQ(mp_model_tensor_count(model, &count), MP_OK);
  EXPECT_EQ(count, 2U);
  mp_tensor t{};
  ASSERT_EQ(mp_model_tensor_at(model, 0, &t), MP_OK);
  EXPECT_STREQ(t.name, "w");
  EXPECT_EQ(t.ndim, 2);
  EXPECT_EQ(t.shape[1], 2);
  ASSERT_EQ(mp_model_tensor(model, "b", &t), MP_OK);
  EXPECT_STREQ(t.dtype, "F32");
  EXPECT_EQ(t.size, 8U);
  EXPECT_EQ(mp_model_tensor(model, "zz", &t), MP_NOT_FOUND);
  EXPECT_NE(std::string(mp_last_error_message()).find("zz"), std::string::npos);
  EXPECT_EQ(mp_model_tensor_at(model, 2, &t), MP_NOT_FOUND);
  const char* meta = nullptr;
  ASSERT_EQ(mp_model_metadata_json(model, &meta), MP_OK);
  EXPECT_NE(std::string(meta).find("tiny"), std::string::npos);
  EXPECT_EQ(mp_release(model), MP_OK);
  EXPECT_TRUE(broker.await_live_handles(0));
}

TEST(CAbi, ErrorsCarryCodesAndMessages) {
  mp_client* client = nullptr;
  EXPECT_EQ(mp_connect("/tmp/modelpool-no-such-dir/x.sock", &client), MP_UNAVAILABLE);
  EXPECT_EQ(client, nullptr);
  EXPECT_NE(std::string(mp_last_error_message()).find("cannot connect"), std::string::npos);
  EXPECT_STREQ(mp_error_name(MP_POOL_FULL), "pool_full");
  EXPECT_STREQ(mp_error_name(MP_PROTOCOL), "protocol_error");
  EXPECT_STREQ(mp_error_name(12345), "internal");
  EXPECT_EQ(mp_connect(nullptr, nullptr), MP_BAD_REQUEST);
  EXPECT_EQ(mp_release(nullptr), MP_OK);

  FakeBroker broker;
  ASSERT_EQ(mp_connect(broker.worker_socket().c_str(), &client), MP_OK);
  mp_model* model = nullptr;
  EXPECT_EQ(mp_acquire(client, "absent", 0, &model), MP_NOT_FOUND);
  EXPECT_EQ(model, nullptr);
  EXPECT_STREQ(mp_last_error_message(), "no model absent");
  EXPECT_EQ(mp_acquire(client, nullptr, 0, &model), MP_BAD_REQUEST);
  mp_disconnect(client);
}

}  // namespace
}  // namespace modelpool
