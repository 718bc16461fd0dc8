// File: shm/format/reader_util.hpp
//
// Small tools the format readers share (internal to shm/format): a bounds-
// checked little-endian cursor over the file, overflow-checked arithmetic,
// and `printable`, which turns untrusted bytes into a short ASCII string fit
// for an error message (messages travel in JSON replies, so they must stay
// valid UTF-8 whatever the file holds).
#ifndef MODELPOOL_SHM_FORMAT_READER_UTIL_HPP_
#define MODELPOOL_SHM_FORMAT_READER_UTIL_HPP_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "shm/status.hpp"

namespace modelpool::format {

inline bool checked_add(std::uint64_t a, std::uint64_t b, std::uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
// `v` rounded up to a multiple of `a` (a power of two); false on overflow.
inline bool checked_align_up(std::uint64_t v, std::uint64_t a, std::uint64_t* out) {
  if (!checked_add(v, a - 1, out)) return false;
  *out &= ~(a - 1);
  return true;
}

// At most `max` bytes of `s`, printable ASCII kept, everything else as \xNN,
// "..." appended when cut.
std::string printable(std::string_view s, std::size_t max = 64);

// `"name"` quoted for a message.
inline std::string in_quotes(std::string_view s) { return "\"" + printable(s) + "\""; }

// A little-endian reader that never reads past the end of its bytes. Every
// read either succeeds completely or returns false and leaves the position
// unchanged.
class ByteCursor {
 public:
  explicit ByteCursor(std::span<const std::byte> bytes) : bytes_(bytes) {}

  std::uint64_t pos() const { return pos_; }
  std::uint64_t size() const { return bytes_.size(); }
  std::uint64_t remaining() const { return bytes_.size() - pos_; }

  template <typename T>
  bool read(T* out) {
    static_assert(std::is_integral_v<T>);
    if (remaining() < sizeof(T)) return false;
    std::make_unsigned_t<T> v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      v |= static_cast<std::make_unsigned_t<T>>(
          static_cast<std::make_unsigned_t<T>>(bytes_[pos_ + i]) << (8 * i));
    }
    *out = static_cast<T>(v);
    pos_ += sizeof(T);
    return true;
  }

  bool read_bytes(std::uint64_t n, std::string_view* out) {
    if (remaining() < n) return false;
    *out = {reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<std::size_t>(n)};
    pos_ += n;
    return true;
  }

 private:
  std::span<const std::byte> bytes_;
  std::uint64_t pos_ = 0;
};

}  // namespace modelpool::format

#endif  // MODELPOOL_SHM_FORMAT_READER_UTIL_HPP_
