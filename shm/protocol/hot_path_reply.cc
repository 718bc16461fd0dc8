// File: shm/protocol/hot_path_reply.cc
//
// The hot path's reply reader (hot_path.hpp): the flat reader every reply
// goes through, and the acquire reply's fields from it.
#include <string>

#include "shm/protocol/flat_scanner.hpp"
#include "shm/protocol/hot_path.hpp"

namespace modelpool::proto {
namespace {

using namespace std::string_view_literals;
using flat::FlatScanner;
using flat::same_key;
using Value = FlatReply::Value;

constexpr int kMaxDepth = 64;  // as decode_request / decode_reply

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

Status missing(std::string_view key) {
  return error(ErrorCode::kProtocol, "acquire reply: missing field \"" + std::string(key) + "\"");
}

Status wrong_type(std::string_view key, std::string_view want) {
  return error(ErrorCode::kProtocol,
               "acquire reply: field \"" + std::string(key) + "\" must be " + std::string(want));
}

}  // namespace

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
