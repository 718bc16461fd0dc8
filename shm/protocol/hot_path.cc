// File: shm/protocol/hot_path.cc
#include "shm/protocol/hot_path.hpp"

#include <charconv>
#include <limits>

namespace modelpool::proto {
namespace {

using namespace std::string_view_literals;

constexpr int kMaxDepth = 64;  // as decode_request / decode_reply

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

using Value = FlatReply::Value;

// Key equality that calls memcmp only when the lengths and the first bytes
// agree: the hot path's keys mostly differ in their first byte.
bool same_key(std::string_view a, std::string_view b) {
  return a.size() == b.size() && (a.empty() || a[0] == b[0]) && a == b;
}

// The SAX handler behind parse_flat_reply. Depth 1 is the reply object.
class FlatSax {
 public:
  explicit FlatSax(FlatReply& out) : out_(out) {}

  bool null() { return scalar(Value{Value::Kind::kNull}); }
  bool boolean(bool v) {
    Value x{Value::Kind::kBool};
    x.b = v;
    return scalar(std::move(x));
  }
  bool number_integer(json::number_integer_t) { return scalar(Value{Value::Kind::kSigned}); }
  bool number_unsigned(json::number_unsigned_t v) {
    Value x{Value::Kind::kUnsigned};
    x.u = v;
    return scalar(std::move(x));
  }
  bool number_float(json::number_float_t, const std::string&) {
    return scalar(Value{Value::Kind::kFloat});
  }
  bool string(std::string& v) {
    Value x{Value::Kind::kString};
    x.s = std::move(v);
    return scalar(std::move(x));
  }
  // FlatScanner's string value: a view of the payload.
  bool string_view(std::string_view v) {
    Value x{Value::Kind::kString};
    x.s.assign(v);
    return scalar(std::move(x));
  }
  bool binary(json::binary_t&) { return scalar(Value{Value::Kind::kNested}); }

  bool start_object(std::size_t) { return open(true); }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(false); }
  bool end_array() { return close(); }

  bool key(std::string& k) { return key_view(k); }
  bool key_view(std::string_view k) {
    if (depth_ == 1) {
      key_.assign(k);
    } else if (depth_ == 2 && in_error_) {
      error_key_.assign(k);
    }
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    problem_ = std::string("reply is not valid JSON: ") + e.what();
    return false;
  }

  const std::string& problem() const { return problem_; }

 private:
  bool open(bool object) {
    if (++depth_ > kMaxDepth) {
      problem_ = "reply nests JSON deeper than " + std::to_string(kMaxDepth) + " levels";
      return false;
    }
    if (depth_ == 1) {
      if (object) return true;
      problem_ = "reply is not a JSON object";
      return false;
    }
    if (depth_ == 2) {
      const bool error_key = std::string_view(key_) == "error"sv;
      in_error_ = object && error_key;
      if (error_key) {  // a later "error" replaces an earlier one
        out_.error_code.reset();
        out_.error_message.reset();
      }
      record(Value{Value::Kind::kNested});
    }
    return true;
  }

  bool close() {
    if (depth_ == 2) in_error_ = false;
    --depth_;
    return true;
  }

  bool scalar(Value&& v) {
    if (depth_ == 0) {
      problem_ = "reply is not a JSON object";
      return false;
    }
    if (depth_ == 1) {
      record(std::move(v));
    } else if (depth_ == 2 && in_error_ && v.kind == Value::Kind::kString) {
      if (std::string_view(error_key_) == "code"sv) out_.error_code = std::move(v.s);
      if (std::string_view(error_key_) == "message"sv) out_.error_message = std::move(v.s);
    }
    return true;
  }

