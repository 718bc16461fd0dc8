// File: tests/unit/config_file_test.cc
//
// The configuration file (--config FILE, broker/config_file.cc): its keys
// take the flags' values with the flags' bounds, options on the command line
// override it wherever they stand, --print-config reads back to the same
// configuration, and a bad file is one error naming the file, line and key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "broker/config.hpp"

namespace modelpool::broker {
namespace {

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mp-config-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  // Parses `args` as modelpoold's command line.
  static Result<ParseOutcome> parse(std::vector<std::string> args, Config* config,
                                    const char* env_file = nullptr) {
    args.insert(args.begin(), "modelpoold");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    return parse_command_line(static_cast<int>(argv.size()), argv.data(), config, env_file);
  }

  // The message of a parse that must fail.
  static std::string failure(std::vector<std::string> args) {
    Config c;
    auto r = parse(std::move(args), &c);
    EXPECT_FALSE(r.ok());
    if (r.ok()) return "";
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
    return r.status().message();
  }

  std::filesystem::path dir_;
};

TEST_F(ConfigFileTest, EveryKindOfValueIsRead) {
  const std::string f = write("all.toml", R"(# a broker
models = "/srv/models"
memory = "8G"
max-model-size = 1073741824
high-watermark = 0.9
low-watermark = 60          # a percentage, as on the command line
preload = ["a/one.safetensors", "b"]
loader-threads = 3
direct-io = true
remove-on-exit = false
eviction = "gdsf"
metrics-addr = "127.0.0.1:9464"
)");
  Config c;
  auto r = parse({"--config", f}, &c);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, ParseOutcome::kRun);
  EXPECT_EQ(c.config_file, f);
  EXPECT_EQ(c.models_dir, "/srv/models");
  EXPECT_EQ(c.policy.budget, 8ULL << 30);
  EXPECT_EQ(c.policy.max_model_size, 1ULL << 30);
  EXPECT_DOUBLE_EQ(c.policy.high_watermark, 0.9);
  EXPECT_DOUBLE_EQ(c.policy.low_watermark, 0.6);
  EXPECT_EQ(c.preload, (std::vector<std::string>{"a/one.safetensors", "b"}));
  EXPECT_EQ(c.loader_threads, 3U);
  EXPECT_TRUE(c.direct_io);
  EXPECT_FALSE(c.remove_on_exit);
  EXPECT_EQ(c.policy.eviction, "gdsf");
  EXPECT_EQ(c.metrics_addr, "127.0.0.1:9464");
}

TEST_F(ConfigFileTest, CommandLineOverridesTheFileBeforeOrAfterConfig) {
  const std::string f = write("base.toml", R"(models = "/srv/models"
memory = "8GiB"
preload = ["a", "b"]
log-level = "debug"
)");
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"--memory", "1G", "--preload", "c", "--config", f},
                                             {"--config", f, "--memory", "1G", "--preload", "c"}}) {
    Config c;
    auto r = parse(args, &c);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(c.policy.budget, 1ULL << 30);
    // A list given on the command line replaces the file's, not adds to it.
    EXPECT_EQ(c.preload, std::vector<std::string>{"c"});
    EXPECT_EQ(c.log_level, "debug");  // not overridden: the file's
  }
}

TEST_F(ConfigFileTest, AnOverriddenKeyIsStillChecked) {
  const std::string f = write("bad.toml", "models = \"/m\"\nmemory = \"1KiB\"\n");
  EXPECT_EQ(failure({"--config", f, "--memory", "1G"}),
            f + ":2: memory: must be between 16.0 MiB and 1024.0 TiB");
}

TEST_F(ConfigFileTest, EnvironmentNamesTheDefaultFileAndConfigOverridesIt) {
  const std::string env = write("env.toml", "models = \"/from/env\"\n");
  const std::string given = write("given.toml", "models = \"/from/flag\"\n");
  Config a;
  ASSERT_TRUE(parse({}, &a, env.c_str()).ok());
  EXPECT_EQ(a.models_dir, "/from/env");
  Config b;
  ASSERT_TRUE(parse({"--config", given}, &b, env.c_str()).ok());
  EXPECT_EQ(b.models_dir, "/from/flag");
  Config none;  // an empty $MODELPOOL_CONFIG is no file
  EXPECT_TRUE(parse({"--models", "/m"}, &none, "").ok());
}

