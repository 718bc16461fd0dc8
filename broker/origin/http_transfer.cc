// File: broker/origin/http_transfer.cc
#include "broker/origin/http_transfer.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "broker/store/verify.hpp"

namespace modelpool::broker {
namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

// 32 bytes of base64 as 64 lowercase hex, or "".
std::string base64_sha256_to_hex(const std::string& b64) {
  if (b64.size() != 44) return "";
  unsigned char raw[48];
  if (EVP_DecodeBlock(raw, reinterpret_cast<const unsigned char*>(b64.data()), 44) != 33) {
    return "";  // 44 chars decode to 33 bytes, the last a pad
  }
  return hex_of(raw, 32);
}

// The headers of the replies to one request. `final_` is the last reply's
// (after redirects); `any_` keeps what every reply said (the hub puts its
// X-Linked-* headers on the redirect).
struct Headers {
  std::map<std::string, std::string> final_, any_;

  static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* self) {
    auto* h = static_cast<Headers*>(self);
    std::string line(data, size * n);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line.rfind("HTTP/", 0) == 0) {
      h->final_.clear();
    } else if (const auto colon = line.find(':'); colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      const auto first = value.find_first_not_of(" \t");
      value = first == std::string::npos ? "" : value.substr(first);
      const std::string name = lower(line.substr(0, colon));
      h->final_[name] = value;
      h->any_[name] = value;
    }
    return size * n;
  }
  std::string get(const std::string& name) const {
    auto it = final_.find(name);
    return it == final_.end() ? "" : it->second;
  }
  std::string get_any(const std::string& name) const {
    auto it = any_.find(name);
    return it == any_.end() ? "" : it->second;
  }
};

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

Slist make_headers(const OriginRequest& req, const std::string& if_range) {
  curl_slist* list = nullptr;
  for (const std::string& h : req.headers) list = curl_slist_append(list, h.c_str());
  if (!if_range.empty()) list = curl_slist_append(list, ("If-Range: " + if_range).c_str());
  return Slist(list);
}

void setup(CURL* c, const OriginRequest& req, const TransferOptions& opt, curl_slist* headers) {
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_USERAGENT, "modelpoold/" MODELPOOL_ORIGIN_VERSION);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opt.connect_timeout_ms));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);  // below 1 KiB/s is a stall
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(opt.stall_timeout_s));
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L << 10);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!opt.ca_file.empty()) {
    // The file adds to the system's CAs: CAINFO replaces the default
    // bundle, CAPATH keeps the system's hashed directory.
    curl_easy_setopt(c, CURLOPT_CAINFO, opt.ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, "/etc/ssl/certs");
  }
  const std::string& proxy = req.url.rfind("https://", 0) == 0 ? opt.https_proxy : opt.http_proxy;
  if (!proxy.empty()) curl_easy_setopt(c, CURLOPT_PROXY, proxy.c_str());
  if (!opt.no_proxy.empty()) curl_easy_setopt(c, CURLOPT_NOPROXY, opt.no_proxy.c_str());
  if (headers != nullptr) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (!req.userpwd.empty()) curl_easy_setopt(c, CURLOPT_USERPWD, req.userpwd.c_str());
  if (!req.aws_sigv4.empty()) curl_easy_setopt(c, CURLOPT_AWS_SIGV4, req.aws_sigv4.c_str());
}

bool retryable_status(long code) { return code >= 500 || code == 408 || code == 429; }

bool retryable_curl(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

std::chrono::milliseconds backoff(const TransferOptions& opt, unsigned attempt) {
  std::uint64_t ms = opt.backoff_ms;
  for (unsigned i = 1; i < attempt && ms < 5000; ++i) ms *= 2;
  return std::chrono::milliseconds(std::min<std::uint64_t>(ms, 5000));
}

std::string describe(CURLcode rc, long code, const TransferOptions& opt) {
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return "timed out (less than 1 KiB/s for " + std::to_string(opt.stall_timeout_s) + " s)";
  }
  if (rc != CURLE_OK && rc != CURLE_WRITE_ERROR) return curl_easy_strerror(rc);
  return "HTTP " + std::to_string(code);
}

Status fail(ErrorCode code, const OriginRequest& req, const std::string& why, unsigned attempts) {
  return error(code, "origin " + req.display + ": " + why + " (" + std::to_string(attempts) +
                         (attempts == 1 ? " attempt)" : " attempts)"));
}

