// File: tests/integration/config_file_test.cc
//
// The real modelpoold with --config: --print-config prints TOML that the
// binary reads back to the same text, the shipped example loads, a bad file
// exits 2 naming the file and line, $MODELPOOL_CONFIG names the default
// file, and a broker started from a file serves with the file's values
// except where the command line overrides them.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <string>

#include "broker_fixture.hpp"

namespace modelpool::testing {
namespace {

int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

const std::string& daemon() {
  static const std::string path = binary_path("broker/modelpoold");
  return path;
}

TEST(ConfigFile, PrintConfigRoundTripsThroughTheBinary) {
  ScratchDir dir;
  const std::string f = dir.write("a.toml", R"(models = "/srv/models"
memory = "8GiB"
preload = ["llama/7b.safetensors", "bert"]
high-watermark = 0.9
direct-io = true
)");
  auto [st, first] = run_command({daemon(), "--config", f, "--queue-depth", "8", "--print-config"});
  ASSERT_EQ(exit_code(st), 0) << first;
  EXPECT_NE(first.find("\nmemory = \"8GiB\"\n"), std::string::npos) << first;
  EXPECT_NE(first.find("\npreload = [\"llama/7b.safetensors\", \"bert\"]\n"), std::string::npos);
  EXPECT_NE(first.find("\nqueue-depth = 8\n"), std::string::npos) << first;
  EXPECT_NE(first.find("\ndirect-io = true\n"), std::string::npos) << first;

  const std::string printed = dir.write("printed.toml", first);
  auto [st2, second] = run_command({daemon(), "--config", printed, "--print-config"});
  ASSERT_EQ(exit_code(st2), 0) << second;
  EXPECT_EQ(second, first);
}

TEST(ConfigFile, TheShippedExampleLoads) {
  const std::string example = std::string(MODELPOOL_SOURCE_DIR) + "/broker/deploy/modelpoold.toml";
  auto [st, out] = run_command({daemon(), "--config", example, "--print-config"});
  ASSERT_EQ(exit_code(st), 0) << out;
  EXPECT_NE(out.find("\nmodels = \"/srv/models\"\n"), std::string::npos) << out;
}

TEST(ConfigFile, ABadFileExitsTwoNamingFileAndLine) {
  ScratchDir dir;
  const std::string f = dir.write("bad.toml", "models = \"/m\"\nmax-clients = 0\n");
  auto [st, out] = run_command({daemon(), "--config", f, "--print-config"});
  EXPECT_EQ(exit_code(st), 2);
  EXPECT_EQ(out, "modelpoold: " + f + ":2: max-clients: must be between 1 and 1048576\n");
}

TEST(ConfigFile, EnvironmentNamesTheDefaultFile) {
  ScratchDir dir;
  const std::string f = dir.write("env.toml", "models = \"/from/env\"\n");
  ::setenv("MODELPOOL_CONFIG", f.c_str(), 1);
  auto [st, out] = run_command({daemon(), "--print-config"});
  ::unsetenv("MODELPOOL_CONFIG");
  ASSERT_EQ(exit_code(st), 0) << out;
  EXPECT_NE(out.find("\nmodels = \"/from/env\"\n"), std::string::npos) << out;
}

TEST(ConfigFile, ABrokerServesWithTheFilesValuesUnlessOverridden) {
  ScratchDir models, dir;
  models.write_random("m.bin", 1 << 20);
  // The fixture gives --models, --name, --run-dir and --memory on the
  // command line: the file's values for those are overridden.
  const std::string f = dir.write("broker.toml", R"(models = "/nonexistent"
name = "not-this-pool"
max-model-size = "3MiB"
preload = ["m.bin"]
log-level = "warn"
)");
  Broker b(models.path(), {"--config", f});
  b.start();
  const json reply = b.admin("config");
  ASSERT_TRUE(reply.value("ok", false)) << reply.dump();
  const json& config = reply["config"];
  EXPECT_EQ(config["config"], f);
  EXPECT_EQ(config["models"], models.path());
  EXPECT_EQ(config["name"], b.pool());
  EXPECT_EQ(config["max-model-size"], 3 << 20);
  EXPECT_EQ(config["log-level"], "warn");
  const json list = b.admin("list");
  ASSERT_TRUE(list.value("ok", false)) << list.dump();
  EXPECT_NE(list.dump().find("m.bin"), std::string::npos) << list.dump();  // preloaded
  EXPECT_EQ(exit_code(b.stop(SIGTERM)), 0);
}

}  // namespace
}  // namespace modelpool::testing
