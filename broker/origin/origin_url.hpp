// File: broker/origin/origin_url.hpp
//
// What an --origin names and how a model name becomes a request to it:
//
//   http://HOST/PATH[?QUERY], https://...   URL/NAME[?QUERY]: any static
//       server, a CDN, Azure Blob with a SAS query (kept after the name),
//       presigned prefixes;
//   s3://BUCKET[/PREFIX]                    ENDPOINT/BUCKET/PREFIX/NAME,
//       signed with AWS Signature V4 (libcurl's CURLOPT_AWS_SIGV4) from
//       AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; the
//       endpoint is AWS_ENDPOINT_URL (path style, for S3-compatible stores)
//       or https://s3.REGION.amazonaws.com, REGION from AWS_REGION or
//       AWS_DEFAULT_REGION (us-east-1);
//   hf://                                   the Hugging Face hub at
//       HF_ENDPOINT (https://huggingface.co), HF_TOKEN as a bearer token:
//       the file hf:ORG/NAME@REV/FILE is ENDPOINT/ORG/NAME/resolve/REV/FILE.
//
// Credentials (a URL's user:password, its query, keys, tokens) live only in
// the Request; `display` and `key` never hold them, so logs, metrics and
// the disk tier's index stay free of secrets. Environment variables are
// read once, when the origin is parsed (at start and on SIGHUP).
#ifndef MODELPOOL_BROKER_ORIGIN_ORIGIN_URL_HPP_
#define MODELPOOL_BROKER_ORIGIN_ORIGIN_URL_HPP_

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shm/status.hpp"

namespace modelpool::broker {

// One HTTP request's target and credentials.
struct OriginRequest {
  std::string url;                   // what is fetched, with any secret query
  std::string display;               // the URL without credentials, for messages
  std::string key;                   // the object's identity for the disk tier
  std::vector<std::string> headers;  // "Name: value"
  std::string userpwd;               // KEY:SECRET for SigV4
  std::string aws_sigv4;             // "aws:amz:REGION:s3", or ""
};

struct Origin {
  enum class Kind { kHttp, kS3, kHub };
  Kind kind = Kind::kHttp;
  std::string spec;     // as given, without credentials (for messages and config)
  std::string base;     // http(s): scheme://host/path without the query; s3: endpoint/bucket/prefix
  std::string query;    // http(s): "?..." kept after the name (a SAS token), else ""
  std::string region;   // s3
  std::string userpwd;  // s3: KEY:SECRET; http(s): the URL's user:password
  std::string session_token;  // s3
  std::string token;          // hub: HF_TOKEN

  // The request for model `name`, or nullopt when this origin cannot serve
  // such a name (an hf: name from a plain origin, a plain name from the hub).
  std::optional<OriginRequest> request(const std::string& name) const;
};

// Reads the environment through `getenv` (tests pass their own).
using EnvFn = std::function<const char*(const char*)>;

// Parses one --origin value. invalid_name with the reason for anything else
// than the three forms above (a bad scheme, no host, no bucket).
Result<Origin> parse_origin(std::string_view spec, const EnvFn& env);

// `url` with any user:password and query removed ("...?<redacted>").
std::string redact_url(std::string_view url);

// Percent-encodes each '/'-separated component of a model name.
std::string encode_path(std::string_view name);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_ORIGIN_ORIGIN_URL_HPP_