TEST_F(ConfigFileTest, PrintConfigReadsBackToTheSameConfiguration) {
  Config original;
  auto r = parse(
      {"--models", "/srv/models with \"quotes\"", "--memory", "3GiB", "--max-model-size", "1234567",
       "--high-watermark", "0.9", "--preload", "a,b/c", "--direct-io", "--eviction", "gdsf",
       "--log-file", "/var/log/mp\\x", "--metrics-addr", "0.0.0.0:1", "--print-config"},
      &original);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, ParseOutcome::kPrintConfig);
  const std::string text = to_toml(original);
  EXPECT_NE(text.find("memory = \"3GiB\"\n"), std::string::npos) << text;
  EXPECT_NE(text.find("max-model-size = 1234567\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# run-dir: not set\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("config ="), std::string::npos) << text;

  const std::string f = write("printed.toml", text);
  Config reread;
  auto again = parse({"--config", f}, &reread);
  ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << text;
  nlohmann::json want = to_json(original), got = to_json(reread);
  want.erase("config");
  got.erase("config");
  EXPECT_EQ(got, want);
  EXPECT_EQ(to_toml(reread), text);
}

TEST_F(ConfigFileTest, DefaultsPrintAndReadBack) {
  Config original;
  ASSERT_TRUE(parse({"--models", "/m"}, &original).ok());
  const std::string f = write("defaults.toml", to_toml(original));
  Config reread;
  ASSERT_TRUE(parse({"--config", f}, &reread).ok());
  EXPECT_EQ(to_toml(reread), to_toml(original));
  EXPECT_EQ(reread.policy.budget, 0U);  // still the broker's choice at start
}

TEST_F(ConfigFileTest, SyntaxErrorNamesFileLineAndColumn) {
  const std::string f = write("syntax.toml", "models = \"/m\"\n\nmemory = = 3\n");
  const std::string msg = failure({"--config", f});
  EXPECT_EQ(msg.rfind(f + ":3:", 0), 0U) << msg;
  EXPECT_NE(msg.find("not TOML"), std::string::npos) << msg;
}

TEST_F(ConfigFileTest, UnknownKeysAreAllNamedInFileOrder) {
  const std::string f = write("unknown.toml", "zeta = 1\nmodels = \"/m\"\nalpha = 2\n[log]\n");
  EXPECT_EQ(failure({"--config", f}),
            f + ":1: unknown key zeta; " + f + ":3: unknown key alpha; " + f +
                ":4: unknown key log (the keys are the long options of --help)");
}

TEST_F(ConfigFileTest, WrongTypeNamesTheKeyAndWhatItTakes) {
  const std::string f = write("type.toml", "models = \"/m\"\nloader-threads = \"2\"\n");
  EXPECT_EQ(failure({"--config", f}), f + ":2: loader-threads: expected an integer, not a string");
  const std::string g = write("list.toml", "models = \"/m\"\npreload = [\"a\", 2]\n");
  EXPECT_EQ(failure({"--config", g}),
            g + ":2: preload: expected an array of strings, not an array holding an integer");
  const std::string h = write("flag.toml", "models = \"/m\"\ndirect-io = \"yes\"\n");
  EXPECT_EQ(failure({"--config", h}), h + ":2: direct-io: expected true or false, not a string");
}

TEST_F(ConfigFileTest, OutOfBoundsIsTheFlagsMessageAtTheKey) {
  const std::string f = write("bounds.toml", "models = \"/m\"\n\nqueue-depth = 1000\n");
  const std::string from_flag = failure({"--models", "/m", "--queue-depth", "1000"});
  EXPECT_EQ(from_flag, "--queue-depth: must be between 1 and 256");
  EXPECT_EQ(failure({"--config", f}), f + ":3: queue-depth: must be between 1 and 256");
  const std::string g = write("choice.toml", "models = \"/m\"\neviction = \"fifo\"\n");
  EXPECT_EQ(failure({"--config", g}), g + ":2: eviction: \"fifo\" is not one of lru, gdsf");
}

TEST_F(ConfigFileTest, MissingFileAndConfigInsideAFile) {
  EXPECT_EQ(
      failure({"--config", (dir_ / "absent.toml").string()}),
      "--config: cannot read " + (dir_ / "absent.toml").string() + ": No such file or directory");
  const std::string f = write("nested.toml", "models = \"/m\"\nconfig = \"other.toml\"\n");
  EXPECT_EQ(failure({"--config", f}), f + ":2: config: only on the command line");
}

TEST_F(ConfigFileTest, CrossFieldChecksSeeFileAndFlagsTogether) {
  const std::string f = write("marks.toml", "models = \"/m\"\nlow-watermark = 0.8\n");
  EXPECT_EQ(failure({"--config", f, "--high-watermark", "0.7"}),
            "--low-watermark must not exceed --high-watermark");
  Config c;
  EXPECT_TRUE(parse({"--config", f, "--high-watermark", "0.9"}, &c).ok());
}

}  // namespace
}  // namespace modelpool::broker