  void record(Value&& v) {
    // string_view comparisons: a length check, then a compare the compiler
    // inlines (std::string == const char* calls strlen and memcmp).
    const std::string_view key = key_;
    if (key == "id"sv) {
      out_.id = v.kind == Value::Kind::kUnsigned ? std::optional<std::uint64_t>(v.u) : std::nullopt;
    } else if (key == "ok"sv) {
      out_.has_ok = v.kind == Value::Kind::kBool;
      out_.ok = v.b;
    } else if (key == "error"sv && v.kind != Value::Kind::kNested) {
      out_.error_code.reset();  // a later "error" that is not an object replaces it
      out_.error_message.reset();
    }
    for (auto& [k, old] : out_.fields) {
      if (same_key(k, key)) {
        old = std::move(v);
        return;
      }
    }
    out_.fields.emplace_back(std::piecewise_construct, std::forward_as_tuple(key),
                             std::forward_as_tuple(std::move(v)));
  }

  FlatReply& out_;
  int depth_ = 0;
  std::string key_;
  std::string error_key_;
  bool in_error_ = false;
  std::string problem_;
};

// Feeds `sax` a payload that is one flat JSON object -- keys and string
// values of printable ASCII without escapes, unsigned integers, true, false,
// null, JSON whitespace between tokens -- which is what the broker and the
// library write on the hot path. Returns false at the first byte outside
// that subset (valid JSON or not); the caller then starts over with
// nlohmann's parser, which decides everything this does not.
class FlatScanner {
 public:
  explicit FlatScanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  template <class Sax>
  bool feed(Sax& sax) {
    skip_ws();
    if (!eat('{') || !sax.start_object(0)) return false;
    skip_ws();
    if (!eat('}')) {
      for (;;) {
        std::string_view key;
        if (!plain_string(key)) return false;
        skip_ws();
        if (!eat(':')) return false;
        skip_ws();
        if (!sax.key_view(key)) return false;
        if (!value(sax)) return false;
        skip_ws();
        if (eat(',')) {
          skip_ws();
          continue;
        }
        if (eat('}')) break;
        return false;
      }
    }
    sax.end_object();
    skip_ws();
    return p_ == end_;
  }

 private:
  bool eat(char c) {
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }

  void skip_ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  // A view of the payload: plain strings have no escapes to undo.
  bool plain_string(std::string_view& out) {
    if (!eat('"')) return false;
    const char* start = p_;
    for (; p_ != end_; ++p_) {
      const auto u = static_cast<unsigned char>(*p_);
      if (u == '"') {
        out = std::string_view(start, static_cast<std::size_t>(p_ - start));
        ++p_;
        return true;
      }
      if (u < 0x20 || u >= 0x80 || u == '\\') return false;
    }
    return false;
  }

  bool literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() ||
        std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  template <class Sax>
  bool value(Sax& sax) {
    if (p_ == end_) return false;
    const char c = *p_;
    if (c == '"') {
      std::string_view v;
      return plain_string(v) && sax.string_view(v);
    }
    if (c >= '0' && c <= '9') {
      const char* start = p_;
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      if (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;  // a float
      if (*start == '0' && p_ - start > 1) return false;  // leading zero: invalid
      std::uint64_t v = 0;
      auto [end, ec] = std::from_chars(start, p_, v);
      if (ec != std::errc() || end != p_) return false;  // too large for uint64
      return sax.number_unsigned(v);
    }
    if (literal("true")) return sax.boolean(true);
    if (literal("false")) return sax.boolean(false);
    if (literal("null")) return sax.null();
    return false;  // nested, negative, or not JSON
  }

  const char* p_;
  const char* end_;
};

// Reads an ok:true acquire reply with the expected id straight into an
// AcquireReply, for FlatScanner. Refuses (and so sends the caller to the
// general path) anything that path might read differently or report as an
// error: a known key twice, "error", a field of another type, a bad
// checksum, a missing field.
class AcquireSax {
 public:
  AcquireSax(AcquireReply& out, std::uint64_t want_id) : out_(out), want_id_(want_id) {}

