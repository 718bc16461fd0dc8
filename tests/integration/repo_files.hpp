// File: tests/integration/repo_files.hpp
//
// Test support for models of several files: safetensors files written by
// the published layout (u64 little-endian header length, JSON header, data)
// whose every float says which file and tensor it belongs to, the bytes of
// one tensor read back independently, and the admin rows of a broker.
#ifndef MODELPOOL_TESTS_INTEGRATION_REPO_FILES_HPP_
#define MODELPOOL_TESTS_INTEGRATION_REPO_FILES_HPP_

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "broker_fixture.hpp"

namespace modelpool::testing {

constexpr std::uint64_t kKiB = 1024;

struct StTensor {
  std::string name;
  std::size_t floats;
};

// A safetensors file by the published layout: u64 little-endian header
// length, the JSON header, the data. Each tensor's float i holds
// seed * 1000 + tensor * 100 + i, so every byte says where it came from.
inline std::string safetensors(const std::vector<StTensor>& tensors, int seed) {
  json header = json::object();
  std::string data;
  for (std::size_t t = 0; t < tensors.size(); ++t) {
    const std::size_t begin = data.size();
    for (std::size_t i = 0; i < tensors[t].floats; ++i) {
      const float v =
          static_cast<float>(seed * 1000 + static_cast<int>(t) * 100 + static_cast<int>(i));
      data.append(reinterpret_cast<const char*>(&v), sizeof v);
    }
    header[tensors[t].name] = {
        {"dtype", "F32"}, {"shape", {tensors[t].floats}}, {"data_offsets", {begin, data.size()}}};
  }
  std::string h = header.dump();
  const std::uint64_t n = h.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);
  return out + h + data;
}

// The bytes of tensor `name` in safetensors file `bytes`.
inline std::string tensor_bytes(const std::string& bytes, const std::string& name) {
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const json header = json::parse(bytes.substr(8, n));
  const auto& off = header.at(name).at("data_offsets");
  return bytes.substr(8 + n + off[0].get<std::size_t>(),
                      off[1].get<std::size_t>() - off[0].get<std::size_t>());
}

inline std::string as_string(std::span<const std::byte> s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

inline void put(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

inline json row_of(const Broker& b, const std::string& name) {
  const json list = b.admin("list");
  for (const json& r : list["models"]) {
    if (r["name"] == name) return r;
  }
  return json();
}

inline std::uint64_t bytes_used(const Broker& b) { return b.admin("stats")["bytes_used"]; }

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_INTEGRATION_REPO_FILES_HPP_
