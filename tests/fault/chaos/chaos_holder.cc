// File: tests/fault/chaos/chaos_holder.cc
//
// A holder process: a worker that acquires one model, maps it, takes the
// OFD read lock a real worker takes (chaos_lock.hpp), and then never speaks
// to a broker again. Its connection dies with the first SIGKILL and it does
// not reconnect or re-acquire; the restarted brokers must leave its bytes
// alone anyway, under budget pressure, admin evictions and clears, and when
// the file is replaced and a newer generation is loaded. It re-reads the
// bytes until Shared::stop, and every read must hash to what it acquired.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>

#include "chaos.hpp"
#include "chaos_lock.hpp"
#include "fault_support.hpp"

namespace modelpool::chaos {

namespace {

using Clock = std::chrono::steady_clock;

// Connects and acquires `m` (retrying while the pool is full or the broker
// restarts, up to 20 s); the reply, or nullopt.
std::optional<fault::json> acquire(const std::string& socket, const Model& m,
                                   std::unique_ptr<fault::Conn>& conn, std::string& segment) {
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    conn = std::make_unique<fault::Conn>(socket);
    auto hello = conn->closed() ? std::nullopt : conn->request({{"op", "hello"}});
    if (hello && hello->value("ok", false)) {
      segment = (*hello)["segment_path"];
      auto r = conn->request({{"op", "acquire"}, {"model", m.name}, {"wait_ms", 200}},
                             std::chrono::seconds(10));
      if (r && r->value("ok", false)) return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::nullopt;
}

int hold(int index, const std::string& socket, const Model& m, Shared* shared) {
  HolderCounters& c = shared->holders[index];
  std::unique_ptr<fault::Conn> conn;  // kept open, never used again
  std::string segment;
  auto r = acquire(socket, m, conn, segment);
  if (!r) {
    std::fprintf(stderr, "holder %d: could not acquire %s\n", index, m.name.c_str());
    c.errors.fetch_add(1);
    return 1;
  }
  const std::uint64_t offset = (*r)["offset"];
  const std::uint64_t checksum = std::stoull((*r)["checksum"].get<std::string>(), nullptr, 16);
  fault::Mapping map(segment, offset, m.size);
  ExtentLock lock(segment, offset, m.size);
  c.generation.store((*r)["generation"].get<std::uint64_t>());
  while (!shared->stop.load()) {
    const std::uint64_t got = map.hash();
    c.reads.fetch_add(1);
    const bool known = got == m.checksum || (m.alt_checksum != 0 && got == m.alt_checksum);
    if (got != checksum || !known) {
      c.wrong_bytes.fetch_add(1);
      char line[512];
      std::snprintf(line, sizeof line,
                    "holder %d: WRONG BYTES: %s generation %llu at offset %llu: xxh3 %s, "
                    "acquired %s",
                    index, m.name.c_str(), static_cast<unsigned long long>(c.generation.load()),
                    static_cast<unsigned long long>(offset), fault::hex16(got).c_str(),
                    fault::hex16(checksum).c_str());
      std::fprintf(stderr, "%s\n", line);
      if (shared->wrong_reports.fetch_add(1) == 0) {
        std::snprintf(shared->first_wrong, sizeof shared->first_wrong, "%s", line);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return 0;  // the lock goes before the mapping (declaration order), then the connection
}

}  // namespace

pid_t spawn_holder(int index, const std::string& socket_path, const Model& model, Shared* shared) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::close_range(3, ~0U, 0);
  ::signal(SIGPIPE, SIG_IGN);
  int code = 1;
  try {
    code = hold(index, socket_path, model, shared);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "holder %d: %s\n", index, e.what());
    shared->holders[index].errors.fetch_add(1);
  }
  std::fflush(stderr);
  ::_exit(code);
}

}  // namespace modelpool::chaos
