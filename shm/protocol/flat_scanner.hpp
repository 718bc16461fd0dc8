// File: shm/protocol/flat_scanner.hpp
//
// Internal to shm/protocol (hot_path_reply.cc, hot_path_request.cc): the
// scanner of the plain JSON subset the hot path writes, and the key compare
// its readers share.
#ifndef MODELPOOL_SHM_PROTOCOL_FLAT_SCANNER_HPP_
#define MODELPOOL_SHM_PROTOCOL_FLAT_SCANNER_HPP_

#include <charconv>
#include <cstdint>
#include <string_view>
#include <system_error>

namespace modelpool::proto::flat {

// Key equality that calls memcmp only when the lengths and the first bytes
// agree: the hot path's keys mostly differ in their first byte.
inline bool same_key(std::string_view a, std::string_view b) {
  return a.size() == b.size() && (a.empty() || a[0] == b[0]) && a == b;
}

// Feeds `sax` a payload that is one JSON object of the plain subset -- keys
// and string values of printable ASCII without escapes, unsigned integers,
// true, false, null, objects and arrays of these nested at most kMaxDepth
// deep, JSON whitespace between tokens -- which is what the broker and the
// library write on the hot path (an acquire reply's "files" list included).
// Returns false at the first byte outside that subset (valid JSON or not),
// or when `sax` refuses an event; the caller then starts over with
// nlohmann's parser, which decides everything this does not.
class FlatScanner {
 public:
  static constexpr int kMaxDepth = 64;

  explicit FlatScanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  template <class Sax>
  bool feed(Sax& sax) {
    skip_ws();
    if (p_ == end_ || *p_ != '{' || !object(sax)) return false;
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

  // At '{': the object, its closing brace included.
  template <class Sax>
  bool object(Sax& sax) {
    ++p_;
    if (++depth_ > kMaxDepth || !sax.start_object(0)) return false;
    skip_ws();
    if (!eat('}')) {
      for (;;) {
        std::string_view key;
        if (!plain_string(key)) return false;
        skip_ws();
        if (!eat(':')) return false;
        skip_ws();
        if (!sax.key_view(key) || !value(sax)) return false;
        skip_ws();
        if (eat(',')) {
          skip_ws();
          continue;
        }
        if (eat('}')) break;
        return false;
      }
    }
    --depth_;
    return sax.end_object();
  }

  // At '[': the array, its closing bracket included.
  template <class Sax>
  bool array(Sax& sax) {
    ++p_;
    if (++depth_ > kMaxDepth || !sax.start_array(0)) return false;
    skip_ws();
    if (!eat(']')) {
      for (;;) {
        if (!value(sax)) return false;
        skip_ws();
        if (eat(',')) {
          skip_ws();
          continue;
        }
        if (eat(']')) break;
        return false;
      }
    }
    --depth_;
    return sax.end_array();
  }

  template <class Sax>
  bool value(Sax& sax) {
    if (p_ == end_) return false;
    const char c = *p_;
    if (c == '"') {
      std::string_view v;
      return plain_string(v) && sax.string_view(v);
    }
    if (c == '{') return object(sax);
    if (c == '[') return array(sax);
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
    return false;  // negative, or not JSON
  }

  const char* p_;
  const char* end_;
  int depth_ = 0;
};

}  // namespace modelpool::proto::flat

#endif  // MODELPOOL_SHM_PROTOCOL_FLAT_SCANNER_HPP_
