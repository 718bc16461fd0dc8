// File: shm/protocol/hot_path_request.cc
//
// The broker's hot-path request reader (parse_hot_request, hot_path.hpp).
#include "shm/protocol/flat_scanner.hpp"
#include "shm/protocol/hot_path.hpp"

namespace modelpool::proto {
namespace {

using namespace std::string_view_literals;
using flat::FlatScanner;
using flat::same_key;
using Value = FlatReply::Value;

// Collects the top-level scalars an acquire or release may hold, for
// FlatScanner: views of the payload, no allocation. Refuses a known key
// twice (the general path lets the last one win) so that what it accepts
// reads exactly as the general path reads it.
class HotRequestSax {
 public:
  enum Field : unsigned { kOp, kId, kModel, kWaitMs, kHandle, kReply, kFields, kOther = kFields };
  struct Slot {
    bool present = false;
    Value::Kind kind = Value::Kind::kNull;
    std::uint64_t u = 0;
    bool b = false;
    std::string_view s;
  };

  bool start_object(std::size_t) { return true; }
  bool end_object() { return true; }
  bool key_view(std::string_view k) {
    static constexpr std::pair<std::string_view, Field> kNames[] = {
        {"op", kOp},          {"id", kId},         {"model", kModel},
        {"wait_ms", kWaitMs}, {"handle", kHandle}, {"reply", kReply}};
    field_ = kOther;
    for (const auto& [name, f] : kNames) {
      if (same_key(name, k)) field_ = f;
    }
    if (field_ == kOther) return true;
    if (slots_[field_].present) return false;
    slots_[field_].present = true;
    return true;
  }
  bool number_unsigned(std::uint64_t v) { return put(Value::Kind::kUnsigned).u = v, true; }
  bool string_view(std::string_view v) { return put(Value::Kind::kString).s = v, true; }
  bool boolean(bool v) { return put(Value::Kind::kBool).b = v, true; }
  bool null() { return put(Value::Kind::kNull), true; }

  const Slot& operator[](Field f) const { return slots_[f]; }

 private:
  Slot& put(Value::Kind kind) {
    Slot& slot = field_ == kOther ? scratch_ : slots_[field_];
    slot.kind = kind;
    return slot;
  }

  Field field_ = kOther;
  Slot slots_[kFields];
  Slot scratch_;
};

// parse_hot_request for what FlatScanner does not read, or a known key twice.
std::optional<HotRequest> parse_hot_request_general(std::string_view payload) {
  // The reply reader keeps every top-level scalar, which is all an acquire
  // or release holds; nested values are recorded as such and refused below.
  auto flat = parse_flat_reply(payload);
  if (!flat.ok()) return std::nullopt;
  using Kind = Value::Kind;
  const Value* op = flat->find("op");
  if (op == nullptr || op->kind != Kind::kString) return std::nullopt;
  HotRequest r;
  if (const Value* id = flat->find("id")) {
    if (id->kind != Kind::kUnsigned) return std::nullopt;
    r.id = id->u;
  }
  if (op->s == "acquire") {
    const Value* model = flat->find("model");
    if (model == nullptr || model->kind != Kind::kString) return std::nullopt;
    r.acquire.model = model->s;
    if (const Value* wait = flat->find("wait_ms")) {
      if (wait->kind != Kind::kUnsigned) return std::nullopt;
      r.acquire.wait_ms = wait->u;
    }
    return r;
  }
  if (op->s == "release") {
    r.op = HotRequest::Op::kRelease;
    const Value* handle = flat->find("handle");
    if (handle == nullptr || handle->kind != Kind::kUnsigned) return std::nullopt;
    r.release.handle = handle->u;
    if (const Value* reply = flat->find("reply")) {
      if (reply->kind != Kind::kBool) return std::nullopt;
      r.release.reply = reply->b;
    }
    return r;
  }
  return std::nullopt;
}

}  // namespace

std::optional<HotRequest> parse_hot_request(std::string_view payload) {
  HotRequestSax sax;
  if (!FlatScanner(payload).feed(sax)) return parse_hot_request_general(payload);
  // The same decisions as parse_hot_request_general, on the collected slots.
  using Kind = Value::Kind;
  using F = HotRequestSax::Field;
  const auto& op = sax[F::kOp];
  if (!op.present || op.kind != Kind::kString) return std::nullopt;
  HotRequest r;
  if (const auto& id = sax[F::kId]; id.present) {
    if (id.kind != Kind::kUnsigned) return std::nullopt;
    r.id = id.u;
  }
  if (op.s == "acquire"sv) {
    const auto& model = sax[F::kModel];
    if (!model.present || model.kind != Kind::kString) return std::nullopt;
    r.acquire.model.assign(model.s);
    if (const auto& wait = sax[F::kWaitMs]; wait.present) {
      if (wait.kind != Kind::kUnsigned) return std::nullopt;
      r.acquire.wait_ms = wait.u;
    }
    return r;
  }
  if (op.s == "release"sv) {
    r.op = HotRequest::Op::kRelease;
    const auto& handle = sax[F::kHandle];
    if (!handle.present || handle.kind != Kind::kUnsigned) return std::nullopt;
    r.release.handle = handle.u;
    if (const auto& reply = sax[F::kReply]; reply.present) {
      if (reply.kind != Kind::kBool) return std::nullopt;
      r.release.reply = reply.b;
    }
    return r;
  }
  return std::nullopt;
}

}  // namespace modelpool::proto
