// File: shm/protocol/frame.cc
#include "shm/protocol/frame.hpp"

#include <cassert>

namespace modelpool::proto {

std::string encode_frame(std::string_view payload) {
  assert(payload.size() <= kMaxFrame);
  const auto n = static_cast<std::uint32_t>(payload.size());
  std::string out;
  out.reserve(kHeaderBytes + payload.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out.append(payload);
  return out;
}

void FrameDecoder::feed(const char* data, std::size_t n) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  buf_.append(data, n);
}

Result<std::optional<std::string>> FrameDecoder::next() {
  if (buffered() < kHeaderBytes) return std::optional<std::string>{};
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i) {
    n |= static_cast<std::uint32_t>(static_cast<unsigned char>(buf_[pos_ + i])) << (8 * i);
  }
  if (n > kMaxFrame) {
    return error(ErrorCode::kBadRequest, "frame of " + std::to_string(n) +
                                             " bytes exceeds the limit of " +
                                             std::to_string(kMaxFrame));
  }
  if (n == 0) return error(ErrorCode::kBadRequest, "empty frame");
  if (buffered() < kHeaderBytes + n) return std::optional<std::string>{};
  std::string payload = buf_.substr(pos_ + kHeaderBytes, n);
  pos_ += kHeaderBytes + n;
  if (pos_ == buf_.size() || pos_ > (1U << 20)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return std::optional<std::string>{std::move(payload)};
}

}  // namespace modelpool::proto
