// File: shm/protocol/messages.cc
#include "shm/protocol/messages.hpp"

#include <charconv>

#include "shm/protocol/hot_path.hpp"  // kMaxReplyFiles

namespace modelpool::proto {
namespace {

Status field_error(std::string_view key, std::string_view want) {
  return error(ErrorCode::kBadRequest,
               "field \"" + std::string(key) + "\" must be " + std::string(want));
}

// Nesting deeper than this is refused before parsing: nlohmann-json parses,
// copies and destroys values recursively, so a 64 KiB frame of nested
// brackets could otherwise exhaust the stack.
constexpr int kMaxDepth = 64;

bool too_deep(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

const json* find(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

}  // namespace

Result<Request> decode_request(std::string_view payload) {
  if (too_deep(payload)) {
    return error(ErrorCode::kBadRequest,
                 "frame nests JSON deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  json doc;
  try {
    doc = json::parse(payload);
  } catch (const json::exception& e) {
    return error(ErrorCode::kBadRequest, std::string("frame is not valid JSON: ") + e.what());
  }
  if (!doc.is_object()) return error(ErrorCode::kBadRequest, "frame is not a JSON object");
  Request r;
  if (const json* id = find(doc, "id")) r.id = *id;
  const json* op = find(doc, "op");
  if (op == nullptr) return error(ErrorCode::kBadRequest, "missing field \"op\"");
  if (!op->is_string()) return field_error("op", "a string");
  r.op = op->get<std::string>();
  r.body = std::move(doc);
  return r;
}

std::string encode_request(std::string_view op, const json& id, json fields) {
  if (!fields.is_object()) fields = json::object();
  fields["op"] = op;
  if (!id.is_null()) fields["id"] = id;
  return fields.dump();
}

Result<Reply> decode_reply(std::string_view payload) {
  if (too_deep(payload)) {
    return error(ErrorCode::kProtocol,
                 "reply nests JSON deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  json doc;
  try {
    doc = json::parse(payload);
  } catch (const json::exception& e) {
    return error(ErrorCode::kProtocol, std::string("reply is not valid JSON: ") + e.what());
  }
  const json* ok = find(doc, "ok");
  if (ok == nullptr || !ok->is_boolean()) {
    return error(ErrorCode::kProtocol, "reply has no boolean \"ok\"");
  }
  if (!ok->get<bool>()) {
    const json* err = find(doc, "error");
    const json* code = err ? find(*err, "code") : nullptr;
    const json* msg = err ? find(*err, "message") : nullptr;
    if (code == nullptr || !code->is_string()) {
      return error(ErrorCode::kProtocol, "error reply has no string \"error.code\"");
    }
    auto c = error_code_from_string(code->get<std::string>());
    std::string text = (msg && msg->is_string()) ? msg->get<std::string>() : "";
    if (!c || *c == ErrorCode::kOk) {
      return error(ErrorCode::kProtocol,
                   "unknown error code \"" + code->get<std::string>() + "\": " + text);
    }
    return error(*c, std::move(text));
  }
  Reply r;
  if (const json* id = find(doc, "id")) r.id = *id;
  r.body = std::move(doc);
  return r;
}

std::string encode_ok(const json& id, json fields) {
  if (!fields.is_object()) fields = json::object();
  fields["id"] = id;
  fields["ok"] = true;
  return fields.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode_error(const json& id, const Status& status) {
  json doc = {
      {"id", id},
      {"ok", false},
      {"error", {{"code", std::string(to_string(status.code()))}, {"message", status.message()}}}};
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::string> get_string(const json& obj, std::string_view key) {
  const json* v = find(obj, key);
  if (v == nullptr)
    return error(ErrorCode::kBadRequest, "missing field \"" + std::string(key) + "\"");
  if (!v->is_string()) return field_error(key, "a string");
  return v->get<std::string>();
}

Result<std::uint64_t> get_uint(const json& obj, std::string_view key) {
  const json* v = find(obj, key);
  if (v == nullptr)
    return error(ErrorCode::kBadRequest, "missing field \"" + std::string(key) + "\"");
  if (!v->is_number_unsigned()) return field_error(key, "a non-negative integer");
  return v->get<std::uint64_t>();
}

Result<std::optional<std::uint64_t>> get_opt_uint(const json& obj, std::string_view key) {
  const json* v = find(obj, key);
  if (v == nullptr || v->is_null()) return std::optional<std::uint64_t>{};
  if (!v->is_number_unsigned()) return field_error(key, "a non-negative integer");
  return std::optional<std::uint64_t>{v->get<std::uint64_t>()};
}

Result<std::optional<bool>> get_opt_bool(const json& obj, std::string_view key) {
  const json* v = find(obj, key);
  if (v == nullptr || v->is_null()) return std::optional<bool>{};
  if (!v->is_boolean()) return field_error(key, "a boolean");
  return std::optional<bool>{v->get<bool>()};
}

void append_checksum_hex(std::string& out, std::uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  char buf[16];
  for (int i = 15; i >= 0; --i, v >>= 4) buf[i] = kDigits[v & 0xf];
  out.append(buf, sizeof buf);
}

std::string checksum_to_hex(std::uint64_t v) {
  std::string out;
  append_checksum_hex(out, v);
  return out;
}

std::optional<std::uint64_t> checksum_from_hex(std::string_view s) {
  if (s.size() != 16) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// ---- worker ops ----------------------------------------------------------

json to_json(const HelloReply& m) {
  return {{"proto", m.proto},
          {"pool", m.pool},
          {"segment_path", m.segment_path},
          {"segment_size", m.segment_size},
          {"page_size", m.page_size}};
}

Result<HelloReply> decode_hello_reply(const json& body) {
  HelloReply m;
  auto proto = get_uint(body, "proto");
  auto pool = get_string(body, "pool");
  auto path = get_string(body, "segment_path");
  auto size = get_uint(body, "segment_size");
  auto page = get_opt_uint(body, "page_size");
  for (const Status* s :
       {&proto.status(), &pool.status(), &path.status(), &size.status(), &page.status()}) {
    if (!s->ok()) return error(ErrorCode::kProtocol, "hello reply: " + s->message());
  }
  m.proto = static_cast<int>(*proto);
  m.pool = *pool;
  m.segment_path = *path;
  m.segment_size = *size;
  m.page_size = page->value_or(4096);
  return m;
}

json to_json(const AcquireRequest& m) {
  json j = {{"model", m.model}};
  if (m.wait_ms) j["wait_ms"] = *m.wait_ms;
  return j;
}

Result<AcquireRequest> decode_acquire_request(const json& body) {
  auto model = get_string(body, "model");
  if (!model.ok()) return model.status();
  auto wait = get_opt_uint(body, "wait_ms");
  if (!wait.ok()) return wait.status();
  return AcquireRequest{*model, *wait};
}

json to_json(const AcquireReply& m) {
  json j = {{"handle", m.handle},         {"model", m.model},
            {"offset", m.offset},         {"size", m.size},
            {"generation", m.generation}, {"checksum", checksum_to_hex(m.checksum)},
            {"format", m.format},         {"cached", m.cached}};
  if (!m.files.empty()) {
    json files = json::array();
    for (const FileRef& f : m.files) {
      files.push_back({{"name", f.name},
                       {"offset", f.offset},
                       {"size", f.size},
                       {"generation", f.generation},
                       {"checksum", checksum_to_hex(f.checksum)},
                       {"format", f.format},
                       {"weights", f.weights}});
    }
    j["files"] = std::move(files);
  }
  if (!m.commit.empty()) j["commit"] = m.commit;
  return j;
}

namespace {

Result<std::vector<FileRef>> decode_files(const json& body) {
  std::vector<FileRef> out;
  auto it = body.find("files");
  if (it == body.end()) return out;
  if (!it->is_array() || it->empty() || it->size() > kMaxReplyFiles) {
    return error(ErrorCode::kProtocol, "acquire reply: \"files\" is not a list of 1 to " +
                                           std::to_string(kMaxReplyFiles) + " files");
  }
  for (const json& f : *it) {
    if (!f.is_object())
      return error(ErrorCode::kProtocol, "acquire reply: a file is not an object");
    FileRef r;
    auto name = get_string(f, "name");
    auto offset = get_uint(f, "offset");
    auto size = get_uint(f, "size");
    auto gen = get_uint(f, "generation");
    auto sum = get_string(f, "checksum");
    auto format = get_string(f, "format");
    for (const Status* s : {&name.status(), &offset.status(), &size.status(), &gen.status(),
                            &sum.status(), &format.status()}) {
      if (!s->ok()) return error(ErrorCode::kProtocol, "acquire reply: file: " + s->message());
    }
    auto checksum = checksum_from_hex(*sum);
    if (!checksum) return error(ErrorCode::kProtocol, "acquire reply: file: bad checksum");
    auto weights = get_opt_bool(f, "weights");
    r.name = *name;
    r.offset = *offset;
    r.size = *size;
    r.generation = *gen;
    r.checksum = *checksum;
    r.format = *format;
    r.weights = weights.ok() && weights->value_or(false);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

Result<AcquireReply> decode_acquire_reply(const json& body) {
  AcquireReply m;
  auto handle = get_uint(body, "handle");
  auto model = get_string(body, "model");
  auto offset = get_uint(body, "offset");
  auto size = get_uint(body, "size");
  auto gen = get_uint(body, "generation");
  auto sum = get_string(body, "checksum");
  auto format = get_string(body, "format");
  for (const Status* s : {&handle.status(), &model.status(), &offset.status(), &size.status(),
                          &gen.status(), &sum.status(), &format.status()}) {
    if (!s->ok()) return error(ErrorCode::kProtocol, "acquire reply: " + s->message());
  }
  auto cached = get_opt_bool(body, "cached");
  auto checksum = checksum_from_hex(*sum);
  if (!checksum) return error(ErrorCode::kProtocol, "acquire reply: bad checksum \"" + *sum + "\"");
  m.handle = *handle;
  m.model = *model;
  m.offset = *offset;
  m.size = *size;
  m.generation = *gen;
  m.checksum = *checksum;
  m.format = *format;
  m.cached = cached.ok() && cached->value_or(false);
  auto files = decode_files(body);
  if (!files.ok()) return files.status();
  m.files = std::move(files).value();
  if (auto c = body.find("commit"); c != body.end() && c->is_string()) m.commit = *c;
  return m;
}

json to_json(const ReleaseRequest& m) {
  json j = {{"handle", m.handle}};
  if (!m.reply) j["reply"] = false;
  return j;
}

Result<ReleaseRequest> decode_release_request(const json& body) {
  auto handle = get_uint(body, "handle");
  if (!handle.ok()) return handle.status();
  auto reply = get_opt_bool(body, "reply");
  if (!reply.ok()) return reply.status();
  return ReleaseRequest{*handle, reply->value_or(true)};
}

json to_json(const ModelRequest& m) {
  json j = {{"model", m.model}};
  if (m.pin) j["pin"] = true;
  return j;
}

Result<ModelRequest> decode_model_request(const json& body) {
  auto model = get_string(body, "model");
  if (!model.ok()) return model.status();
  auto pin = get_opt_bool(body, "pin");
  if (!pin.ok()) return pin.status();
  return ModelRequest{*model, pin->value_or(false)};
}

}  // namespace modelpool::proto
