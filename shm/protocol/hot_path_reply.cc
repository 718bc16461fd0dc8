// File: shm/protocol/hot_path_reply.cc
//
// The hot path's reply reader (hot_path.hpp): the flat reader every reply
// goes through, and the acquire reply's fields from it.
#include <iterator>
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
    } else if (depth_ == 3 && in_file_) {
      file_key_.assign(k);
    }
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    problem_ = std::string("reply is not valid JSON: ") + e.what();
    return false;
  }

  const std::string& problem() const { return problem_; }

 private:
  // Depths: 1 the reply, 2 a top-level value ("error", "files"), 3 an
  // element of "files", 4 a value inside that element.
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
      const std::string_view key = key_;
      const bool error_key = key == "error"sv;
      in_error_ = object && error_key;
      if (error_key) {  // a later "error" replaces an earlier one
        out_.error_code.reset();
        out_.error_message.reset();
      }
      if (key == "files"sv) {  // a later "files" replaces an earlier one
        out_.files.clear();
        out_.files_listed = !object;
        in_files_ = !object;
      }
      record(Value{Value::Kind::kNested});
    } else if (depth_ == 3 && in_files_) {
      file_element(object);
    } else if (depth_ == 4 && in_file_) {
      out_.files.back().set(file_key_, Value{Value::Kind::kNested});
    }
    return true;
  }

  bool close() {
    if (depth_ == 2) in_error_ = in_files_ = false;
    if (depth_ == 3) in_file_ = false;
    --depth_;
    return true;
  }

  // An element of "files" starts: an object is kept (up to the limit),
  // anything else makes the list invalid.
  void file_element(bool object) {
    if (object && out_.files_listed && out_.files.size() < kMaxReplyFiles) {
      out_.files.emplace_back();
      in_file_ = true;
      return;
    }
    out_.files.clear();
    out_.files_listed = false;
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
    } else if (depth_ == 2 && in_files_) {
      file_element(false);
    } else if (depth_ == 3 && in_file_) {
      out_.files.back().set(file_key_, std::move(v));
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
    } else if (key == "files"sv && v.kind != Value::Kind::kNested) {
      out_.files.clear();  // and a "files" that is not a list
      out_.files_listed = false;
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
  std::string file_key_;
  bool in_error_ = false;
  bool in_files_ = false;  // in the top-level "files" array
  bool in_file_ = false;   // in one of its objects
  std::string problem_;
};

Status missing(std::string_view key) {
  return error(ErrorCode::kProtocol, "acquire reply: missing field \"" + std::string(key) + "\"");
}

Status wrong_type(std::string_view key, std::string_view want) {
  return error(ErrorCode::kProtocol,
               "acquire reply: field \"" + std::string(key) + "\" must be " + std::string(want));
}

Status file_error(std::string_view what) {
  return error(ErrorCode::kProtocol, "acquire reply: file: " + std::string(what));
}

// One element of "files", checked as decode_files (messages.cc) checks it.
Result<FileRef> file_from(const FlatReply::Fields& f) {
  FileRef out;
  struct Field {
    std::string_view key;
    Value::Kind kind;
    std::string_view want;
  };
  static constexpr Field kFields[] = {
      {"name", Value::Kind::kString, "a string"},
      {"offset", Value::Kind::kUnsigned, "a non-negative integer"},
      {"size", Value::Kind::kUnsigned, "a non-negative integer"},
      {"generation", Value::Kind::kUnsigned, "a non-negative integer"},
      {"checksum", Value::Kind::kString, "a string"},
      {"format", Value::Kind::kString, "a string"}};
  const Value* v[std::size(kFields)] = {};
  for (std::size_t i = 0; i < std::size(kFields); ++i) {
    v[i] = f.find(kFields[i].key);
    if (v[i] == nullptr) {
      return file_error("missing field \"" + std::string(kFields[i].key) + "\"");
    }
    if (v[i]->kind != kFields[i].kind) {
      return file_error("field \"" + std::string(kFields[i].key) + "\" must be " +
                        std::string(kFields[i].want));
    }
  }
  auto sum = checksum_from_hex(v[4]->s);
  if (!sum) return file_error("bad checksum");
  out.name = v[0]->s;
  out.offset = v[1]->u;
  out.size = v[2]->u;
  out.generation = v[3]->u;
  out.checksum = *sum;
  out.format = v[5]->s;
  const Value* weights = f.find("weights"sv);
  out.weights = weights != nullptr && weights->kind == Value::Kind::kBool && weights->b;
  return out;
}

// The reply's "files", which it has: a list of 1 to kMaxReplyFiles files.
Result<std::vector<FileRef>> files_from(const FlatReply& r) {
  if (!r.files_listed || r.files.empty()) {
    return error(ErrorCode::kProtocol, "acquire reply: \"files\" is not a list of 1 to " +
                                           std::to_string(kMaxReplyFiles) + " files");
  }
  std::vector<FileRef> out;
  out.reserve(r.files.size());
  for (const FlatReply::Fields& f : r.files) {
    auto file = file_from(f);
    if (!file.ok()) return file.status();
    out.push_back(std::move(file).value());
  }
  return out;
}

}  // namespace

const FlatReply::Value* FlatReply::find(std::string_view key) const {
  for (const auto& [k, v] : fields) {
    if (same_key(k, key)) return &v;
  }
  return nullptr;
}

const FlatReply::Value* FlatReply::Fields::find(std::string_view key) const {
  for (const auto& [k, v] : items) {
    if (same_key(k, key)) return &v;
  }
  return nullptr;
}

void FlatReply::Fields::set(std::string_view key, Value&& v) {
  for (auto& [k, old] : items) {
    if (same_key(k, key)) {
      old = std::move(v);
      return;
    }
  }
  if (items.empty()) items.reserve(8);  // a file's seven, without regrowing
  items.emplace_back(std::piecewise_construct, std::forward_as_tuple(key),
                     std::forward_as_tuple(std::move(v)));
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
  if (r.find("files"sv) != nullptr) {
    auto files = files_from(r);
    if (!files.ok()) return files.status();
    m.files = std::move(files).value();
  }
  if (const Value* commit = r.find("commit"sv); commit && commit->kind == Value::Kind::kString) {
    m.commit = commit->s;
  }
  return m;
}

}  // namespace modelpool::proto
