// File: clientlib/node/src/client_wrap.cc
#include "client_wrap.hpp"

#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <utility>

#include "addon.hpp"
#include "model_wrap.hpp"

namespace modelpool::node {
namespace {

// A number of milliseconds from JavaScript; undefined or null: nullopt.
std::optional<std::chrono::milliseconds> OptionalMillis(const Napi::Value& v, const char* what) {
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  const double ms = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(ms) || ms < 0) {
    throw Napi::RangeError::New(v.Env(),
                                std::string(what) + " must be a non-negative number of ms");
  }
  constexpr double kMaxMs = 1e15;  // ~31,700 years: keeps the count in range
  return std::chrono::milliseconds(std::llround(std::min(ms, kMaxMs)));
}

std::string String(const Napi::Value& v, const char* what) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

}  // namespace

Napi::Function ClientWrap::DefineClass(Napi::Env env) {
  return ObjectWrap::DefineClass(env, "NativeClient",
                                 {
                                     InstanceMethod<&ClientWrap::Acquire>("acquire"),
                                     InstanceMethod<&ClientWrap::Close>("close"),
                                     InstanceAccessor<&ClientWrap::Pool>("pool"),
                                     InstanceAccessor<&ClientWrap::SegmentPath>("segmentPath"),
                                     InstanceAccessor<&ClientWrap::PageSize>("pageSize"),
                                 });
}

ClientWrap::ClientWrap(const Napi::CallbackInfo& info) : ObjectWrap(info) {}

Napi::Value ClientWrap::Connect(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  std::optional<std::string> socket;
  if (!info[0].IsUndefined() && !info[0].IsNull()) socket = String(info[0], "socket");
  ClientOptions options;
  options.reconnect_timeout = OptionalMillis(info[1], "reconnectTimeoutMs");
  if (!info[2].IsUndefined()) options.release_ring = info[2].ToBoolean().Value();

  std::shared_ptr<SerialQueue> queue = SerialQueue::Create();
  return queue->Run(env, [socket = std::move(socket), options, queue]() -> Settle {
    auto client = std::make_shared<Client>(socket ? Client::connect(*socket, options)
                                                  : Client::connect(options));
    return [client = std::move(client), queue](Napi::Env env) -> Napi::Value {
      Napi::Object obj = GetInstance(env).client_class.New({});
      ClientWrap* self = Unwrap(obj);
      self->client_ = client;
      self->queue_ = queue;
      return obj;
    };
  });
}

std::shared_ptr<Client> ClientWrap::Open(Napi::Env env) const {
  if (!client_) throw MakeError(env, "unavailable", "this Client was closed");
  return client_;
}

Napi::Value ClientWrap::Acquire(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  std::string name = String(info[0], "model name");
  AcquireOptions options;
  options.wait = OptionalMillis(info[1], "waitMs");
  options.populate = info[2].ToBoolean().Value();
  std::shared_ptr<Client> client = Open(env);
  return queue_->Run(env,
                     [client = std::move(client), name = std::move(name), options]() -> Settle {
                       auto model = std::make_shared<Model>(client->acquire(name, options));
                       return [model = std::move(model)](Napi::Env env) -> Napi::Value {
                         return ModelWrap::New(env, model);
                       };
                     });
}

Napi::Value ClientWrap::Close(const Napi::CallbackInfo& info) {
  client_.reset();  // queued acquires hold their own share until they finish
  return info.Env().Undefined();
}

Napi::Value ClientWrap::Pool(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Open(info.Env())->pool());
}

Napi::Value ClientWrap::SegmentPath(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Open(info.Env())->segment_path());
}

Napi::Value ClientWrap::PageSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Open(info.Env())->page_size()));
}

}  // namespace modelpool::node
