// File: broker/origin/origin_url.cc
#include "broker/origin/origin_url.hpp"

#include <cctype>
#include <cstdio>

#include "broker/store/hf_cache.hpp"
#include "broker/store/name_resolver.hpp"

namespace modelpool::broker {
namespace {

std::string env_or(const EnvFn& env, const char* name, const std::string& fallback = "") {
  const char* v = env ? env(name) : nullptr;
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

std::string trim_slashes(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// scheme://[userinfo@]host[:port] and the rest: {authority end, userinfo}.
struct SplitUrl {
  std::string scheme, userinfo, host_and_path, query;
};

std::optional<SplitUrl> split_url(std::string_view url) {
  const auto sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  SplitUrl out;
  out.scheme = std::string(url.substr(0, sep));
  std::string_view rest = url.substr(sep + 3);
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    out.query = std::string(rest.substr(q));
    rest = rest.substr(0, q);
  }
  const auto slash = rest.find('/');
  const auto at = rest.rfind('@', slash == std::string_view::npos ? rest.size() : slash);
  if (at != std::string_view::npos) {
    out.userinfo = std::string(rest.substr(0, at));
    rest = rest.substr(at + 1);
  }
  out.host_and_path = std::string(rest);
  return out;
}

// hf:REPO@REV/FILE with REV a commit or a branch or tag without '/'.
struct HubFile {
  std::string repo, revision, file;
};

std::optional<HubFile> parse_hub_file(std::string_view name) {
  if (!is_hf_name(name)) return std::nullopt;
  const auto at = name.find('@');
  if (at == std::string_view::npos) return std::nullopt;
  const auto slash = name.find('/', at);
  if (slash == std::string_view::npos || slash + 1 >= name.size()) return std::nullopt;
  auto parsed = parse_hf_name(name.substr(0, slash));
  if (!parsed.ok() || !validate_model_name(name.substr(slash + 1)).ok()) return std::nullopt;
  return HubFile{parsed->repo, parsed->revision, std::string(name.substr(slash + 1))};
}

}  // namespace

std::string encode_path(std::string_view name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(name.size());
  for (const unsigned char c : name) {
    if (std::isalnum(c) != 0 || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string redact_url(std::string_view url) {
  auto split = split_url(url);
  if (!split) return std::string(url.substr(0, url.find('?')));
  std::string out = split->scheme + "://" + split->host_and_path;
  if (!split->query.empty()) out += "?<redacted>";
  return out;
}

Result<Origin> parse_origin(std::string_view spec, const EnvFn& env) {
  auto bad = [&](const std::string& why) {
    return error(ErrorCode::kInvalidName, "origin " + redact_url(spec) + ": " + why);
  };
  Origin o;
  o.spec = redact_url(spec);
  if (starts_with(spec, "hf://")) {
    if (spec.size() > 5) return bad("hf:// takes no path (the hub is $HF_ENDPOINT)");
    o.kind = Origin::Kind::kHub;
    o.base = trim_slashes(env_or(env, "HF_ENDPOINT", "https://huggingface.co"));
    o.token = env_or(env, "HF_TOKEN");
    if (!starts_with(o.base, "http://") && !starts_with(o.base, "https://")) {
      return bad("HF_ENDPOINT must be an http:// or https:// URL");
    }
    return o;
  }
  if (starts_with(spec, "s3://")) {
    std::string_view rest = spec.substr(5);
    const auto slash = rest.find('/');
    const std::string bucket(rest.substr(0, slash));
    std::string prefix = slash == std::string_view::npos ? "" : std::string(rest.substr(slash + 1));
    prefix = trim_slashes(prefix);
    if (bucket.empty() || bucket.find_first_of("?#@:") != std::string::npos) {
      return bad("s3://BUCKET[/PREFIX] needs a bucket name");
    }
    o.kind = Origin::Kind::kS3;
    o.region = env_or(env, "AWS_REGION", env_or(env, "AWS_DEFAULT_REGION", "us-east-1"));
    const std::string endpoint =
        trim_slashes(env_or(env, "AWS_ENDPOINT_URL", "https://s3." + o.region + ".amazonaws.com"));
    o.base = endpoint + "/" + bucket + (prefix.empty() ? "" : "/" + prefix);
    const std::string key = env_or(env, "AWS_ACCESS_KEY_ID");
    const std::string secret = env_or(env, "AWS_SECRET_ACCESS_KEY");
    if (key.empty() != secret.empty()) {
      return bad("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set together or not at all");
    }
    if (!key.empty()) o.userpwd = key + ":" + secret;
    o.session_token = env_or(env, "AWS_SESSION_TOKEN");
    return o;
  }
  if (!starts_with(spec, "http://") && !starts_with(spec, "https://")) {
    return bad("not an http://, https://, s3:// or hf:// URL");
  }
  auto split = split_url(spec);
  if (!split || split->host_and_path.empty() || split->host_and_path.front() == '/') {
    return bad("no host");
  }
  o.kind = Origin::Kind::kHttp;
  o.base = trim_slashes(split->scheme + "://" + split->host_and_path);
  o.query = split->query;
  o.userpwd = split->userinfo;
  return o;
}

std::optional<OriginRequest> Origin::request(const std::string& name) const {
  OriginRequest r;
  if (kind == Kind::kHub) {
    auto f = parse_hub_file(name);
    if (!f) return std::nullopt;
    r.url = base + "/" + encode_path(f->repo) + "/resolve/" + encode_path(f->revision) + "/" +
            encode_path(f->file);
    if (!token.empty()) r.headers.push_back("Authorization: Bearer " + token);
  } else {
    if (is_hf_name(name)) return std::nullopt;
    r.url = base + "/" + encode_path(name) + query;
    if (kind == Kind::kS3) {
      if (!userpwd.empty()) {
        r.userpwd = userpwd;
        r.aws_sigv4 = "aws:amz:" + region + ":s3";
        // S3 wants the payload's hash signed; a GET has none to hash.
        r.headers.emplace_back("x-amz-content-sha256: UNSIGNED-PAYLOAD");
        if (!session_token.empty()) r.headers.push_back("x-amz-security-token: " + session_token);
      }
      r.headers.emplace_back("x-amz-checksum-mode: ENABLED");
    } else {
      r.userpwd = userpwd;
    }
  }
  r.display = redact_url(r.url);
  r.key = r.display;
  return r;
}

}  // namespace modelpool::broker
