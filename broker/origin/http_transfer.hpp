// File: broker/origin/http_transfer.hpp
//
// The broker's HTTP, through libcurl: probe() learns an object's size,
// validator and published digest with one ranged GET (bytes=0-0, which
// presigned and SAS URLs allow where HEAD is not signed), and download()
// fetches it as several ranged GETs in flight on one curl multi handle.
//
//   * Each part resumes where it stopped after a reset, a timeout or a 5xx,
//     429 or 408, with exponential backoff, at most `retries` times per
//     part; If-Range with the probe's strong ETag makes a changed object
//     a full 200 reply, which fails the download instead of mixing versions.
//   * Any other status (403, 404, ...) fails at once. Every error is
//     kLoadFailed or kNotFound, naming the object (without credentials), the
//     status or curl's reason, and the attempts made.
//   * An attempt that receives less than 1 KiB/s for `stall_timeout_s`
//     ends ("timed out"); a connection attempt ends after connect_timeout_ms.
//   * Proxies: `http_proxy` for http:// URLs, `https_proxy` for https://,
//     except hosts in `no_proxy` (curl's syntax: host names, domains,
//     "*"). Origins::create() fills them from http_proxy/HTTP_PROXY,
//     https_proxy/HTTPS_PROXY and no_proxy/NO_PROXY: the broker is no CGI
//     program, whose HTTP_PROXY an HTTP client could set (CVE-2016-5385).
//     TLS peers are verified, against the system's CAs plus `ca_file`.
//
// Thread safety: the functions are reentrant; each call owns its handles.
// The sink is called on the calling thread, in arrival order per part.
#ifndef MODELPOOL_BROKER_ORIGIN_HTTP_TRANSFER_HPP_
#define MODELPOOL_BROKER_ORIGIN_HTTP_TRANSFER_HPP_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "broker/origin/origin_url.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

struct TransferOptions {
  std::string ca_file;                            // extra CA bundle (PEM), or ""
  std::string http_proxy, https_proxy, no_proxy;  // see above
  unsigned connections = 4;                       // ranged GETs in flight per object
  std::uint64_t part_bytes = 16 << 20;            // smallest part worth its own request
  unsigned retries = 4;                           // per part, after the first attempt
  std::uint64_t backoff_ms = 200;  // first retry's delay, doubled each time (5 s at most)
  std::uint64_t connect_timeout_ms = 10000;
  std::uint64_t stall_timeout_s = 30;  // an attempt below 1 KiB/s this long ends
};

struct ObjectInfo {
  std::uint64_t size = 0;
  std::string etag;     // strong validator, or "" (then no If-Range)
  std::string sha256;   // the digest the origin publishes (64 hex), or ""
  std::string commit;   // the hub's X-Repo-Commit, or ""
  bool ranges = false;  // the origin answered the probe with 206
};

struct TransferCounters {
  std::uint64_t bytes = 0;     // body bytes received
  std::uint64_t requests = 0;  // HTTP requests made, retries included
  std::uint64_t retries = 0;
};

// Called with each run of body bytes at its offset in the object. A
// non-ok status ends the download with that status.
using Sink = std::function<Status(std::uint64_t offset, const char* data, std::size_t n)>;

// Learns the object behind `req`. kNotFound for 404/410 (the next origin
// may have it), kLoadFailed otherwise. Counts into `counters`.
Result<ObjectInfo> probe(const OriginRequest& req, const TransferOptions& opt,
                         TransferCounters* counters);

// Told how many bytes from the object's start are all in, as that grows.
using PrefixFn = std::function<void(std::uint64_t bytes)>;

// Fetches all of `info.size` bytes into `sink`, as parts of `part_bytes`
// taken in order by `connections` requests in flight. `progress` (may be
// null) counts the bytes delivered; `cancel` (may be null) ends it with
// kShuttingDown; `on_prefix` (may be empty) follows the complete prefix.
Status download(const OriginRequest& req, const ObjectInfo& info, const Sink& sink,
                const TransferOptions& opt, TransferCounters* counters,
                std::atomic<std::uint64_t>* progress, const std::atomic<bool>* cancel,
                const PrefixFn& on_prefix = {});

// The whole body of a small object (an index, a listing): kNotFound for
// 404/410, kLoadFailed beyond `limit` bytes or on any other error, after
// the retries a probe makes.
Result<std::string> fetch_text(const OriginRequest& req, const TransferOptions& opt,
                               std::size_t limit, TransferCounters* counters);

// Global libcurl setup; call once before any thread uses the functions.
void init_http();

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_ORIGIN_HTTP_TRANSFER_HPP_
