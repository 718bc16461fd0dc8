// File: shm/format/strict_json.cc
//
// Two passes: a SAX pass that only checks (duplicate keys, depth; the SAX
// parser itself is iterative, so depth costs it nothing), then nlohmann's DOM
// parse of text already known to be good. The second pass keeps this file
// free of DOM-building code; headers are small next to the tensors they
// describe.
#include "shm/format/strict_json.hpp"

#include <string>
#include <unordered_set>
#include <vector>

#include "shm/format/limits.hpp"
#include "shm/format/reader_util.hpp"

namespace modelpool::format {
namespace {

using json = nlohmann::json;

class Checker : public nlohmann::json_sax<json> {
 public:
  bool null() override { return true; }
  bool boolean(bool /*val*/) override { return true; }
  bool number_integer(number_integer_t /*val*/) override { return true; }
  bool number_unsigned(number_unsigned_t /*val*/) override { return true; }
  bool number_float(number_float_t /*val*/, const string_t& /*s*/) override { return true; }
  bool string(string_t& /*val*/) override { return true; }
  bool binary(binary_t& /*val*/) override { return true; }
  bool start_object(std::size_t /*elements*/) override {
    keys_.emplace_back();
    return enter();
  }
  bool key(string_t& k) override {
    if (keys_.back().insert(k).second) return true;
    error_ = "duplicate key " + in_quotes(k);
    return false;
  }
  bool end_object() override {
    keys_.pop_back();
    --depth_;
    return true;
  }
  bool start_array(std::size_t /*elements*/) override { return enter(); }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex) override {
    error_ = "not valid JSON: " + printable(ex.what(), 200);
    return false;
  }

  const std::string& error() const { return error_; }

 private:
  bool enter() {
    if (++depth_ <= kMaxJsonDepth) return true;
    error_ = "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
    return false;
  }

  int depth_ = 0;
  std::vector<std::unordered_set<std::string>> keys_;  // one set per open object
  std::string error_;
};

}  // namespace

Result<json> parse_strict_json(std::string_view text) {
  try {
    Checker checker;
    if (!json::sax_parse(text, &checker)) {
      return error(ErrorCode::kLoadFailed,
                   checker.error().empty() ? "not valid JSON" : checker.error());
    }
    json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return error(ErrorCode::kLoadFailed, "not valid JSON");
    return doc;
  } catch (const std::exception& e) {  // bad_alloc, or a parser surprise
    return error(ErrorCode::kLoadFailed, "cannot parse JSON: " + printable(e.what(), 200));
  }
}

}  // namespace modelpool::format