  bool start_object(std::size_t) { return true; }
  bool end_object() { return true; }
  bool key_view(std::string_view k) {
    field_ = field_of(k);
    if (field_ == kError) return false;
    if (field_ == kOther) return true;
    const unsigned bit = 1U << field_;
    if ((seen_ & bit) != 0) return false;
    seen_ |= bit;
    return true;
  }
  bool number_unsigned(std::uint64_t v) {
    switch (field_) {
      case kId:
        return v == want_id_;
      case kHandle:
        out_.handle = v;
        return true;
      case kOffset:
        out_.offset = v;
        return true;
      case kSize:
        out_.size = v;
        return true;
      case kGeneration:
        out_.generation = v;
        return true;
      case kOther:
        return true;
      default:
        return false;
    }
  }
  bool string_view(std::string_view v) {
    switch (field_) {
      case kModel:
        out_.model.assign(v);
        return true;
      case kFormat:
        out_.format.assign(v);
        return true;
      case kChecksum: {
        auto sum = checksum_from_hex(v);
        if (!sum) return false;
        out_.checksum = *sum;
        return true;
      }
      case kOther:
        return true;
      default:
        return false;
    }
  }
  bool boolean(bool v) {
    if (field_ == kOk) return v;
    if (field_ == kCached) out_.cached = v;
    return field_ == kCached || field_ == kOther;
  }
  bool null() { return field_ == kOther; }

  bool complete() const { return (seen_ & kRequired) == kRequired; }

 private:
  enum Field : unsigned {
    kId,
    kOk,
    kHandle,
    kModel,
    kOffset,
    kSize,
    kGeneration,
    kChecksum,
    kFormat,
    kCached,
    kError,
    kOther
  };
  static constexpr unsigned kRequired = (1U << kCached) - 1;  // all before kCached

  static Field field_of(std::string_view k) {
    static constexpr std::pair<std::string_view, Field> kNames[] = {{"id", kId},
                                                                    {"ok", kOk},
                                                                    {"handle", kHandle},
                                                                    {"model", kModel},
                                                                    {"offset", kOffset},
                                                                    {"size", kSize},
                                                                    {"generation", kGeneration},
                                                                    {"checksum", kChecksum},
                                                                    {"format", kFormat},
                                                                    {"cached", kCached},
                                                                    {"error", kError}};
    for (const auto& [name, f] : kNames) {
      if (same_key(name, k)) return f;
    }
    return kOther;
  }

  AcquireReply& out_;
  std::uint64_t want_id_;
  Field field_ = kOther;
  unsigned seen_ = 0;
};

// Collects the top-level scalars an acquire or release may hold, for
// FlatScanner: views of the payload, no allocation. Refuses a known key
// twice (the general path lets the last one win) so that what it accepts
// reads exactly as the general path reads it.
class HotRequestSax {
 public:
  enum Field : unsigned { kOp, kId, kModel, kWaitMs, kHandle, kReply, kFields, kOther = kFields };
  struct Slot {
    bool present = false;
    Value::Kind kind = Value::Kind::kNull;
    std::uint64_t u = 0;
    bool b = false;
    std::string_view s;
  };

  bool start_object(std::size_t) { return true; }
  bool end_object() { return true; }
  bool key_view(std::string_view k) {
    static constexpr std::pair<std::string_view, Field> kNames[] = {
        {"op", kOp},          {"id", kId},         {"model", kModel},
        {"wait_ms", kWaitMs}, {"handle", kHandle}, {"reply", kReply}};
    field_ = kOther;
    for (const auto& [name, f] : kNames) {
      if (same_key(name, k)) field_ = f;
    }
    if (field_ == kOther) return true;
    if (slots_[field_].present) return false;
    slots_[field_].present = true;
    return true;
  }
  bool number_unsigned(std::uint64_t v) { return put(Value::Kind::kUnsigned).u = v, true; }
  bool string_view(std::string_view v) { return put(Value::Kind::kString).s = v, true; }
  bool boolean(bool v) { return put(Value::Kind::kBool).b = v, true; }
  bool null() { return put(Value::Kind::kNull), true; }

  const Slot& operator[](Field f) const { return slots_[f]; }

