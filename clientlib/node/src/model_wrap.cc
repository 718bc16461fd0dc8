// File: clientlib/node/src/model_wrap.cc
#include "model_wrap.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "addon.hpp"

namespace modelpool::node {
namespace {

std::string_view FormatName(Format f) {
  switch (f) {
    case Format::safetensors:
      return "safetensors";
    case Format::gguf:
      return "gguf";
    case Format::raw:
      break;
  }
  return "raw";
}

std::string Hex64(std::uint64_t v) {
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string hex(16, '0');
  for (std::size_t i = 0; i < hex.size(); ++i) hex[i] = kHex[(v >> (60 - 4 * i)) & 0xf];
  return hex;
}

void DropShare(napi_env /*env*/, void* /*data*/, void* hint) {
  delete static_cast<std::shared_ptr<Model>*>(hint);  // NOLINT(cppcoreguidelines-owning-memory)
}

// An ArrayBuffer over `bytes` (inside `model`'s mapping), with no copy; it
// holds a share of `model` until it is collected. The pages are mapped
// PROT_READ: a store through a view faults.
Napi::ArrayBuffer ExternalBuffer(Napi::Env env, const std::shared_ptr<Model>& model,
                                 std::span<const std::byte> bytes) {
  if (bytes.empty()) return Napi::ArrayBuffer::New(env, 0);
  auto* share = new std::shared_ptr<Model>(model);  // NOLINT(cppcoreguidelines-owning-memory)
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): the pages are read-only
  void* data = const_cast<std::byte*>(bytes.data());
  napi_value ab = nullptr;
  const napi_status st =
      napi_create_external_arraybuffer(env, data, bytes.size(), DropShare, share, &ab);
  if (st != napi_ok) {
    delete share;  // NOLINT(cppcoreguidelines-owning-memory)
    // napi_no_external_buffers_allowed where V8's sandbox is on: no view
    // without a copy. Its name is not in older headers; the message says it.
    const napi_extended_error_info* err = nullptr;
    std::string why = "cannot make an external ArrayBuffer over the pool";
    if (napi_get_last_error_info(env, &err) == napi_ok && err != nullptr &&
        err->error_message != nullptr) {
      why += std::string(": ") + err->error_message;
    }
    throw MakeError(env, "not_supported", why);
  }
  return {env, ab};
}

std::uint64_t ToIndex(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740991.0) ||
      d != static_cast<double>(static_cast<std::uint64_t>(d))) {
    throw Napi::RangeError::New(v.Env(), std::string(what) + " must be a non-negative integer");
  }
  return static_cast<std::uint64_t>(d);
}

}  // namespace

Napi::Function ModelWrap::DefineClass(Napi::Env env) {
  return ObjectWrap::DefineClass(env, "NativeModel",
                                 {
                                     InstanceMethod<&ModelWrap::Info>("info"),
                                     InstanceMethod<&ModelWrap::Buffer>("buffer"),
                                     InstanceMethod<&ModelWrap::Slice>("slice"),
                                     InstanceMethod<&ModelWrap::TensorInfos>("tensorInfos"),
                                     InstanceMethod<&ModelWrap::MetadataJson>("metadataJson"),
                                     InstanceMethod<&ModelWrap::Files>("files"),
                                     InstanceMethod<&ModelWrap::File>("file"),
                                     InstanceMethod<&ModelWrap::Release>("release"),
                                     InstanceAccessor<&ModelWrap::Released>("released"),
                                     InstanceAccessor<&ModelWrap::Held>("held"),
                                     InstanceAccessor<&ModelWrap::Handle>("handle"),
                                 });
}

