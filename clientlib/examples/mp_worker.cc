// File: clientlib/examples/mp_worker.cc
//
// A minimal worker, used by the demo and the multi-process tests: connects,
// acquires one model, checks its bytes (against the broker's checksum and,
// with --verify, against the file), prints one JSON line with what it got
// and what it costs in memory (RssShmem of the process, Rss/Pss of the
// model's mapping), then holds the model until stdin closes (--hold).
// While it holds, each line on stdin is a command that answers one JSON
// line: `check` re-reads the held bytes ({"same": true} when they still hash
// as they did at the acquire), `acquire` acquires the model again through
// the same Client (which reconnects after a broker restart) and holds that
// too ({"ok": ..., "generation": ...}).
//
//   mp_worker --socket PATH --model NAME [--verify FILE] [--hold] [--write]
#include <unistd.h>
#include <xxhash.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "modelpool/client.hpp"

namespace {

struct MapMemory {
  long rss_kb = -1, pss_kb = -1;
};

// Rss and Pss of the mapping that contains `addr`, from /proc/self/smaps.
MapMemory mapping_memory(const void* addr) {
  MapMemory m;
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  const auto a = reinterpret_cast<std::uintptr_t>(addr);
  while (std::getline(in, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
      inside = a >= lo && a < hi;
      continue;
    }
    if (!inside) continue;
    long kb = 0;
    if (std::sscanf(line.c_str(), "Rss: %ld kB", &kb) == 1) m.rss_kb = kb;
    if (std::sscanf(line.c_str(), "Pss: %ld kB", &kb) == 1) m.pss_kb = kb;
  }
  return m;
}

long status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key));
  }
  return -1;
}

std::string arg_after(int argc, char** argv, const char* name) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return "";
}

bool has_flag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return true;
  }
  return false;
}

}  // namespace

// Serves the --hold commands until stdin closes.
static void hold(modelpool::Client& c, const modelpool::Model& m, const std::string& model) {
  const std::span<const std::byte> b = m.bytes();
  const std::uint64_t at_acquire = XXH3_64bits(b.data(), b.size());
  std::vector<modelpool::Model> more;
  std::string line;
  while (std::getline(std::cin, line)) {
    nlohmann::json out;
    if (line == "check") {
      out = {{"same", XXH3_64bits(b.data(), b.size()) == at_acquire}};
    } else if (line == "acquire") {
      try {
        more.push_back(c.acquire(model));
        out = {{"ok", true}, {"generation", more.back().generation()}};
      } catch (const modelpool::Error& e) {
        out = {{"ok", false}, {"code", std::string(e.code_name())}, {"message", e.what()}};
      }
    } else {
      out = {{"ok", false}, {"code", "unknown_command"}};
    }
    std::printf("%s\n", out.dump().c_str());
    std::fflush(stdout);
  }
}

int main(int argc, char** argv) {
  const std::string socket = arg_after(argc, argv, "--socket");
  const std::string model = arg_after(argc, argv, "--model");
  const std::string verify = arg_after(argc, argv, "--verify");
  if (model.empty()) {
    std::fprintf(
        stderr, "usage: mp_worker --socket PATH --model NAME [--verify FILE] [--hold] [--write]\n");
    return 2;
  }
  try {
    modelpool::Client c =
        socket.empty() ? modelpool::Client::connect() : modelpool::Client::connect(socket);
    modelpool::Model m = c.acquire(model);
    std::span<const std::byte> b = m.bytes();
    const bool checksum_ok = XXH3_64bits(b.data(), b.size()) == m.checksum();
    bool file_ok = true;
    if (!verify.empty()) {
      std::ifstream in(verify, std::ios::binary);
      std::string want((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      file_ok = want.size() == b.size() && std::memcmp(want.data(), b.data(), b.size()) == 0;
    }
    const MapMemory mm = mapping_memory(b.data());
    nlohmann::json out = {{"ok", true},
                          {"pid", static_cast<int>(::getpid())},
                          {"model", model},
                          {"size", m.size()},
                          {"generation", m.generation()},
                          {"handle", m.handle()},
                          {"cached", m.cached()},
                          {"checksum_ok", checksum_ok},
                          {"file_ok", file_ok},
                          {"rss_shmem_kb", status_kb("RssShmem:")},
                          {"map_rss_kb", mm.rss_kb},
                          {"map_pss_kb", mm.pss_kb}};
    std::printf("%s\n", out.dump().c_str());
    std::fflush(stdout);
    if (has_flag(argc, argv, "--write") && !b.empty()) {
      // Must fault: the view is mapped read-only. Default dispositions, so the
      // process dies by the signal even under a sanitizer's SEGV handler.
      std::signal(SIGSEGV, SIG_DFL);
      std::signal(SIGBUS, SIG_DFL);
      *const_cast<volatile std::byte*>(b.data()) = std::byte{0x5a};
      std::printf("{\"ok\":false,\"code\":\"wrote_through_view\"}\n");
      return 3;
    }
    if (has_flag(argc, argv, "--hold")) hold(c, m, model);
    return checksum_ok && file_ok ? 0 : 1;
  } catch (const modelpool::Error& e) {
    nlohmann::json out = {
        {"ok", false}, {"code", std::string(e.code_name())}, {"message", e.what()}};
    std::printf("%s\n", out.dump().c_str());
    return 1;
  }
}