std::string published_sha256(const Headers& h) {
  for (const char* name :
       {"x-linked-etag", "x-amz-meta-sha256", "x-ms-meta-sha256", "x-goog-meta-sha256"}) {
    std::string v = lower(unquote(h.get_any(name)));
    if (is_sha256_hex(v)) return v;
  }
  if (std::string v = base64_sha256_to_hex(h.get_any("x-amz-checksum-sha256")); !v.empty()) {
    return v;
  }
  const std::string digest = h.get_any("repr-digest");  // RFC 9530: sha-256=:B64:
  if (const auto at = lower(digest).find("sha-256=:"); at != std::string::npos) {
    return base64_sha256_to_hex(digest.substr(at + 9, 44));
  }
  return "";
}

// An attempt of a one-request exchange that got no usable reply: the
// error to return (not_found for 404/410, load_failed when it may not or
// need not be retried), or ok after the backoff before the next attempt.
Status after_failed_attempt(const OriginRequest& req, const TransferOptions& opt, CURLcode rc,
                            bool answered, long code, unsigned attempt,
                            TransferCounters* counters) {
  if (answered && (code == 404 || code == 410)) {
    return fail(ErrorCode::kNotFound, req, "not found (HTTP " + std::to_string(code) + ")",
                attempt);
  }
  const bool again = answered ? retryable_status(code) : retryable_curl(rc);
  if (!again || attempt > opt.retries) {
    return fail(ErrorCode::kLoadFailed, req, describe(rc, code, opt), attempt);
  }
  if (counters != nullptr) ++counters->retries;
  std::this_thread::sleep_for(backoff(opt, attempt));  // backoff between attempts
  return {};
}

}  // namespace

void init_http() { curl_global_init(CURL_GLOBAL_DEFAULT); }

Result<ObjectInfo> probe(const OriginRequest& req, const TransferOptions& opt,
                         TransferCounters* counters) {
  Easy easy(curl_easy_init());
  if (!easy) return error(ErrorCode::kInternal, "curl_easy_init failed");
  Slist headers = make_headers(req, "");
  for (unsigned attempt = 1;; ++attempt) {
    Headers h;
    curl_easy_reset(easy.get());
    setup(easy.get(), req, opt, headers.get());
    curl_easy_setopt(easy.get(), CURLOPT_RANGE, "0-0");
    curl_easy_setopt(easy.get(), CURLOPT_HEADERFUNCTION, &Headers::on_header);
    curl_easy_setopt(easy.get(), CURLOPT_HEADERDATA, &h);
    // A 200 (no ranges) would send the whole object: stop at its first byte.
    curl_easy_setopt(
        easy.get(), CURLOPT_WRITEFUNCTION,
        +[](char*, std::size_t size, std::size_t n, void* e) -> std::size_t {
          long code = 0;
          curl_easy_getinfo(static_cast<CURL*>(e), CURLINFO_RESPONSE_CODE, &code);
          return code == 200 ? 0 : size * n;
        });
    curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, easy.get());
    const CURLcode rc = curl_easy_perform(easy.get());
    if (counters != nullptr) ++counters->requests;
    long code = 0;
    curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &code);
    const bool answered = rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && code == 200);
    if (answered && (code == 200 || code == 206 || code == 416)) {
      ObjectInfo info;
      info.ranges = code == 206 || code == 416;
      const std::string range = h.get("content-range");  // bytes 0-0/N or bytes */N
      const auto slash = range.rfind('/');
      const std::string total = code == 200
                                    ? h.get("content-length")
                                    : (slash == std::string::npos ? "" : range.substr(slash + 1));
      if (total.empty() || total.find_first_not_of("0123456789") != std::string::npos) {
        return fail(ErrorCode::kLoadFailed, req, "the origin did not say how large the object is",
                    attempt);
      }
      info.size = std::stoull(total);
      const std::string etag = h.get("etag");
      if (!etag.empty() && etag.rfind("W/", 0) != 0) info.etag = etag;
      info.sha256 = published_sha256(h);
      info.commit = h.get_any("x-repo-commit");
      return info;
    }
    if (Status st = after_failed_attempt(req, opt, rc, answered, code, attempt, counters);
        !st.ok()) {
      return st;
    }
  }
}

namespace {

struct TextBody {
  std::string text;
  std::size_t limit = 0;
  bool over = false;
};

std::size_t on_text(char* data, std::size_t size, std::size_t n, void* self) {
  auto* b = static_cast<TextBody*>(self);
  if (b->text.size() + size * n > b->limit) {
    b->over = true;
    return 0;
  }
  b->text.append(data, size * n);
  return size * n;
}

}  // namespace

