// File: broker/server/verify.cc
#include "broker/server/verify.hpp"

#include <openssl/evp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "shm/format/tensor_index.hpp"

namespace modelpool::broker {

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
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 15]);
  }
  return hex;
}

Result<layout::Format> verify_loaded(int fd, std::uint64_t offset, std::uint64_t size,
                                     const std::string& sha256) {
  if (!sha256.empty()) {
    auto got = sha256_of(fd, offset, size);
    if (!got.ok()) return got.status();
    if (*got != sha256) {
      return error(ErrorCode::kLoadFailed,
                   "sha256 mismatch: the manifest says " + sha256 + ", the file has " + *got);
    }
  }
  if (size == 0) return layout::Format::kRaw;
  // Map read-only: a reader touches only the pages of the header it parses.
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED)
    return error(ErrorCode::kInternal,
                 std::string("cannot map the loaded extent: ") + std::strerror(errno));
  auto index = format::parse({static_cast<const std::byte*>(p), size});
  ::munmap(p, size);
  if (!index.ok()) return error(ErrorCode::kLoadFailed, index.status().message());
  return index->format;
}

}  // namespace modelpool::broker
