// File: tests/fuzz/frame_fuzzer.cc
//
// libFuzzer target: FrameDecoder on a byte stream delivered in chunks. The
// first input byte picks the chunk size (1..256), the rest is the stream.
// Each frame's payload goes on to decode_request and decode_reply, as in the
// broker and the client. Contracts: a frame never exceeds kMaxFrame and is
// never empty; once next() fails the test stops feeding (the stream is dead).
#include <cstddef>
#include <cstdint>

#include "shm/protocol/frame.hpp"
#include "shm/protocol/messages.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using modelpool::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t chunk = static_cast<std::size_t>(data[0]) + 1;
  const char* stream = reinterpret_cast<const char*>(data + 1);
  const std::size_t n = size - 1;
  modelpool::proto::FrameDecoder decoder;
  std::size_t delivered = 0;
  std::size_t consumed = 0;
  for (std::size_t at = 0; at < n; at += chunk) {
    const std::size_t len = n - at < chunk ? n - at : chunk;
    decoder.feed(stream + at, len);
    delivered += len;
    for (;;) {
      auto frame = decoder.next();
      if (!frame.ok()) return 0;
      if (!frame->has_value()) break;
      const std::string& payload = **frame;
      require(!payload.empty() && payload.size() <= modelpool::proto::kMaxFrame, "frame size");
      consumed += modelpool::proto::kHeaderBytes + payload.size();
      (void)modelpool::proto::decode_request(payload);
      (void)modelpool::proto::decode_reply(payload);
    }
    require(decoder.buffered() == delivered - consumed, "buffered() counts unread bytes");
  }
  return 0;
}
