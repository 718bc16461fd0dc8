// File: clientlib/node/src/addon.hpp
//
// What the parts of the Node addon share: the per-environment data (the
// classes it made and the ModelpoolError class lib/errors.js hands it), and
// the translation of modelpool::Error into a JavaScript ModelpoolError.
//
// Context-aware: nothing lives in statics. Each environment (the main
// thread, every worker_threads Worker) that loads the addon gets its own
// Instance, deleted when that environment is torn down.
#ifndef MODELPOOL_CLIENTLIB_NODE_SRC_ADDON_HPP_
#define MODELPOOL_CLIENTLIB_NODE_SRC_ADDON_HPP_

#include <napi.h>

#include <string_view>

#include "modelpool/client.hpp"

namespace modelpool::node {

struct Instance {
  Napi::FunctionReference error_class;   // ModelpoolError(message, code)
  Napi::FunctionReference client_class;  // NativeClient
  Napi::FunctionReference model_class;   // NativeModel
};

Instance& GetInstance(Napi::Env env);

// A ModelpoolError with `code` (a protocol spelling, or a binding-only code
// such as "not_supported") and `message`, ready to throw or reject with.
Napi::Error MakeError(Napi::Env env, std::string_view code, std::string_view message);
inline Napi::Error MakeError(Napi::Env env, const Error& e) {
  return MakeError(env, e.code_name(), e.what());
}

// Runs `f` (a callback body), turning a modelpool::Error it throws into a
// thrown ModelpoolError.
template <typename F>
auto Guard(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    throw MakeError(env, e);
  }
}

}  // namespace modelpool::node

#endif  // MODELPOOL_CLIENTLIB_NODE_SRC_ADDON_HPP_
