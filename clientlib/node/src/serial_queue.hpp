// File: clientlib/node/src/serial_queue.hpp
//
// Runs the client's blocking calls (connect, acquire) off the JavaScript
// thread and settles a Promise with each result, so the event loop never
// waits for the broker, a model load or a reconnect.
//
// A SerialQueue runs its jobs one at a time, in order, on a thread of its
// own that exists only while jobs are queued. One queue per Client: the C++
// client serializes a connection's requests anyway, so a second thread would
// only wait on the first, and no libuv pool thread (fs, dns, crypto) is held
// by a slow load. Each job holds a thread-safe function, which keeps the
// event loop alive until its Promise is settled; an idle queue holds nothing.
//
// Thread safety: Run() is called on the JavaScript thread of one
// environment. If that environment goes away while a job runs (a Worker
// terminated), the job's result is dropped on the queue's thread.
#ifndef MODELPOOL_CLIENTLIB_NODE_SRC_SERIAL_QUEUE_HPP_
#define MODELPOOL_CLIENTLIB_NODE_SRC_SERIAL_QUEUE_HPP_

#include <napi.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace modelpool::node {

// Turns a finished job's result into the value the Promise resolves with; on
// the JavaScript thread. May throw modelpool::Error (the Promise rejects with
// a ModelpoolError) or Napi::Error.
using Settle = std::function<Napi::Value(Napi::Env)>;
// The blocking part, on the queue's thread; must not touch JavaScript
// values. May throw modelpool::Error.
using Work = std::function<Settle()>;

class SerialQueue : public std::enable_shared_from_this<SerialQueue> {
 public:
  static std::shared_ptr<SerialQueue> Create();

  // Queues `work`; returns the Promise its result settles.
  Napi::Promise Run(Napi::Env env, Work work);

  struct Job;  // defined in the .cc (public for its thread-safe function)

 private:
  SerialQueue() = default;
  void Drain();  // the queue's thread: runs jobs until none is left

  std::mutex mu_;
  std::deque<std::unique_ptr<Job>> jobs_;  // guarded by mu_
  bool running_ = false;                   // guarded by mu_: a thread drains jobs_
};

}  // namespace modelpool::node

#endif  // MODELPOOL_CLIENTLIB_NODE_SRC_SERIAL_QUEUE_HPP_
