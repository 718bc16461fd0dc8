// File: shm/protocol/frame.cc
#include "shm/protocol/frame.hpp"

#include <cassert>

namespace modelpool::proto {

std::string encode_frame(std::string_view payload) {
  std::string out;
  out.reserve(kHeaderBytes + payload.size());
  append_frame(out, payload);
  return out;
}

void append_frame(std::string& out, std::string_view payload) {
  assert(payload.size() <= kMaxFrame);
  const auto n = static_cast<std::uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out.append(payload);
}

void FrameDecoder::feed(const char* data, std::size_t n) {
  // Bytes before pos_ were returned; views from next_view() end here.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ > (1U << 20))) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(data, n);
}

Result<std::optional<std::string>> FrameDecoder::next() {
  auto view = next_view();
  if (!view.ok()) return view.status();
  if (!view->has_value()) return std::optional<std::string>{};
  std::string payload(**view);
  if (pos_ == buf_.size() || pos_ > (1U << 20)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return std::optional<std::string>{std::move(payload)};
}

Result<std::optional<std::string_view>> FrameDecoder::next_view() {
  if (buffered() < kHeaderBytes) return std::optional<std::string_view>{};
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
  if (buffered() < kHeaderBytes + n) return std::optional<std::string_view>{};
  const std::string_view payload(buf_.data() + pos_ + kHeaderBytes, n);
  pos_ += kHeaderBytes + n;
  return std::optional<std::string_view>{payload};
}

}  // namespace modelpool::proto
