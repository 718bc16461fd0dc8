// File: shm/protocol/hot_path.hpp
//
// The warm acquire/release round trip without a JSON DOM. A worker repeats
// acquire + release, so these messages are written straight into a string
// (a repository's list of files too) and replies are read into a flat
// record of their top-level scalars and of the "files" list, by a scanner of
// the plain JSON the broker writes, else by nlohmann's SAX parser: no map of
// nodes to build and free. Same wire format as messages.hpp (the protocol
// tests and the messages fuzzer hold both to each other), same limits
// (nesting over 64 levels is refused).
#ifndef MODELPOOL_SHM_PROTOCOL_HOT_PATH_HPP_
#define MODELPOOL_SHM_PROTOCOL_HOT_PATH_HPP_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shm/protocol/messages.hpp"
#include "shm/status.hpp"

namespace modelpool::proto {

// Requests, with an unsigned id.
std::string encode_acquire_request(std::uint64_t id, const AcquireRequest& m);
std::string encode_release_request(std::uint64_t id, const ReleaseRequest& m);
// {"op":"flush","id":id}: the worker's release ring asks to be read (no reply).
std::string encode_flush_request(std::uint64_t id);

// Replies: {"id": id, "ok": true, ...fields of the reply}.
std::string encode_acquire_reply(const json& id, const AcquireReply& m);
// {"id": id, "ok": true}
std::string encode_ok_empty(const json& id);

// The most files one acquire reply may list (both readers' limit): a sharded
// checkpoint has tens.
inline constexpr std::size_t kMaxReplyFiles = 65536;

// A reply's top-level fields. Nested values are skipped, except the
// error object's "code" and "message" and the scalars of each object in the
// acquire reply's "files" list.
struct FlatReply {
  struct Value {
    enum class Kind { kNull, kBool, kUnsigned, kSigned, kFloat, kString, kNested };
    explicit Value(Kind k) : kind(k) {}
    Kind kind;
    bool b = false;
    std::uint64_t u = 0;
    std::string s;
    bool operator==(const Value&) const = default;
  };
  // The scalars of one object, by key; the last one wins, as in the DOM.
  struct Fields {
    std::vector<std::pair<std::string, Value>> items;
    const Value* find(std::string_view key) const;
    void set(std::string_view key, Value&& v);
    bool operator==(const Fields&) const = default;
  };
  std::optional<std::uint64_t> id;  // only an unsigned id (the ones clients send)
  bool has_ok = false;
  bool ok = false;
  std::optional<std::string> error_code;
  std::optional<std::string> error_message;
  std::vector<std::pair<std::string, Value>> fields;  // the last one wins, as in the DOM
  // The last top-level "files": its objects, while files_listed says it is
  // an array of at most kMaxReplyFiles objects and nothing else.
  std::vector<Fields> files;
  bool files_listed = false;

  const Value* find(std::string_view key) const;
  bool operator==(const FlatReply&) const = default;
};

// protocol_error when `payload` is not one JSON object, or nests too deep.
// A flat object of plain ASCII strings, unsigned integers and literals (what
// the hot path writes) is read by a scanner of that subset alone; anything
// else by nlohmann's SAX parser, as parse_flat_reply_reference does.
Result<FlatReply> parse_flat_reply(std::string_view payload);

// The same with nlohmann's parser only: the reference the tests and the
// fuzzer hold parse_flat_reply to.
Result<FlatReply> parse_flat_reply_reference(std::string_view payload);

// The broker's error as a Status for an ok:false reply (protocol_error for a
// malformed one); OK for an ok:true reply.
Status flat_reply_status(const FlatReply& r);

// The fields of an ok:true acquire reply, its "files" and "commit" too,
// checked as decode_acquire_reply does: what one refuses, so does the other.
Result<AcquireReply> acquire_reply_from(const FlatReply& r);

// The broker's side: an acquire or release request read without a DOM.
struct HotRequest {
  enum class Op { kAcquire, kRelease };
  Op op = Op::kAcquire;
  std::optional<std::uint64_t> id;  // nullopt: the request has no id
  AcquireRequest acquire;           // when op is kAcquire
  ReleaseRequest release;           // when op is kRelease
};

// The request when `payload` is a well-formed acquire or release whose "id"
// is absent or an unsigned integer and whose fields have exactly the types
// those ops take (optional fields absent, not null). Anything else is
// nullopt, and decode_request decides it (with its error replies), so a
// payload that passes here decodes to the same request there.
std::optional<HotRequest> parse_hot_request(std::string_view payload);

}  // namespace modelpool::proto

#endif  // MODELPOOL_SHM_PROTOCOL_HOT_PATH_HPP_
