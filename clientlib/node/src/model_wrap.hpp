// File: clientlib/node/src/model_wrap.hpp
//
// NativeModel: one acquired modelpool::Model as a JavaScript object (wrapped
// by the Model class of lib/index.js, which users see).
//
// Lifetime: the Model (its broker handle and the segment mapping) is shared
// by this object and by every ArrayBuffer handed out over its bytes; each
// ArrayBuffer is external, and its finalizer drops its share. release()
// drops this object's share at once: with no view alive the handle goes back
// to the broker then; otherwise when the garbage collector has collected the
// last view. A view therefore stays readable after release(). Garbage
// collection of this object drops its share too.
#ifndef MODELPOOL_CLIENTLIB_NODE_SRC_MODEL_WRAP_HPP_
#define MODELPOOL_CLIENTLIB_NODE_SRC_MODEL_WRAP_HPP_

#include <napi.h>

#include <memory>
#include <span>

#include "modelpool/client.hpp"

namespace modelpool::node {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  // A NativeModel owning `model`.
  static Napi::Object New(Napi::Env env, std::shared_ptr<Model> model);

  explicit ModelWrap(const Napi::CallbackInfo& info);

 private:
  const Model& Open(Napi::Env env) const;  // throws stale_handle after release()
  // The bytes of files()[index]; RangeError for an index out of range.
  std::span<const std::byte> FileBytes(Napi::Env env, const Napi::Value& index) const;

  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Buffer(const Napi::CallbackInfo& info);
  Napi::Value Slice(const Napi::CallbackInfo& info);
  Napi::Value TensorInfos(const Napi::CallbackInfo& info);
  Napi::Value MetadataJson(const Napi::CallbackInfo& info);
  Napi::Value Files(const Napi::CallbackInfo& info);
  Napi::Value FileBuffer(const Napi::CallbackInfo& info);
  Napi::Value Release(const Napi::CallbackInfo& info);
  Napi::Value Released(const Napi::CallbackInfo& info);
  Napi::Value Held(const Napi::CallbackInfo& info);
  Napi::Value Handle(const Napi::CallbackInfo& info);

  std::shared_ptr<Model> model_;  // null before New() and after release()
  std::weak_ptr<Model> weak_;     // still set while a view holds the Model
};

}  // namespace modelpool::node

#endif  // MODELPOOL_CLIENTLIB_NODE_SRC_MODEL_WRAP_HPP_
