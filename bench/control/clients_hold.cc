// File: bench/control/clients_hold.cc
//
// mp_bench_clients: opens --count idle client connections to the broker
// (Client::connect each, so each did `hello`), optionally each holding one
// acquired --model, prints one "ready" line, and keeps them open until stdin
// closes. The driver compares the broker's RSS before and after: its memory
// per connected client.
//   mp_bench_clients --socket S --count K [--model M]
#include <sys/resource.h>
#include <unistd.h>

#include <modelpool/client.hpp>
#include <optional>
#include <vector>

#include "bench/common/bench_util.hpp"

namespace mb = modelpool::bench;

int main(int argc, char** argv) {
  mb::Args args(argc, argv);
  const std::string socket = args.required("socket");
  const auto count = static_cast<int>(args.num("count", 100));
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);

  std::vector<modelpool::Client> clients;
  std::vector<modelpool::Model> models;
  try {
    for (int i = 0; i < count; ++i) {
      clients.push_back(modelpool::Client::connect(socket));
      if (args.has("model")) models.push_back(clients.back().acquire(args.str("model")));
    }
  } catch (const modelpool::Error& e) {
    mb::die(std::string("connect: ") + e.what());
  }
  mb::emit("clients", "ready", count, "clients", {{"pid", ::getpid()}});
  char c;
  while (::read(STDIN_FILENO, &c, 1) > 0) {
  }
  return 0;
}
