// File: tests/admin/ctl_errors_test.cc
//
// modelpoolctl's error paths and exit codes against the real broker:
// 2 for usage mistakes (nothing sent), 3 with one sentence when no broker
// runs, 1 with "error: CODE: message" for every refusal the broker can give
// an admin op, after which the broker still serves.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "admin_support.hpp"

namespace modelpool::testing {
namespace {

constexpr int kOk = 0, kBrokerError = 1, kUsage = 2, kNoBroker = 3;

TEST(CtlUsage, MistakesAreExitTwoAndNameTheMistake) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "missing command"},
      {{"frobnicate"}, "unknown command 'frobnicate'"},
      {{"evict"}, "evict needs a model NAME"},
      {{"stats", "extra"}, "unexpected argument 'extra'"},
      {{"stats", "--pin"}, "--pin goes with load only"},
      {{"stats", "--bogus"}, "unknown option --bogus"},
      {{"stats", "--run-dir"}, "--run-dir needs a value"},
      {{"stats", "--pool", "a/b"}, "pool"},
      {{"stats", "--timeout-ms", "soon"}, "--timeout-ms needs a non-negative number"},
  };
  for (const auto& [args, says] : cases) {
    const Outcome o = ctl(args);
    EXPECT_EQ(o.code, kUsage) << o.err;
    EXPECT_EQ(o.out, "");
    EXPECT_EQ(o.err.rfind("modelpoolctl: ", 0), 0U) << o.err;
    EXPECT_NE(o.err.find(says), std::string::npos) << o.err;
  }
  const Outcome help = ctl({"--help"});
  EXPECT_EQ(help.code, kOk);
  EXPECT_NE(help.out.find("exit status: 0 ok, 1 the broker refused or failed, 2 usage error"),
            std::string::npos);
}

TEST(CtlNoBroker, NoSocketIsExitThreeAndOneSentence) {
  const std::string dir = "/tmp/mp-admin-none-" + std::to_string(::getpid());
  const Outcome o = ctl({"--run-dir", dir, "--pool", "nobody", "stats"});
  EXPECT_EQ(o.code, kNoBroker);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "no modelpool broker is running for pool 'nobody' (no socket at " + dir +
                       "/nobody.admin.sock)\n");
  const Outcome s = ctl({"--socket", dir + "/x.sock", "health", "--json"});
  EXPECT_EQ(s.code, kNoBroker);
  EXPECT_EQ(s.err, "no modelpool broker is running at " + dir + "/x.sock (no such socket)\n");
}

TEST(CtlNoBroker, StaleSocketOfAKilledBrokerIsExitThree) {
  ScratchDir models;
  Broker b(models.path());
  b.start();
  b.kill9();  // leaves its socket files behind
  ASSERT_TRUE(std::filesystem::exists(b.admin_socket()));
  const Outcome o = ctl(b, {"health"});
  EXPECT_EQ(o.code, kNoBroker);
  EXPECT_EQ(o.err, "no modelpool broker is running for pool '" + b.pool() +
                       "' (nothing listens on " + b.admin_socket() + ")\n");
}

class CtlBrokerErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    models_.write_random("m.bin", 1 << 20, 1);
    models_.write_random("big.bin", 3 << 20, 2);
    const std::string header = "{\"x\": 1}";  // a safetensors header whose entry is no tensor
    models_.write("bad.safetensors",
                  std::string(1, static_cast<char>(header.size())) + std::string(7, '\0') + header);
    outside_.write_random("secret.bin", 4096, 3);
    std::filesystem::create_symlink(outside_.path() + "/secret.bin",
                                    models_.path() + "/escape.bin");
    std::filesystem::create_symlink(outside_.path(), models_.path() + "/elsewhere");
    broker_.start();
  }
  void TearDown() override {
    const Outcome h = ctl(broker_, {"health"});  // the broker lives on
    EXPECT_EQ(h.code, kOk) << h.err;
  }
  // Expects exit 1, nothing on stdout, and exactly one line on stderr,
  // "error: CODE: ...", in both output modes, and with --json the error
  // object on stdout; returns that line.
  std::string refused(std::vector<std::string> args, const std::string& code) {
    Outcome o = ctl(broker_, args);
    EXPECT_EQ(o.code, kBrokerError) << o.out << o.err;
    EXPECT_EQ(o.out, "");
    EXPECT_TRUE(std::regex_match(o.err, std::regex("error: " + code + ": [^\n]+\n"))) << o.err;
    args.push_back("--json");
    const Outcome j = ctl(broker_, args);
    EXPECT_EQ(j.code, kBrokerError);
    EXPECT_EQ(j.err, o.err);
    const json e = j.parsed();
    EXPECT_EQ(e.value("ok", true), false) << j.out;
    EXPECT_EQ(e.value("error", json::object()).value("code", ""), code) << j.out;
    return o.err;
  }

  ScratchDir models_, outside_;
  Broker broker_{models_.path(), {"--max-model-size", "2MiB"}};
};

TEST_F(CtlBrokerErrors, NamesThatAreNotModels) {
  EXPECT_NE(refused({"load", "missing.bin"}, "not_found").find("missing.bin"), std::string::npos);
  refused({"load", "../m.bin"}, "invalid_name");
  refused({"load", "/etc/passwd"}, "invalid_name");
  refused({"load", "a//b"}, "invalid_name");
  refused({"load", "big.bin"}, "too_large");
  refused({"load", "bad.safetensors"}, "load_failed");
  const std::string dir = refused({"load", "."}, "invalid_name");
  EXPECT_NE(dir.find("\".\""), std::string::npos) << dir;
}

TEST_F(CtlBrokerErrors, SymlinksOutOfTheModelsDirectoryAreForbidden) {
  EXPECT_NE(refused({"load", "escape.bin"}, "forbidden").find("outside the models directory"),
            std::string::npos);
  refused({"load", "elsewhere/secret.bin"}, "forbidden");
  RawConn worker(broker_.worker_socket());
  EXPECT_EQ(code_of(worker.request({{"op", "acquire"}, {"model", "escape.bin"}})), "forbidden");
  EXPECT_EQ(broker_.admin("stats")["bytes_used"], 0) << "nothing from outside was read in";
}

TEST_F(CtlBrokerErrors, ModelsNotInThePoolOrInUse) {
  refused({"evict", "m.bin"}, "not_found");
  refused({"pin", "m.bin"}, "not_found");
  refused({"unpin", "m.bin"}, "not_found");
  RawConn worker(broker_.worker_socket());
  const json got = worker.request({{"op", "acquire"}, {"model", "m.bin"}});
  ASSERT_TRUE(got["ok"].get<bool>()) << got;
  EXPECT_NE(refused({"evict", "m.bin"}, "forbidden").find("in use by 1 handle"), std::string::npos);
  const Outcome c = ctl(broker_, {"clear"});
  EXPECT_EQ(c.out, "evicted 0 models (0 B)\n") << "a referenced model survives clear";
  ASSERT_TRUE(worker.request({{"op", "release"}, {"handle", got["handle"]}})["ok"].get<bool>());
  ASSERT_EQ(ctl(broker_, {"pin", "m.bin"}).code, kOk);
  EXPECT_NE(refused({"evict", "m.bin"}, "forbidden").find("pinned"), std::string::npos);
}

}  // namespace
}  // namespace modelpool::testing
