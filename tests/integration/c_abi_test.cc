// The C ABI, through the example C program, against the real broker.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include "broker_fixture.hpp"

namespace modelpool::testing {
namespace {

std::string safetensors_with_two_tensors() {
  const std::string header = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                             R"("b":{"dtype":"U8","shape":[3],"data_offsets":[16,19]}})";
  std::string file(8, '\0');
  file[0] = static_cast<char>(header.size());
  return file + header + std::string(19, '\x01');
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

}  // namespace
}  // namespace modelpool::testing
