// File: clientlib/node/src/addon.cc
//
// The module's entry point: per-environment data, the error translation,
// and the exports lib/index.js builds the public API from:
//   init(ModelpoolError)  hands the addon the error class it throws
//   connect(...)          Promise<NativeClient> (see client_wrap.hpp)
//   errorCodes            every code the client library can report
//   version               the library's version
#include "addon.hpp"

#include <string>

#include "client_wrap.hpp"
#include "model_wrap.hpp"

namespace modelpool::node {

Instance& GetInstance(Napi::Env env) { return *env.GetInstanceData<Instance>(); }

Napi::Error MakeError(Napi::Env env, std::string_view code, std::string_view message) {
  const Napi::String msg = Napi::String::New(env, message.data(), message.size());
  const Napi::String code_value = Napi::String::New(env, code.data(), code.size());
  Instance& instance = GetInstance(env);
  if (instance.error_class.IsEmpty()) {  // init() not called: a plain Error with .code
    Napi::Error e = Napi::Error::New(env, std::string(message));
    e.Set("code", code_value);
    return e;
  }
  return {env, instance.error_class.New({msg, code_value})};
}

namespace {

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "init(ModelpoolError)");
  GetInstance(info.Env()).error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Array ErrorCodes(Napi::Env env) {
  Napi::Array codes = Napi::Array::New(env);
  const int last = static_cast<int>(ErrorCode::kInternal);
  for (int c = static_cast<int>(ErrorCode::kBadRequest); c <= last; ++c) {
    codes.Set(codes.Length(), std::string(to_string(static_cast<ErrorCode>(c))));
  }
  return codes;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* instance = new Instance();  // NOLINT(cppcoreguidelines-owning-memory): the env owns it
  env.SetInstanceData(instance);
  instance->client_class = Napi::Persistent(ClientWrap::DefineClass(env));
  instance->model_class = Napi::Persistent(ModelWrap::DefineClass(env));
  exports.Set("init", Napi::Function::New<SetErrorClass>(env, "init"));
  exports.Set("connect", Napi::Function::New<&ClientWrap::Connect>(env, "connect"));
  exports.Set("errorCodes", ErrorCodes(env));
  exports.Set("version", MODELPOOL_VERSION);
  return exports;
}

}  // namespace
}  // namespace modelpool::node

namespace {
// NODE_API_MODULE pastes its argument into a name: it takes no qualified one.
Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return modelpool::node::Init(env, exports);
}
}  // namespace

NODE_API_MODULE(modelpool, InitAddon)
