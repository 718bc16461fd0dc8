// File: shm/protocol/frame.hpp
//
// Wire framing of protocol v1: a 4-byte little-endian length N, then N bytes
// of one UTF-8 JSON object, N <= kMaxFrame. FrameDecoder reassembles frames
// from a byte stream of any chunking; it is a value type owned by one
// connection (not thread-safe).
#ifndef MODELPOOL_SHM_PROTOCOL_FRAME_HPP_
#define MODELPOOL_SHM_PROTOCOL_FRAME_HPP_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shm/status.hpp"

namespace modelpool::proto {

inline constexpr std::size_t kMaxFrame = 64 * 1024;
inline constexpr std::size_t kHeaderBytes = 4;

// Prefixes `payload` with its length. `payload` must be at most kMaxFrame.
std::string encode_frame(std::string_view payload);
// The same, appended to `out` (whose capacity a caller may reuse).
void append_frame(std::string& out, std::string_view payload);

class FrameDecoder {
 public:
  // Appends `n` received bytes.
  void feed(const char* data, std::size_t n);

  // The next complete payload, nullopt while more bytes are needed, or
  // bad_request (frame too large / empty). After an error the stream is
  // unusable: the connection must be closed.
  Result<std::optional<std::string>> next();
  // The same without a copy: a view of the decoder's buffer, valid until the
  // next call to feed() or next*().
  Result<std::optional<std::string_view>> next_view();

  // Bytes received but not yet returned as frames.
  std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  std::string buf_;
  std::size_t pos_ = 0;
};

}  // namespace modelpool::proto

#endif  // MODELPOOL_SHM_PROTOCOL_FRAME_HPP_
