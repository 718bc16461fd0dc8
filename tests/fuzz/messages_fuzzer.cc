// File: tests/fuzz/messages_fuzzer.cc
//
// libFuzzer target: decode_request, decode_reply and the hot path's
// parse_hot_request and parse_flat_reply on one arbitrary payload,
// then every typed decoder on the decoded body, and re-encoding. Contracts:
// requests fail only with bad_request; a decoded request re-encodes to a
// payload that decodes again to the same op; a reply error re-encodes to the
// same code. Seeds: corpus/messages (one JSON payload per file).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shm/protocol/hot_path.hpp"
#include "shm/protocol/messages.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace proto = modelpool::proto;
using modelpool::ErrorCode;
using modelpool::fuzz::require;

namespace {

void request(std::string_view payload) {
  auto r = proto::decode_request(payload);
  if (!r.ok()) {
    require(r.status().code() == ErrorCode::kBadRequest, "bad requests are bad_request");
    return;
  }
  (void)proto::decode_acquire_request(r->body);
  (void)proto::decode_release_request(r->body);
  (void)proto::decode_model_request(r->body);
  (void)proto::get_opt_bool(r->body, "pin");
  auto again = proto::decode_request(proto::encode_request(r->op, r->id, r->body));
  require(again.ok() && again->op == r->op, "requests re-encode");
  (void)proto::encode_ok(r->id, r->body);
}

// The broker's DOM-free request decoder accepts only what decode_request
// decodes to the same request.
void hot_request(std::string_view payload) {
  auto hot = proto::parse_hot_request(payload);
  if (!hot) return;
  auto ref = proto::decode_request(payload);
  require(ref.ok(), "hot requests decode with the reference codec");
  require(ref->id == (hot->id ? proto::json(*hot->id) : proto::json(nullptr)),
          "hot and DOM requests carry the same id");
  if (hot->op == proto::HotRequest::Op::kAcquire) {
    auto a = proto::decode_acquire_request(ref->body);
    require(ref->op == "acquire" && a.ok() && a->model == hot->acquire.model &&
                a->wait_ms == hot->acquire.wait_ms,
            "hot and DOM acquire requests agree");
  } else {
    auto r = proto::decode_release_request(ref->body);
    require(ref->op == "release" && r.ok() && r->handle == hot->release.handle &&
                r->reply == hot->release.reply,
            "hot and DOM release requests agree");
  }
}

// The DOM-free reply decoder of the hot path judges every payload as
// decode_reply does, and reads the same acquire reply, its files included.
void flat_reply(std::string_view payload) {
  auto dom = proto::decode_reply(payload);
  auto flat = proto::parse_flat_reply(payload);
  auto sax = proto::parse_flat_reply_reference(payload);
  require(flat.ok() == sax.ok() && (!flat.ok() || *flat == *sax),
          "the flat scanner reads what nlohmann's parser reads");
  const modelpool::Status st = flat.ok() ? proto::flat_reply_status(*flat) : flat.status();
  require(dom.ok() == st.ok() && dom.status().code() == st.code(), "flat and DOM replies agree");
  if (!dom.ok()) return;
  auto ref = proto::decode_acquire_reply(dom->body);
  auto fast = proto::acquire_reply_from(*flat);
  require(ref.ok() == fast.ok(), "flat and DOM acquire replies agree");
  if (ref.ok()) {
    require(ref->handle == fast->handle && ref->model == fast->model &&
                ref->offset == fast->offset && ref->size == fast->size &&
                ref->generation == fast->generation && ref->checksum == fast->checksum &&
                ref->format == fast->format && ref->cached == fast->cached &&
                ref->files == fast->files && ref->commit == fast->commit,
            "flat and DOM acquire replies carry the same fields");
  }
}

void reply(std::string_view payload) {
  auto r = proto::decode_reply(payload);
  if (!r.ok()) {
    require(r.status().code() != ErrorCode::kOk, "failed replies carry a code");
    auto again = proto::decode_reply(proto::encode_error(nullptr, r.status()));
    require(!again.ok() && again.status().code() == r.status().code(), "errors re-encode");
    return;
  }
  (void)proto::decode_hello_reply(r->body);
  (void)proto::decode_acquire_reply(r->body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  request(payload);
  hot_request(payload);
  reply(payload);
  flat_reply(payload);
  return 0;
}
