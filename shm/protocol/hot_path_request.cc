// File: shm/protocol/hot_path_request.cc
//
// The broker's hot-path request reader (parse_hot_request, hot_path.hpp).
#include <array>

#include "shm/protocol/flat_scanner.hpp"
#include "shm/protocol/hot_path.hpp"

namespace modelpool::proto {
namespace {

using namespace std::string_view_literals;
using flat::FlatScanner;
using flat::same_key;
using Value = FlatReply::Value;

// The fields an acquire or release may hold, and what each request says in
// them: both readers below fill these slots, and one function decides.
enum Field : unsigned { kOp, kId, kModel, kWaitMs, kHandle, kReply, kFields, kOther = kFields };
constexpr std::pair<std::string_view, Field> kNames[] = {{"op", kOp},         {"id", kId},
                                                         {"model", kModel},   {"wait_ms", kWaitMs},
                                                         {"handle", kHandle}, {"reply", kReply}};

struct Slot {
  bool present = false;
  Value::Kind kind = Value::Kind::kNull;
  std::uint64_t u = 0;
  bool b = false;
  std::string_view s;
};
using Slots = std::array<Slot, kFields>;

// The request the slots hold, or nullopt (not a hot-path request, or a
// field of the wrong type: the general decoder gives the error).
std::optional<HotRequest> decide(const Slots& f) {
  using Kind = Value::Kind;
  const Slot& op = f[kOp];
  if (!op.present || op.kind != Kind::kString) return std::nullopt;
  HotRequest r;
  if (const Slot& id = f[kId]; id.present) {
    if (id.kind != Kind::kUnsigned) return std::nullopt;
    r.id = id.u;
  }
  if (op.s == "acquire"sv) {
    const Slot& model = f[kModel];
    if (!model.present || model.kind != Kind::kString) return std::nullopt;
    r.acquire.model.assign(model.s);
    if (const Slot& wait = f[kWaitMs]; wait.present) {
      if (wait.kind != Kind::kUnsigned) return std::nullopt;
      r.acquire.wait_ms = wait.u;
    }
    return r;
  }
  if (op.s == "release"sv) {
    r.op = HotRequest::Op::kRelease;
    const Slot& handle = f[kHandle];
    if (!handle.present || handle.kind != Kind::kUnsigned) return std::nullopt;
    r.release.handle = handle.u;
    if (const Slot& reply = f[kReply]; reply.present) {
      if (reply.kind != Kind::kBool) return std::nullopt;
      r.release.reply = reply.b;
    }
    return r;
  }
  return std::nullopt;
}

// Collects the slots for FlatScanner: views of the payload, no allocation.
// Refuses a known key twice (the general path lets the last one win) so that
// what it accepts reads exactly as the general path reads it.
class HotRequestSax {
 public:
  bool start_object(std::size_t) { return true; }
  bool end_object() { return true; }
  bool key_view(std::string_view k) {
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

  const Slots& slots() const { return slots_; }

 private:
  Slot& put(Value::Kind kind) {
    Slot& slot = field_ == kOther ? scratch_ : slots_[field_];
    slot.kind = kind;
    return slot;
  }

  Field field_ = kOther;
  Slots slots_;
  Slot scratch_;
};

// parse_hot_request for what FlatScanner does not read, or a known key twice.
std::optional<HotRequest> parse_hot_request_general(std::string_view payload) {
  // The reply reader keeps every top-level scalar, which is all an acquire
  // or release holds; a nested value is kept as kNested, which decide refuses.
  auto flat = parse_flat_reply(payload);
  if (!flat.ok()) return std::nullopt;
  Slots slots;
  for (const auto& [name, field] : kNames) {
    if (const Value* v = flat->find(name)) slots[field] = {true, v->kind, v->u, v->b, v->s};
  }
  return decide(slots);  // `flat` still holds the strings the slots view
}

}  // namespace

std::optional<HotRequest> parse_hot_request(std::string_view payload) {
  HotRequestSax sax;
  if (!FlatScanner(payload).feed(sax)) return parse_hot_request_general(payload);
  return decide(sax.slots());
}

}  // namespace modelpool::proto
