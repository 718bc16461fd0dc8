// File: shm/protocol/hot_path.cc
//
// The hot path's writers (hot_path.hpp). Its readers: hot_path_reply.cc
// (replies, the client's side) and hot_path_request.cc (requests, the
// broker's side).
#include "shm/protocol/hot_path.hpp"

#include <charconv>

namespace modelpool::proto {
namespace {

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;  // 24 bytes hold any uint64
  out.append(buf, end);
}

bool plain_ascii(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x80 || c == '"' || c == '\\') return false;
  }
  return true;
}

// Appends `s` as a JSON string. Anything but plain ASCII goes through
// nlohmann's serializer: with `strict`, invalid UTF-8 throws json::type_error;
// without, it becomes U+FFFD (as encode_ok does).
void append_string(std::string& out, std::string_view s, bool strict) {
  if (plain_ascii(s)) {
    out += '"';
    out.append(s);
    out += '"';
    return;
  }
  out += json(std::string(s))
             .dump(-1, ' ', false,
                   strict ? json::error_handler_t::strict : json::error_handler_t::replace);
}

void append_id(std::string& out, const json& id) {
  if (id.is_number_unsigned()) {
    append_uint(out, id.get<std::uint64_t>());
  } else {
    out += id.dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

// ,"offset":N,"size":N,"generation":N,"checksum":"HEX","format":"F" of an
// extent: the reply's own and each of its files'.
void append_extent(std::string& out, std::uint64_t offset, std::uint64_t size,
                   std::uint64_t generation, std::uint64_t checksum, const std::string& format) {
  out += R"(,"offset":)";
  append_uint(out, offset);
  out += R"(,"size":)";
  append_uint(out, size);
  out += R"(,"generation":)";
  append_uint(out, generation);
  out += R"(,"checksum":")";
  append_checksum_hex(out, checksum);
  out += R"(","format":)";
  append_string(out, format, false);
}

void append_file(std::string& out, const FileRef& f) {
  out += R"({"name":)";
  append_string(out, f.name, false);
  append_extent(out, f.offset, f.size, f.generation, f.checksum, f.format);
  out += R"(,"weights":)";
  out += f.weights ? "true}" : "false}";
}

}  // namespace

std::string encode_acquire_request(std::uint64_t id, const AcquireRequest& m) {
  std::string out;
  out.reserve(64 + m.model.size());
  out += R"({"op":"acquire","id":)";
  append_uint(out, id);
  out += R"(,"model":)";
  append_string(out, m.model, true);
  if (m.wait_ms) {
    out += R"(,"wait_ms":)";
    append_uint(out, *m.wait_ms);
  }
  out += '}';
  return out;
}

std::string encode_release_request(std::uint64_t id, const ReleaseRequest& m) {
  std::string out;
  out.reserve(64);
  out += R"({"op":"release","id":)";
  append_uint(out, id);
  out += R"(,"handle":)";
  append_uint(out, m.handle);
  if (!m.reply) out += R"(,"reply":false)";
  out += '}';
  return out;
}

std::string encode_flush_request(std::uint64_t id) {
  std::string out = R"({"op":"flush","id":)";
  append_uint(out, id);
  out += '}';
  return out;
}

std::string encode_acquire_reply(const json& id, const AcquireReply& m) {
  std::string out;
  out.reserve(192 + m.model.size() + m.files.size() * 160 + m.commit.size());
  out += R"({"id":)";
  append_id(out, id);
  out += R"(,"ok":true,"handle":)";
  append_uint(out, m.handle);
  out += R"(,"model":)";
  append_string(out, m.model, false);
  append_extent(out, m.offset, m.size, m.generation, m.checksum, m.format);
  out += R"(,"cached":)";
  out += m.cached ? "true" : "false";
  if (!m.files.empty()) {
    out += R"(,"files":[)";
    for (std::size_t i = 0; i < m.files.size(); ++i) {
      if (i != 0) out += ',';
      append_file(out, m.files[i]);
    }
    out += ']';
  }
  if (!m.commit.empty()) {
    out += R"(,"commit":)";
    append_string(out, m.commit, false);
  }
  out += '}';
  return out;
}

std::string encode_ok_empty(const json& id) {
  std::string out = R"({"id":)";
  append_id(out, id);
  out += R"(,"ok":true})";
  return out;
}

}  // namespace modelpool::proto
