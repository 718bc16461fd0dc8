// File: tests/hugepages/worker/huge_worker.cc
//
// A worker process for the huge-page tests: connects, acquires one model
// (optionally with populate), reads from its own smaps how the mapping is
// backed before and after touching every 4 KiB page, compares the bytes with
// the model file, and prints one JSON line; then, with --hold, keeps the
// model until its stdin closes.
//
//   huge_worker --socket PATH --model NAME [--verify FILE] [--populate] [--hold]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>

#include "huge_env.hpp"
#include "modelpool/client.hpp"

namespace {

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

// Reads one byte of every 4 KiB page, as a worker's first pass over weights does.
unsigned touch_every_page(std::span<const std::byte> bytes) {
  unsigned sum = 0;
  for (std::size_t i = 0; i < bytes.size(); i += 4096) {
    sum += static_cast<unsigned>(*static_cast<const volatile std::byte*>(&bytes[i]));
  }
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  namespace mt = modelpool::testing;
  const std::string socket = arg_after(argc, argv, "--socket");
  const std::string model = arg_after(argc, argv, "--model");
  const std::string verify = arg_after(argc, argv, "--verify");
  const bool populate = has_flag(argc, argv, "--populate");
  if (socket.empty() || model.empty()) {
    std::fprintf(stderr,
                 "usage: huge_worker --socket PATH --model NAME [--verify FILE] "
                 "[--populate] [--hold]\n");
    return 2;
  }
  try {
    modelpool::Client client = modelpool::Client::connect(socket);
    const auto t0 = std::chrono::steady_clock::now();
    modelpool::Model m = client.acquire(model, {.wait = std::nullopt, .populate = populate});
    const auto t1 = std::chrono::steady_clock::now();
    const std::span<const std::byte> b = m.bytes();
    const mt::MappingPages before = mt::mapping_pages(b.data());
    const unsigned sum = touch_every_page(b);
    const auto t2 = std::chrono::steady_clock::now();
    const mt::MappingPages after = mt::mapping_pages(b.data());
    bool file_ok = true;
    if (!verify.empty()) {
      std::ifstream in(verify, std::ios::binary);
      const std::string want((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
      file_ok = want.size() == b.size() && std::memcmp(want.data(), b.data(), b.size()) == 0;
    }
    const auto page = client.page_size();
    const auto addr = reinterpret_cast<std::uintptr_t>(b.data());
    using us = std::chrono::microseconds;
    const nlohmann::json out = {{"ok", true},
                                {"pid", static_cast<int>(::getpid())},
                                {"size", m.size()},
                                {"page_size", page},
                                {"aligned", page != 0 && addr % page == 0},
                                {"populate", populate},
                                {"file_ok", file_ok},
                                {"acquire_us", std::chrono::duration_cast<us>(t1 - t0).count()},
                                {"touch_us", std::chrono::duration_cast<us>(t2 - t1).count()},
                                {"sum", sum % 251},
                                {"before", mt::to_json(before)},
                                {"after", mt::to_json(after)}};
    std::printf("%s\n", out.dump().c_str());
    std::fflush(stdout);
    if (has_flag(argc, argv, "--hold")) {
      char buf[64];
      while (::read(0, buf, sizeof buf) > 0) {
      }
    }
    return file_ok ? 0 : 1;
  } catch (const modelpool::Error& e) {
    const nlohmann::json out = {
        {"ok", false}, {"code", std::string(e.code_name())}, {"message", e.what()}};
    std::printf("%s\n", out.dump().c_str());
    return 1;
  }
}
