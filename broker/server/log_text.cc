// File: broker/server/log_text.cc
#include "broker/server/log_text.hpp"

namespace modelpool::broker {

std::string log_text(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::size_t keep = text.size() < kMaxLogText ? text.size() : kMaxLogText;
  std::string out;
  out.reserve(keep + 16);
  for (std::size_t i = 0; i < keep; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (keep < text.size()) out += "...[+" + std::to_string(text.size() - keep) + " bytes]";
  return out;
}

}  // namespace modelpool::broker