Napi::Object ModelWrap::New(Napi::Env env, std::shared_ptr<Model> model) {
  Napi::Object obj = GetInstance(env).model_class.New({});
  ModelWrap* self = Unwrap(obj);
  self->weak_ = model;
  self->model_ = std::move(model);
  return obj;
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : ObjectWrap(info) {}

const Model& ModelWrap::Open(Napi::Env env) const {
  if (!model_) throw MakeError(env, "stale_handle", "the model was released");
  return *model_;
}

Napi::Value ModelWrap::Info(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const Model& m = Open(env);
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", m.name());
  o.Set("size", static_cast<double>(m.size()));
  o.Set("generation", static_cast<double>(m.generation()));
  o.Set("checksum", Hex64(m.checksum()));
  o.Set("cached", m.cached());
  o.Set("format", std::string(FormatName(m.format())));
  return o;
}

Napi::Value ModelWrap::Buffer(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  return ExternalBuffer(env, model_, Open(env).bytes());
}

// slice(offset, length): an ArrayBuffer over bytes [offset, offset + length),
// for a tensor whose offset does not suit its element size.
Napi::Value ModelWrap::Slice(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const std::span<const std::byte> all = Open(env).bytes();
  const std::uint64_t offset = ToIndex(info[0], "offset");
  const std::uint64_t length = ToIndex(info[1], "length");
  if (offset > all.size() || length > all.size() - offset) {
    throw Napi::RangeError::New(env, "slice out of the model's bytes");
  }
  return ExternalBuffer(env, model_, all.subspan(offset, length));
}

Napi::Value ModelWrap::TensorInfos(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const Model& m = Open(env);
    const std::byte* base = m.bytes().data();
    const std::vector<Tensor>& tensors = m.tensors();
    Napi::Array out = Napi::Array::New(env, tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const Tensor& t = tensors[i];
      Napi::Array shape = Napi::Array::New(env, t.shape.size());
      for (std::size_t d = 0; d < t.shape.size(); ++d) {
        shape.Set(static_cast<std::uint32_t>(d), static_cast<double>(t.shape[d]));
      }
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", t.name);
      o.Set("dtype", t.dtype);
      o.Set("shape", shape);
      o.Set("offset", static_cast<double>(t.data.data() - base));
      o.Set("nbytes", static_cast<double>(t.data.size()));
      out.Set(static_cast<std::uint32_t>(i), o);
    }
    return out;
  });
}

Napi::Value ModelWrap::MetadataJson(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  return Guard(env,
               [&]() -> Napi::Value { return Napi::String::New(env, Open(env).metadata_json()); });
}

// ---- repositories: files() and file(name) ----------------------------------
// NOT WIRED YET. modelpool::Model is getting files() (a vector of
// {name, size, format}) and file(name) (read-only bytes) for sharded
// repositories. When they land:
//   Files: return an Array of {name, size, format} objects, in the order
//          Model::files() gives;
//   File:  return ExternalBuffer(env, model_, <the span Model::file(name)
//          returns>), letting modelpool::Error (not_found) become a
//          ModelpoolError through Guard. lib/index.js wraps it in a
//          Uint8Array; index.d.ts already declares both.
Napi::Value ModelWrap::Files(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  (void)Open(env);
  throw MakeError(env, "not_supported",
                  "Model.files() needs a client library with repository support");
}

Napi::Value ModelWrap::File(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  (void)Open(env);
  throw MakeError(env, "not_supported",
                  "Model.file() needs a client library with repository support");
}
// ---- end repositories -------------------------------------------------------

Napi::Value ModelWrap::Release(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (!model_) return env.Undefined();
  const std::shared_ptr<Model> m = std::move(model_);
  // With views alive, the last of them releases the handle when collected.
  if (m.use_count() == 1) Guard(env, [&] { m->release(); });
  return env.Undefined();
}

Napi::Value ModelWrap::Released(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !model_);
}

Napi::Value ModelWrap::Held(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !weak_.expired());
}

// The broker's handle now (a reconnect replaces it); 0 after release().
Napi::Value ModelWrap::Handle(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), model_ ? static_cast<double>(model_->handle()) : 0.0);
}

}  // namespace modelpool::node
