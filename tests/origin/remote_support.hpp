// File: tests/origin/remote_support.hpp
//
// Shared by the remote-origin tests: a model file on an origin's disk, the
// broker's view of the origins (stats and list rows through the admin
// socket), what a disk tier directory holds, and a bounded wait on the
// broker's own reports (its `list` rows), never on the clock.
#ifndef MODELPOOL_TESTS_ORIGIN_REMOTE_SUPPORT_HPP_
#define MODELPOOL_TESTS_ORIGIN_REMOTE_SUPPORT_HPP_

#include <dirent.h>
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "broker_fixture.hpp"
#include "modelpool/client.hpp"

namespace modelpool::testing {

inline std::string as_string(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// The broker's `origins` report (stats --json).
inline json origin_stats(const Broker& b) { return b.admin("stats")["origins"]; }

inline json row_of(const Broker& b, const std::string& name) {
  const json list = b.admin("list");  // alive through the loop
  for (const json& r : list["models"]) {
    if (r["name"] == name) return r;
  }
  return nullptr;
}

// Names in `dir` (not "." and ".."), sorted; empty when it is missing.
inline std::vector<std::string> dir_names(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != "..") out.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Polls `done` every 10 ms for at most `ms` milliseconds; whether it held.
inline bool eventually(const std::function<bool()>& done, int ms = 10000) {
  for (int i = 0; i < ms / 10; ++i) {
    if (done()) return true;
    const timespec step{0, 10'000'000};
    ::nanosleep(&step, nullptr);
  }
  return done();
}

// Bytes a download in flight has received, by the broker's `list`; -1 when
// the model has no download row.
inline std::int64_t download_bytes(const Broker& b, const std::string& name) {
  const json row = row_of(b, name);
  if (!row.is_object() || !row.contains("download")) return -1;
  return row["download"]["bytes"].get<std::int64_t>();
}

// Sets environment variables for the brokers a test starts; restores them.
class ScopedEnv {
 public:
  void set(const char* name, const std::string& value) {
    save(name);
    ::setenv(name, value.c_str(), 1);
  }
  void unset(const char* name) {
    save(name);
    ::unsetenv(name);
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        ::unsetenv(it->first.c_str());
      }
    }
  }

 private:
  void save(const char* name) {
    const char* old = ::getenv(name);
    saved_.emplace_back(name, old != nullptr ? std::optional<std::string>(old) : std::nullopt);
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// The bytes of `name` through a new connection, or "error CODE: message".
inline std::string acquire_or_error(const Broker& b, const std::string& name) {
  try {
    Client c = Client::connect(b.worker_socket());
    return as_string(c.acquire(name).bytes());
  } catch (const Error& e) {
    return "error " + std::string(e.code_name()) + ": " + e.what();
  }
}

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_ORIGIN_REMOTE_SUPPORT_HPP_
