// File: tests/budget/budget_util.cc
//
// See budget_util.hpp.
#include "budget_util.hpp"

#include <openssl/evp.h>
#include <poll.h>
#include <sys/stat.h>

#include <stdexcept>

namespace modelpool::testing {

void WorkerConn::send_acquire(const std::string& model, std::optional<std::uint64_t> wait_ms) {
  json req = {{"op", "acquire"}, {"id", next_id_++}, {"model", model}};
  if (wait_ms) req["wait_ms"] = *wait_ms;
  conn_.send_frame(req.dump());
}

json WorkerConn::acquire(const std::string& model, std::optional<std::uint64_t> wait_ms) {
  send_acquire(model, wait_ms);
  auto r = conn_.recv();
  if (!r) throw std::runtime_error("broker closed the worker connection");
  return *r;
}

std::optional<json> WorkerConn::reply_within(std::chrono::milliseconds limit) {
  pollfd p{conn_.fd(), POLLIN, 0};
  const int n = ::poll(&p, 1, static_cast<int>(limit.count()));
  if (n <= 0) return std::nullopt;
  return conn_.recv();
}

json WorkerConn::release(std::uint64_t handle) {
  return conn_.request({{"op", "release"}, {"id", next_id_++}, {"handle", handle}});
}

json WorkerConn::touch(const std::string& model) {
  json r = acquire(model);
  if (r.value("ok", false)) {
    json rel = release(r["handle"].get<std::uint64_t>());
    if (!rel.value("ok", false)) throw std::runtime_error("release failed: " + rel.dump());
  }
  return r;
}

json admin_until(const Broker& broker, const std::string& op,
                 const std::function<bool(const json&)>& pred, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  json r = broker.admin(op);
  while (!pred(r) && std::chrono::steady_clock::now() < deadline) r = broker.admin(op);
  return r;
}

std::set<std::string> current_models(const Broker& broker) {
  std::set<std::string> names;
  const json list = broker.admin("list");
  for (const auto& row : list["models"]) {
    if (row["current"].get<bool>()) names.insert(row["name"].get<std::string>());
  }
  return names;
}

json model_row(const Broker& broker, const std::string& name) {
  const json list = broker.admin("list");
  for (const auto& row : list["models"]) {
    if (row["name"] == name && row["current"].get<bool>()) return row;
  }
  return nullptr;
}

json self_check_problems(const Broker& broker) { return broker.admin("selfcheck")["problems"]; }

std::uint64_t segment_resident_bytes(const Broker& broker) {
  struct stat st {};
  if (::stat(broker.segment_path().c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 15]);
  }
  return hex;
}

}  // namespace modelpool::testing