 private:
  Slot& put(Value::Kind kind) {
    Slot& slot = field_ == kOther ? scratch_ : slots_[field_];
    slot.kind = kind;
    return slot;
  }

  Field field_ = kOther;
  Slot slots_[kFields];
  Slot scratch_;
};

Status missing(std::string_view key) {
  return error(ErrorCode::kProtocol, "acquire reply: missing field \"" + std::string(key) + "\"");
}

Status wrong_type(std::string_view key, std::string_view want) {
  return error(ErrorCode::kProtocol,
               "acquire reply: field \"" + std::string(key) + "\" must be " + std::string(want));
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
  out.reserve(192 + m.model.size());
  out += R"({"id":)";
  append_id(out, id);
  out += R"(,"ok":true,"handle":)";
  append_uint(out, m.handle);
  out += R"(,"model":)";
  append_string(out, m.model, false);
  out += R"(,"offset":)";
  append_uint(out, m.offset);
  out += R"(,"size":)";
  append_uint(out, m.size);
  out += R"(,"generation":)";
  append_uint(out, m.generation);
  out += R"(,"checksum":")";
  append_checksum_hex(out, m.checksum);
  out += R"(","format":)";
  append_string(out, m.format, false);
  out += R"(,"cached":)";
  out += m.cached ? "true" : "false";
  out += '}';
  return out;
}

std::string encode_ok_empty(const json& id) {
  std::string out = R"({"id":)";
  append_id(out, id);
  out += R"(,"ok":true})";
  return out;
}

const FlatReply::Value* FlatReply::find(std::string_view key) const {
  for (const auto& [k, v] : fields) {
    if (same_key(k, key)) return &v;
  }
  return nullptr;
}

Result<FlatReply> parse_flat_reply(std::string_view payload) {
  {
    FlatReply out;
    out.fields.reserve(12);  // an acquire reply's, without regrowing
    FlatSax sax(out);
    if (FlatScanner(payload).feed(sax)) return out;
  }
  return parse_flat_reply_reference(payload);
}

Result<FlatReply> parse_flat_reply_reference(std::string_view payload) {
  FlatReply out;
  FlatSax sax(out);
  const bool ok = json::sax_parse(payload.begin(), payload.end(), &sax,
                                  nlohmann::detail::input_format_t::json, true);
  if (!ok) {
    return error(ErrorCode::kProtocol,
                 sax.problem().empty() ? std::string("reply is not valid JSON") : sax.problem());
  }
  return out;
}

namespace {

// parse_hot_request for what FlatScanner does not read, or a known key twice.
std::optional<HotRequest> parse_hot_request_general(std::string_view payload) {
  // The reply reader keeps every top-level scalar, which is all an acquire
  // or release holds; nested values are recorded as such and refused below.
  auto flat = parse_flat_reply(payload);
  if (!flat.ok()) return std::nullopt;
  using Kind = Value::Kind;
  const Value* op = flat->find("op");
  if (op == nullptr || op->kind != Kind::kString) return std::nullopt;
  HotRequest r;
  if (const Value* id = flat->find("id")) {
    if (id->kind != Kind::kUnsigned) return std::nullopt;
    r.id = id->u;
  }
  if (op->s == "acquire") {
    const Value* model = flat->find("model");
    if (model == nullptr || model->kind != Kind::kString) return std::nullopt;
    r.acquire.model = model->s;
    if (const Value* wait = flat->find("wait_ms")) {
      if (wait->kind != Kind::kUnsigned) return std::nullopt;
      r.acquire.wait_ms = wait->u;
    }
    return r;
  }
  if (op->s == "release") {
    r.op = HotRequest::Op::kRelease;
    const Value* handle = flat->find("handle");
    if (handle == nullptr || handle->kind != Kind::kUnsigned) return std::nullopt;
    r.release.handle = handle->u;
    if (const Value* reply = flat->find("reply")) {
      if (reply->kind != Kind::kBool) return std::nullopt;
      r.release.reply = reply->b;
    }
    return r;
  }
  return std::nullopt;
}

}  // namespace

