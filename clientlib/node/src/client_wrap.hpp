// File: clientlib/node/src/client_wrap.hpp
//
// NativeClient: a modelpool::Client as a JavaScript object (wrapped by the
// Client class of lib/index.js). connect() and acquire() return Promises;
// the blocking calls run on the Client's SerialQueue, never on the event
// loop. A Model stays valid after its Client is closed or collected.
#ifndef MODELPOOL_CLIENTLIB_NODE_SRC_CLIENT_WRAP_HPP_
#define MODELPOOL_CLIENTLIB_NODE_SRC_CLIENT_WRAP_HPP_

#include <napi.h>

#include <memory>

#include "modelpool/client.hpp"
#include "serial_queue.hpp"

namespace modelpool::node {

class ClientWrap : public Napi::ObjectWrap<ClientWrap> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  // connect(socket: string | undefined, reconnectTimeoutMs: number |
  // undefined, releaseRing: boolean | undefined): Promise<NativeClient>.
  static Napi::Value Connect(const Napi::CallbackInfo& info);

  explicit ClientWrap(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<Client> Open(Napi::Env env) const;  // unavailable after close()

  // acquire(name: string, waitMs: number | undefined, populate: boolean)
  Napi::Value Acquire(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Pool(const Napi::CallbackInfo& info);
  Napi::Value SegmentPath(const Napi::CallbackInfo& info);
  Napi::Value PageSize(const Napi::CallbackInfo& info);

  std::shared_ptr<Client> client_;  // null before Connect() settles and after close()
  std::shared_ptr<SerialQueue> queue_;
};

}  // namespace modelpool::node

#endif  // MODELPOOL_CLIENTLIB_NODE_SRC_CLIENT_WRAP_HPP_
