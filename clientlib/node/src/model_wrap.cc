// File: clientlib/node/src/model_wrap.cc
#include "model_wrap.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "addon.hpp"

namespace modelpool::node {
namespace {

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

// The bytes of each of m.files(), in that order.
std::vector<std::span<const std::byte>> FileSpans(const Model& m) {
  std::vector<std::span<const std::byte>> out;
  out.reserve(m.files().size());
  for (const FileInfo& f : m.files()) out.push_back(m.file(f.name));
  return out;
}

// Whether `inner` lies in `outer` (an empty `inner` may sit at its end).
bool Within(std::span<const std::byte> outer, std::span<const std::byte> inner) {
  const auto begin = reinterpret_cast<std::uintptr_t>(outer.data());
  const auto at = reinterpret_cast<std::uintptr_t>(inner.data());
  return at >= begin && at - begin <= outer.size() && inner.size() <= outer.size() - (at - begin);
}

// The index in `files` of the file that holds `data`, trying `hint` first
// (the tensors come file by file); files.size() if none does.
std::size_t FileOf(const std::vector<std::span<const std::byte>>& files,
                   std::span<const std::byte> data, std::size_t hint) {
  if (hint < files.size() && Within(files[hint], data)) return hint;
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (Within(files[i], data)) return i;
  }
  return files.size();
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
                                     InstanceMethod<&ModelWrap::FileBuffer>("fileBuffer"),
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
  o.Set("format", std::string(modelpool::format_name(m.format())));
  o.Set("commit", m.commit());
  // The index in files() of the file that bytes() views (-1: none), so that
  // lib/index.js makes one ArrayBuffer for both.
  const std::span<const std::byte> bytes = m.bytes();
  const std::vector<std::span<const std::byte>> files = Guard(env, [&] { return FileSpans(m); });
  double bytes_file = -1;
  for (std::size_t i = 0; i < files.size() && bytes_file < 0; ++i) {
    if (files[i].data() == bytes.data() && files[i].size() == bytes.size()) {
      bytes_file = static_cast<double>(i);
    }
  }
  o.Set("bytesFile", bytes_file);
  return o;
}

Napi::Value ModelWrap::Buffer(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  return ExternalBuffer(env, model_, Open(env).bytes());
}

// slice(file, offset, length): an ArrayBuffer over bytes [offset, offset +
// length) of files()[file], for a tensor whose offset does not suit its
// element size.
Napi::Value ModelWrap::Slice(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const std::span<const std::byte> all = FileBytes(env, info[0]);
  const std::uint64_t offset = ToIndex(info[1], "offset");
  const std::uint64_t length = ToIndex(info[2], "length");
  if (offset > all.size() || length > all.size() - offset) {
    throw Napi::RangeError::New(env, "slice out of the file's bytes");
  }
  return ExternalBuffer(env, model_, all.subspan(offset, length));
}

std::span<const std::byte> ModelWrap::FileBytes(Napi::Env env, const Napi::Value& index) const {
  const Model& m = Open(env);
  const std::uint64_t i = ToIndex(index, "file");
  if (i >= m.files().size()) throw Napi::RangeError::New(env, "no such file index");
  return Guard(env, [&] { return m.file(m.files()[i].name); });
}

Napi::Value ModelWrap::TensorInfos(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const Model& m = Open(env);
    const std::vector<Tensor>& tensors = m.tensors();
    const std::vector<std::span<const std::byte>> files = FileSpans(m);
    Napi::Array out = Napi::Array::New(env, tensors.size());
    std::size_t file = 0;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const Tensor& t = tensors[i];
      file = FileOf(files, t.data, file);
      if (file == files.size()) {
        throw MakeError(env, "internal", "tensor '" + t.name + "' lies in none of the files");
      }
      Napi::Array shape = Napi::Array::New(env, t.shape.size());
      for (std::size_t d = 0; d < t.shape.size(); ++d) {
        shape.Set(static_cast<std::uint32_t>(d), static_cast<double>(t.shape[d]));
      }
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", t.name);
      o.Set("dtype", t.dtype);
      o.Set("shape", shape);
      o.Set("file", static_cast<double>(file));
      o.Set("offset", static_cast<double>(t.data.data() - files[file].data()));
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

// The files of the model, in Model::files() order.
Napi::Value ModelWrap::Files(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const std::vector<FileInfo>& files = Open(env).files();
  Napi::Array out = Napi::Array::New(env, files.size());
  for (std::size_t i = 0; i < files.size(); ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", files[i].name);
    o.Set("size", static_cast<double>(files[i].size));
    o.Set("format", std::string(modelpool::format_name(files[i].format)));
    o.Set("weights", files[i].weights);
    out.Set(static_cast<std::uint32_t>(i), o);
  }
  return out;
}

// fileBuffer(index): an ArrayBuffer over the bytes of files()[index].
Napi::Value ModelWrap::FileBuffer(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  return ExternalBuffer(env, model_, FileBytes(env, info[0]));
}

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
