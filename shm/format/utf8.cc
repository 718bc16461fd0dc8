// File: shm/format/utf8.cc
//
// The decoder follows the well-formed byte sequences table of Unicode 15,
// section 3.9 (table 3-7): the second byte's range depends on the first.
#include "shm/format/utf8.hpp"

#include <cstddef>

namespace modelpool::format {
namespace {

bool in(unsigned char c, unsigned char lo, unsigned char hi) { return c >= lo && c <= hi; }

// Length of the well-formed sequence at s[i], or 0 when it is ill-formed.
std::size_t sequence_length(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  std::size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xbf;
  if (in(b0, 0xc2, 0xdf)) {
    len = 2;
  } else if (in(b0, 0xe0, 0xef)) {
    len = 3;
    if (b0 == 0xe0) lo = 0xa0;  // no overlong
    if (b0 == 0xed) hi = 0x9f;  // no surrogates
  } else if (in(b0, 0xf0, 0xf4)) {
    len = 4;
    if (b0 == 0xf0) lo = 0x90;  // no overlong
    if (b0 == 0xf4) hi = 0x8f;  // <= U+10FFFF
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  if (!in(static_cast<unsigned char>(s[i + 1]), lo, hi)) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if (!in(static_cast<unsigned char>(s[i + k]), 0x80, 0xbf)) return 0;
  }
  return len;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t n = sequence_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

}  // namespace modelpool::format
