// File: clientlib/src/model_state.hpp
//
// What a modelpool::Model holds: its connection and Lease (the broker
// handle), its view of the segment, the facts of the acquire reply, and the tensor index
// parsed lazily from the mapped bytes (once, under a std::once_flag). The
// destructor releases the handle, swallowing errors.
#ifndef MODELPOOL_CLIENTLIB_SRC_MODEL_STATE_HPP_
#define MODELPOOL_CLIENTLIB_SRC_MODEL_STATE_HPP_

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "clientlib/src/connection.hpp"
#include "modelpool/client.hpp"
#include "shm/status.hpp"

namespace modelpool::detail {

struct ModelState {
  ModelState() = default;
  ModelState(std::shared_ptr<Connection> c, Acquired acquired);
  ModelState(const ModelState&) = delete;
  ModelState& operator=(const ModelState&) = delete;
  ~ModelState();

  // Releases the handle (the bytes stay mapped while another Model of the
  // segment lives, but are no longer protected); a no-op once released.
  Status release();
  // Parses the tensor index on first use.
  void ensure_parsed() const;
  // After a successful ensure_parsed(): the metadata as JSON text, built on
  // first use (GGUF metadata is decoded from the mapped bytes only then).
  const std::string& metadata_text_once() const;
  // The string value under `key`, decoding only that value; nullopt if the
  // key is missing or not a string.
  std::optional<std::string> metadata_value(std::string_view key) const;

  std::shared_ptr<Connection> connection;
  std::shared_ptr<Lease> lease;          // null for an empty state
  std::shared_ptr<SegmentFile> segment;  // keeps `bytes` mapped
  std::span<const std::byte> bytes;
  std::vector<FileInfo> files;                         // at least one while held
  std::vector<std::span<const std::byte>> file_bytes;  // files' bytes
  std::string commit;
  std::string name;
  Format format = Format::raw;
  bool cached = false;
  std::uint64_t size = 0;
  std::uint64_t generation = 0;
  std::uint64_t checksum = 0;
  bool released = true;

  // Filled by ensure_parsed().
  mutable std::once_flag parse_once;
  mutable Status parse_status;
  mutable std::vector<Tensor> tensors;
  mutable std::string metadata_text = "{}";  // safetensors: by ensure_parsed()
  mutable std::once_flag metadata_once;      // GGUF: by metadata_text_once()

 private:
  static std::string dump(const nlohmann::json& metadata);
};

}  // namespace modelpool::detail

#endif  // MODELPOOL_CLIENTLIB_SRC_MODEL_STATE_HPP_
