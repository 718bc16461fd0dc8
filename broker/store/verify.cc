// File: broker/store/verify.cc
//
// The checks of verify.hpp: sha256 of the extent, then the format its name
// promises (or detects), read from a read-only mapping of the extent.
#include "broker/store/verify.hpp"

#include <openssl/evp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "shm/format/tensor_index.hpp"

namespace modelpool::broker {

namespace {

// Reads `len` bytes at `offset` of `fd` into `to`, or says why not.
Status read_at(int fd, unsigned char* to, std::size_t len, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, to + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return error(ErrorCode::kInternal, std::string("reading back the segment: ") +
                                             (n == 0 ? "end of file" : std::strerror(errno)));
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

}  // namespace

Result<bool> same_bytes(int fd, std::uint64_t a, std::uint64_t b, std::uint64_t size) {
  constexpr std::size_t kChunk = 1 << 20;
  std::vector<unsigned char> x(kChunk), y(kChunk);
  for (std::uint64_t done = 0; done < size;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, size - done));
    if (Status st = read_at(fd, x.data(), n, a + done); !st.ok()) return st;
    if (Status st = read_at(fd, y.data(), n, b + done); !st.ok()) return st;
    if (std::memcmp(x.data(), y.data(), n) != 0) return false;
    done += n;
  }
  return true;
}

Result<std::string> sha256_of(int fd, std::uint64_t offset, std::uint64_t size) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return error(ErrorCode::kInternal, "cannot initialise SHA-256");
  }
  std::vector<unsigned char> buf(4 << 20);
  std::uint64_t done = 0;
  while (done < size) {
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - done));
    ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return error(ErrorCode::kInternal,
                   std::string("reading back the segment: ") + std::strerror(errno));
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(n));
    done += static_cast<std::uint64_t>(n);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  return hex_of(md, len);
}

std::string hex_of(const unsigned char* bytes, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    hex.push_back(kHex[bytes[i] >> 4]);
    hex.push_back(kHex[bytes[i] & 15]);
  }
  return hex;
}

bool is_sha256_hex(std::string_view s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

namespace {

// The broker only validates: metadata values are checked but not built, so
// a load costs no memory in proportion to a file's metadata arrays.
const format::MetadataFilter kNoMetadata = format::MetadataFilter::none();

// The format of `file` named `name` (see verify_loaded).
Result<layout::Format> check_format(std::span<const std::byte> file, std::string_view name) {
  const layout::Format promised = format::format_for_name(name);
  if (promised == layout::Format::kRaw) {
    // Detected by its bytes; a file that only looks like a model is raw.
    auto index = format::parse(file, kNoMetadata);
    return index.ok() ? index->format : layout::Format::kRaw;
  }
  auto index = promised == layout::Format::kSafetensors ? format::parse_safetensors(file)
                                                        : format::parse_gguf(file, kNoMetadata);
  if (!index.ok()) {
    return error(ErrorCode::kLoadFailed, std::string(name) + " is not a valid " +
                                             std::string(layout::to_string(promised)) +
                                             " file: " + index.status().message());
  }
  return index->format;
}

}  // namespace

Result<layout::Format> verify_loaded(int fd, std::uint64_t offset, std::uint64_t size,
                                     const std::string& sha256, std::string_view name) {
  if (!sha256.empty()) {
    auto got = sha256_of(fd, offset, size);
    if (!got.ok()) return got.status();
    if (*got != sha256) {
      return error(ErrorCode::kLoadFailed,
                   "sha256 mismatch: the manifest says " + sha256 + ", the file has " + *got);
    }
  }
  if (size == 0) return check_format({}, name);
  // Map read-only: a reader touches only the pages of the header it parses.
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED)
    return error(ErrorCode::kInternal,
                 std::string("cannot map the loaded extent: ") + std::strerror(errno));
  auto format = check_format({static_cast<const std::byte*>(p), size}, name);
  ::munmap(p, size);
  return format;
}

}  // namespace modelpool::broker
