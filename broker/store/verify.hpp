// File: broker/store/verify.hpp
//
// Checks run on a loader thread after the bytes are in the segment and
// before the entry may become READY: the model-format validation (untrusted
// safetensors/GGUF headers, judged by what the file's name promises) and, when the manifest gives
// one, the sha256.
#ifndef MODELPOOL_BROKER_STORE_VERIFY_HPP_
#define MODELPOOL_BROKER_STORE_VERIFY_HPP_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "shm/layout/segment_layout.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

// The format of the `size` bytes at `offset` of the segment `fd`, or
// load_failed with the reason. A file whose `name` promises a format
// (format::format_for_name: "*.safetensors", "*.gguf") must parse as that
// format, whatever its first bytes look like; any other file is detected by
// its bytes and served as raw when it does not parse. With a non-empty
// `sha256` (hex), the bytes' SHA-256 must match it.
Result<layout::Format> verify_loaded(int fd, std::uint64_t offset, std::uint64_t size,
                                     const std::string& sha256, std::string_view name);

// Hex SHA-256 of `size` bytes at `offset` of `fd`, read with pread.
Result<std::string> sha256_of(int fd, std::uint64_t offset, std::uint64_t size);

// True when the `size` bytes at offsets `a` and `b` of `fd` are equal (read
// with pread, 1 MiB at a time: no mapping, so no page faults).
Result<bool> same_bytes(int fd, std::uint64_t a, std::uint64_t b, std::uint64_t size);

// `n` bytes as 2n lowercase hex digits.
std::string hex_of(const unsigned char* bytes, std::size_t n);

// True for 64 lowercase hex digits (a SHA-256 as the broker writes it).
bool is_sha256_hex(std::string_view s);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_STORE_VERIFY_HPP_