Result<std::string> fetch_text(const OriginRequest& req, const TransferOptions& opt,
                               std::size_t limit, TransferCounters* counters) {
  Easy easy(curl_easy_init());
  if (!easy) return error(ErrorCode::kInternal, "curl_easy_init failed");
  Slist headers = make_headers(req, "");
  for (unsigned attempt = 1;; ++attempt) {
    TextBody body;
    body.limit = limit;
    curl_easy_reset(easy.get());
    setup(easy.get(), req, opt, headers.get());
    curl_easy_setopt(easy.get(), CURLOPT_WRITEFUNCTION, &on_text);
    curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, &body);
    const CURLcode rc = curl_easy_perform(easy.get());
    if (counters != nullptr) ++counters->requests;
    long code = 0;
    curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &code);
    if (body.over) {
      return fail(ErrorCode::kLoadFailed, req,
                  "larger than " + std::to_string(limit) + " bytes, the most read for it", attempt);
    }
    if (rc == CURLE_OK && code == 200) {
      if (counters != nullptr) counters->bytes += body.text.size();
      return std::move(body.text);
    }
    if (Status st = after_failed_attempt(req, opt, rc, rc == CURLE_OK, code, attempt, counters);
        !st.ok()) {
      return st;
    }
  }
}

namespace {

struct Part {
  std::uint64_t begin = 0, end = 0, next = 0;
  unsigned attempts = 0;
  Easy easy;
  Clock::time_point ready_at{};
  bool active = false, done = false;
  bool ranged = true;
  std::string range;
  // Set by the write callback.
  Status sink_error;
  std::string fatal;  // the reply cannot be used (a changed object)
  const Sink* sink = nullptr;
  std::atomic<std::uint64_t>* progress = nullptr;
  TransferCounters* counters = nullptr;
  std::uint64_t object_size = 0;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* self) {
  auto* p = static_cast<Part*>(self);
  const std::size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(p->easy.get(), CURLINFO_RESPONSE_CODE, &code);
  if (code != 206 && code != 200) return 0;  // an error page: classified when done
  if (code == 200 && p->ranged && !(p->next == 0 && p->end == p->object_size)) {
    p->fatal = "the object changed on the origin during the download (a full reply to If-Range)";
    return 0;
  }
  if (code == 200 && p->next != p->begin) {
    p->next = p->begin;  // a whole reply: it starts over from the first byte
  }
  if (len > p->end - p->next) {
    p->fatal = "the origin sent more bytes than asked for";
    return 0;
  }
  if (Status st = (*p->sink)(p->next, data, len); !st.ok()) {
    p->sink_error = std::move(st);
    return 0;
  }
  p->next += len;
  if (p->progress != nullptr) p->progress->fetch_add(len, std::memory_order_relaxed);
  if (p->counters != nullptr) p->counters->bytes += len;
  return len;
}

struct MultiDeleter {
  void operator()(CURLM* m) const { curl_multi_cleanup(m); }
};

}  // namespace

