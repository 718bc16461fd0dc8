// File: shm/protocol/hot_path_request.cc
//
// The broker's hot-path request reader (parse_hot_request, hot_path.hpp).
#include <array>

#include "shm/protocol/hot_path.hpp"

namespace modelpool::proto {
namespace {

using namespace std::string_view_literals;
using Value = FlatReply::Value;

// The fields an acquire or release may hold, and what each request says in
// them: parse_hot_request fills these slots from the flat reader, and
// decide() judges them.
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

}  // namespace

std::optional<HotRequest> parse_hot_request(std::string_view payload) {
  // The flat reader keeps every top-level scalar, which is all an acquire or
  // release holds; a nested value is kept as kNested, which decide refuses.
  auto flat = parse_flat_reply(payload);
  if (!flat.ok()) return std::nullopt;
  Slots slots;
  for (const auto& [name, field] : kNames) {
    if (const Value* v = flat->find(name)) slots[field] = {true, v->kind, v->u, v->b, v->s};
  }
  return decide(slots);  // `flat` still holds the strings the slots view
}

}  // namespace modelpool::proto
