// File: broker/origin/digester.cc
#include "broker/origin/digester.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "broker/store/errno_text.hpp"
#include "broker/store/verify.hpp"

namespace modelpool::broker {

Digester::Digester(int fd, std::uint64_t offset, std::uint64_t size, int disk_fd, std::string what)
    : fd_(fd), offset_(offset), size_(size), disk_fd_(disk_fd), what_(std::move(what)) {
  xxh_ = XXH3_createState();
  sha_ = EVP_MD_CTX_new();
  if (xxh_ == nullptr || sha_ == nullptr) {
    error_ = error(ErrorCode::kInternal, "out of memory for the digests");
    return;
  }
  XXH3_64bits_reset(xxh_);
  EVP_DigestInit_ex(sha_, EVP_sha256(), nullptr);
  thread_ = std::thread([this] { run(); });
}

Digester::~Digester() {
  if (thread_.joinable()) stop(true);
  XXH3_freeState(xxh_);
  EVP_MD_CTX_free(sha_);
}

void Digester::advance(std::uint64_t prefix) {
  {
    std::lock_guard lock(mu_);
    ready_ = std::max(ready_, std::min(prefix, size_));
  }
  cv_.notify_one();
}

void Digester::stop(bool abort) {
  {
    std::lock_guard lock(mu_);
    if (abort) {
      aborting_ = true;
    } else {
      finishing_ = true;
      ready_ = size_;
    }
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Digester::abort() { stop(true); }

Result<Digests> Digester::finish() {
  stop(false);
  if (!error_.ok()) return error_;
  Digests d;
  d.xxh3 = XXH3_64bits_digest(xxh_);
  unsigned char raw[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(sha_, raw, &len);
  d.sha256 = hex_of(raw, len);
  return d;
}

void Digester::run() {
  constexpr std::size_t kChunk = 4 << 20;
  std::unique_ptr<char[]> buf(new char[kChunk]);
  while (hashed_ < size_) {
    std::uint64_t ready = 0;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return aborting_ || ready_ > hashed_; });
      if (aborting_) return;
      ready = ready_;
    }
    while (hashed_ < ready) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, ready - hashed_));
      const ssize_t n = ::pread(fd_, buf.get(), want, static_cast<off_t>(offset_ + hashed_));
      if (n <= 0) {
        error_ = error(ErrorCode::kLoadFailed,
                       what_ + ": reading the pool's copy back to hash it: " +
                           (n == 0 ? std::string("end of file") : errno_text(errno)));
        return;
      }
      const auto got = static_cast<std::size_t>(n);
      XXH3_64bits_update(xxh_, buf.get(), got);
      EVP_DigestUpdate(sha_, buf.get(), got);
      if (disk_fd_ >= 0 && !disk_failed_) {
        for (std::size_t done = 0; done < got;) {
          const ssize_t w =
              ::pwrite(disk_fd_, buf.get() + done, got - done, static_cast<off_t>(hashed_ + done));
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) {
            spdlog::warn("disk tier: dropping the copy of {}: {}", what_,
                         errno_text(w < 0 ? errno : EIO));
            disk_failed_ = true;
            break;
          }
          done += static_cast<std::size_t>(w);
        }
      }
      hashed_ += got;
    }
  }
}

}  // namespace modelpool::broker