Status download(const OriginRequest& req, const ObjectInfo& info, const Sink& sink,
                const TransferOptions& opt, TransferCounters* counters,
                std::atomic<std::uint64_t>* progress, const std::atomic<bool>* cancel,
                const PrefixFn& on_prefix) {
  if (info.size == 0) return {};
  std::unique_ptr<CURLM, MultiDeleter> multi(curl_multi_init());
  if (!multi) return error(ErrorCode::kInternal, "curl_multi_init failed");
  // Parts of part_bytes (at most 4096 of them), taken in order by the
  // connections: the object fills from its start, so what is complete from
  // byte 0 on grows all the time (on_prefix) and can be hashed meanwhile.
  const std::uint64_t step =
      info.ranges ? std::max<std::uint64_t>({opt.part_bytes, (info.size + 4095) / 4096, 1})
                  : info.size;
  const unsigned connections = std::max(1U, opt.connections);
  Slist headers = make_headers(req, info.ranges ? info.etag : "");
  std::vector<std::unique_ptr<Part>> parts;
  for (std::uint64_t b = 0; b < info.size; b += step) {
    auto p = std::make_unique<Part>();
    p->begin = p->next = b;
    p->end = std::min(info.size, b + step);
    p->ranged = info.ranges;
    p->sink = &sink;
    p->progress = progress;
    p->counters = counters;
    p->object_size = info.size;
    parts.push_back(std::move(p));
  }
  auto finish = [&](Status st) {
    for (auto& p : parts) {
      if (p->active) curl_multi_remove_handle(multi.get(), p->easy.get());
      p->active = false;
    }
    return st;
  };
  std::size_t remaining = parts.size(), first_open = 0;
  unsigned active = 0;
  std::uint64_t prefix = 0;
  while (remaining > 0) {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
      return finish(error(ErrorCode::kShuttingDown,
                          "origin " + req.display + ": the broker is shutting down"));
    }
    const auto now = Clock::now();
    auto next_ready = now + std::chrono::seconds(1);
    for (std::size_t i = first_open; i < parts.size() && active < connections; ++i) {
      Part* p = parts[i].get();
      if (p->done || p->active) continue;
      if (p->ready_at > now) {
        next_ready = std::min(next_ready, p->ready_at);
        continue;
      }
      if (!p->easy) p->easy.reset(curl_easy_init());
      if (!p->easy) return finish(error(ErrorCode::kInternal, "curl_easy_init failed"));
      if (!p->ranged) p->next = p->begin;  // no resume without ranges
      CURL* c = p->easy.get();
      curl_easy_reset(c);
      setup(c, req, opt, headers.get());
      if (p->ranged) {
        p->range = std::to_string(p->next) + "-" + std::to_string(p->end - 1);
        curl_easy_setopt(c, CURLOPT_RANGE, p->range.c_str());
      }
      curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_body);
      curl_easy_setopt(c, CURLOPT_WRITEDATA, p);
      curl_easy_setopt(c, CURLOPT_PRIVATE, p);
      ++p->attempts;
      if (counters != nullptr) ++counters->requests;
      if (curl_multi_add_handle(multi.get(), c) != CURLM_OK) {
        return finish(error(ErrorCode::kInternal, "curl_multi_add_handle failed"));
      }
      p->active = true;
      ++active;
    }
    int running = 0;
    curl_multi_perform(multi.get(), &running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi.get(), &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Part* p = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&p));
      const CURLcode rc = msg->data.result;
      curl_multi_remove_handle(multi.get(), msg->easy_handle);
      p->active = false;
      --active;
      long code = 0;
      curl_easy_getinfo(p->easy.get(), CURLINFO_RESPONSE_CODE, &code);
      if (!p->sink_error.ok()) return finish(p->sink_error);
      if (!p->fatal.empty())
        return finish(fail(ErrorCode::kLoadFailed, req, p->fatal, p->attempts));
      if (rc == CURLE_OK && (code == 200 || code == 206) && p->next == p->end) {
        p->done = true;
        p->easy.reset();  // its connection stays in the multi handle's pool
        --remaining;
        continue;
      }
      const bool answered = rc == CURLE_OK || rc == CURLE_WRITE_ERROR;
      const bool partial = answered && (code == 200 || code == 206);  // ended early: resume
      const bool again = partial || (answered ? retryable_status(code) : retryable_curl(rc));
      if (!again || p->attempts > opt.retries) {
        const std::string why = partial ? "the reply ended at byte " + std::to_string(p->next) +
                                              " of " + std::to_string(p->end)
                                        : describe(rc, code, opt);
        return finish(
            fail(code == 404 || code == 410 ? ErrorCode::kNotFound : ErrorCode::kLoadFailed, req,
                 why, p->attempts));
      }
      if (counters != nullptr) ++counters->retries;
      p->ready_at = Clock::now() + backoff(opt, p->attempts);
      next_ready = std::min(next_ready, p->ready_at);
    }
    while (first_open < parts.size() && parts[first_open]->done) ++first_open;
    // Without ranges a retry starts over: nothing is complete before the end.
    const std::uint64_t now_prefix = first_open == parts.size() ? info.size
                                     : info.ranges              ? parts[first_open]->next
                                                                : 0;
    if (now_prefix > prefix) {
      prefix = now_prefix;
      if (on_prefix) on_prefix(prefix);
    }
    if (remaining == 0) break;
    // A free connection and a part ready for it: start it now, not after
    // the poll (which nothing would end when no transfer is running).
    bool startable = false;
    for (std::size_t i = first_open; i < parts.size() && active < connections && !startable; ++i) {
      const Part& q = *parts[i];
      startable = !q.done && !q.active && q.ready_at <= Clock::now();
    }
    if (startable) continue;
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_ready - Clock::now());
    const int wait_ms = static_cast<int>(std::clamp<long long>(wait.count(), 0, 1000));
    curl_multi_poll(multi.get(), nullptr, 0, wait_ms, nullptr);
  }
  return finish({});
}

}  // namespace modelpool::broker
