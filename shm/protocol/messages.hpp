// File: shm/protocol/messages.hpp
//
// The messages of wire protocol v1 (docs/protocol.md is the reference) and
// one encode/decode pair per message. `decode_request` and `decode_reply` are
// the only places that parse untrusted JSON: every nlohmann-json exception is
// caught there and becomes bad_request (broker) or protocol_error (client).
// All functions are pure and thread-safe.
#ifndef MODELPOOL_SHM_PROTOCOL_MESSAGES_HPP_
#define MODELPOOL_SHM_PROTOCOL_MESSAGES_HPP_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shm/status.hpp"

namespace modelpool::proto {

using json = nlohmann::json;

inline constexpr int kProtocolVersion = 1;

// ---- envelopes -----------------------------------------------------------

// {"op": "...", "id": <any, echoed>, ...fields}
struct Request {
  std::string op;
  json id;    // null when absent
  json body;  // the whole object, fields read with the getters below
};
// bad_request unless `payload` is a JSON object with a string "op".
Result<Request> decode_request(std::string_view payload);
std::string encode_request(std::string_view op, const json& id, json fields);

// {"id": ..., "ok": true, ...fields} or {"id": ..., "ok": false, "error": {...}}
struct Reply {
  json id;
  json body;  // the whole object when ok
};
// The reply, or the broker's error as a Status (its code and message), or
// protocol_error when `payload` is not a well-formed reply.
Result<Reply> decode_reply(std::string_view payload);
std::string encode_ok(const json& id, json fields);
std::string encode_error(const json& id, const Status& status);

// Typed field access with bad_request naming the field on a mismatch.
Result<std::string> get_string(const json& obj, std::string_view key);
Result<std::uint64_t> get_uint(const json& obj, std::string_view key);
Result<std::optional<std::uint64_t>> get_opt_uint(const json& obj, std::string_view key);
Result<std::optional<bool>> get_opt_bool(const json& obj, std::string_view key);

// ---- worker ops ----------------------------------------------------------

struct HelloReply {
  int proto = kProtocolVersion;
  std::string pool;
  std::string segment_path;  // open read-only and mmap
  std::uint64_t segment_size = 0;
  std::uint64_t page_size = 0;  // of the segment's filesystem
};
json to_json(const HelloReply& m);
Result<HelloReply> decode_hello_reply(const json& body);

// The longest wait for room the broker honours (24 h); larger wait_ms
// values are clamped to it.
inline constexpr std::uint64_t kMaxWaitMs = 24ULL * 3600 * 1000;

struct AcquireRequest {
  std::string model;
  std::optional<std::uint64_t> wait_ms;
};
json to_json(const AcquireRequest& m);
Result<AcquireRequest> decode_acquire_request(const json& body);

// One file of a model made of several (a repository, a GGUF split set): its
// name in the model, where its bytes are, and what they are.
struct FileRef {
  std::string name;  // "model-00001-of-00002.safetensors", "config.json"
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::uint64_t generation = 0;
  std::uint64_t checksum = 0;
  std::string format;
  bool weights = false;  // a weights file (its tensors are the model's), else a small file
  bool operator==(const FileRef&) const = default;
};

// An acquire's grant. For a model of several files, `files` lists them
// (weights first, in index order) and the top-level extent is the first
// weights file's; a client that knows only one file reads that one.
struct AcquireReply {
  std::uint64_t handle = 0;
  std::string model;
  std::uint64_t offset = 0;  // into the segment, page-aligned
  std::uint64_t size = 0;    // bytes of the model file
  std::uint64_t generation = 0;
  std::uint64_t checksum = 0;  // xxh3-64 of the bytes; hex string on the wire
  std::string format;          // "raw", "safetensors", "gguf"
  bool cached = false;         // true when no load was needed
  std::vector<FileRef> files;  // empty for a model of one file
  std::string commit;          // hf: names: the snapshot's commit
};
json to_json(const AcquireReply& m);
Result<AcquireReply> decode_acquire_reply(const json& body);

struct ReleaseRequest {
  std::uint64_t handle = 0;
  bool reply = true;  // false: the broker sends no reply, not even an error
};
json to_json(const ReleaseRequest& m);
Result<ReleaseRequest> decode_release_request(const json& body);

// ---- admin ops -----------------------------------------------------------

// Requests naming one model: load / evict / pin / unpin.
struct ModelRequest {
  std::string model;
  bool pin = false;  // load only
};
json to_json(const ModelRequest& m);
Result<ModelRequest> decode_model_request(const json& body);

// checksum as 16 lowercase hex digits, and back.
std::string checksum_to_hex(std::uint64_t v);
// Appends the same 16 digits to `out` (the hot path: no temporary string).
void append_checksum_hex(std::string& out, std::uint64_t v);
std::optional<std::uint64_t> checksum_from_hex(std::string_view s);

}  // namespace modelpool::proto

#endif  // MODELPOOL_SHM_PROTOCOL_MESSAGES_HPP_