std::optional<HotRequest> parse_hot_request(std::string_view payload) {
  HotRequestSax sax;
  if (!FlatScanner(payload).feed(sax)) return parse_hot_request_general(payload);
  // The same decisions as parse_hot_request_general, on the collected slots.
  using Kind = Value::Kind;
  using F = HotRequestSax::Field;
  const auto& op = sax[F::kOp];
  if (!op.present || op.kind != Kind::kString) return std::nullopt;
  HotRequest r;
  if (const auto& id = sax[F::kId]; id.present) {
    if (id.kind != Kind::kUnsigned) return std::nullopt;
    r.id = id.u;
  }
  if (op.s == "acquire"sv) {
    const auto& model = sax[F::kModel];
    if (!model.present || model.kind != Kind::kString) return std::nullopt;
    r.acquire.model.assign(model.s);
    if (const auto& wait = sax[F::kWaitMs]; wait.present) {
      if (wait.kind != Kind::kUnsigned) return std::nullopt;
      r.acquire.wait_ms = wait.u;
    }
    return r;
  }
  if (op.s == "release"sv) {
    r.op = HotRequest::Op::kRelease;
    const auto& handle = sax[F::kHandle];
    if (!handle.present || handle.kind != Kind::kUnsigned) return std::nullopt;
    r.release.handle = handle.u;
    if (const auto& reply = sax[F::kReply]; reply.present) {
      if (reply.kind != Kind::kBool) return std::nullopt;
      r.release.reply = reply.b;
    }
    return r;
  }
  return std::nullopt;
}

std::optional<AcquireReply> parse_acquire_reply(std::string_view payload, std::uint64_t want_id) {
  AcquireReply out;
  AcquireSax sax(out, want_id);
  if (!FlatScanner(payload).feed(sax) || !sax.complete()) return std::nullopt;
  return out;
}

Status flat_reply_status(const FlatReply& r) {
  if (!r.has_ok) return error(ErrorCode::kProtocol, "reply has no boolean \"ok\"");
  if (r.ok) return {};
  if (!r.error_code) return error(ErrorCode::kProtocol, "error reply has no string \"error.code\"");
  auto c = error_code_from_string(*r.error_code);
  std::string text = r.error_message.value_or("");
  if (!c || *c == ErrorCode::kOk) {
    return error(ErrorCode::kProtocol, "unknown error code \"" + *r.error_code + "\": " + text);
  }
  return error(*c, std::move(text));
}

Result<AcquireReply> acquire_reply_from(const FlatReply& r) {
  AcquireReply m;
  struct UintField {
    std::string_view key;
    std::uint64_t* into;
  };
  for (const UintField& f : {UintField{"handle", &m.handle}, UintField{"offset", &m.offset},
                             UintField{"size", &m.size}, UintField{"generation", &m.generation}}) {
    const Value* v = r.find(f.key);
    if (v == nullptr) return missing(f.key);
    if (v->kind != Value::Kind::kUnsigned) return wrong_type(f.key, "a non-negative integer");
    *f.into = v->u;
  }
  struct StringField {
    std::string_view key;
    const std::string** into;
  };
  const std::string* model = nullptr;
  const std::string* checksum = nullptr;
  const std::string* format = nullptr;
  for (const StringField& f : {StringField{"model", &model}, StringField{"checksum", &checksum},
                               StringField{"format", &format}}) {
    const Value* v = r.find(f.key);
    if (v == nullptr) return missing(f.key);
    if (v->kind != Value::Kind::kString) return wrong_type(f.key, "a string");
    *f.into = &v->s;
  }
  m.model = *model;
  m.format = *format;
  auto sum = checksum_from_hex(*checksum);
  if (!sum) return error(ErrorCode::kProtocol, "acquire reply: bad checksum \"" + *checksum + "\"");
  m.checksum = *sum;
  const Value* cached = r.find("cached"sv);
  m.cached = cached != nullptr && cached->kind == Value::Kind::kBool && cached->b;
  return m;
}

}  // namespace modelpool::proto
