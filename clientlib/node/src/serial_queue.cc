// File: clientlib/node/src/serial_queue.cc
//
// A job goes back to the JavaScript thread through its own thread-safe
// function. The teardown of an environment (a Worker terminated) deletes
// every thread-safe function, whatever threads still hold one: Node-API
// allows no thread to touch it once its finalizer has run. So each job's
// function has a Handoff that its finalizer closes, and the queue's thread
// calls or releases the function only while holding the Handoff open.
#include "serial_queue.hpp"

#include <exception>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "addon.hpp"

namespace modelpool::node {
namespace {

struct Handoff {
  std::mutex mu;
  bool open = true;  // guarded by mu: false once the function's finalizer ran
};

void SettleOnJsThread(Napi::Env env, Napi::Function, Handoff*, SerialQueue::Job* job);
void CloseHandoff(Napi::Env, std::shared_ptr<Handoff>* handoff, Handoff*);

using Tsfn = Napi::TypedThreadSafeFunction<Handoff, SerialQueue::Job, &SettleOnJsThread>;

}  // namespace

struct SerialQueue::Job {
  Job(Napi::Env env, Work w)
      : work(std::move(w)),
        deferred(Napi::Promise::Deferred::New(env)),
        handoff(std::make_shared<Handoff>()),
        tsfn(Tsfn::New(env, "modelpool", 0, 1, handoff.get(), CloseHandoff,
                       new std::shared_ptr<Handoff>(handoff))) {
  }  // NOLINT(cppcoreguidelines-owning-memory): CloseHandoff deletes it

  Work work;
  Napi::Promise::Deferred deferred;
  std::shared_ptr<Handoff> handoff;
  Tsfn tsfn;
  // The outcome, written on the queue's thread before the job is handed back.
  Settle settle;
  std::optional<ErrorCode> code;  // set when work threw
  std::string message;
};

namespace {

void CloseHandoff(Napi::Env, std::shared_ptr<Handoff>* handoff, Handoff*) {
  {
    const std::lock_guard lock((*handoff)->mu);
    (*handoff)->open = false;
  }
  delete handoff;  // NOLINT(cppcoreguidelines-owning-memory)
}

void SettleOnJsThread(Napi::Env env, Napi::Function, Handoff*, SerialQueue::Job* raw) {
  const std::unique_ptr<SerialQueue::Job> job(raw);
  if (env == nullptr) return;  // the environment is being torn down
  // Nothing may leave this function: node-addon-api 5 (Debian bookworm's)
  // lets an exception from here through into Node, which aborts the process.
  // Settling fails only in a Worker being terminated (Node 18 still calls
  // here then), where nothing waits for the Promise any more: the job is
  // dropped.
  try {
    const Napi::HandleScope scope(env);
    try {
      if (job->code) throw Error(*job->code, job->message);
      job->deferred.Resolve(job->settle(env));
    } catch (const Error& e) {
      job->deferred.Reject(MakeError(env, e).Value());
    } catch (const Napi::Error& e) {
      job->deferred.Reject(e.Value());
    }
  } catch (const Napi::Error&) {  // NOLINT(bugprone-empty-catch): see above
  }
}

// Runs `job` unless its environment is gone; false when it is (the job is
// dropped here, on the queue's thread).
bool RunAndHandBack(std::unique_ptr<SerialQueue::Job> job) {
  const std::shared_ptr<Handoff> handoff = job->handoff;
  {
    const std::lock_guard lock(handoff->mu);
    if (!handoff->open) return false;
  }
  try {
    job->settle = job->work();
  } catch (const Error& e) {
    job->code = e.code();
    job->message = e.what();
  } catch (const std::exception& e) {
    job->code = ErrorCode::kInternal;
    job->message = e.what();
  }
  job->work = nullptr;  // drops what the work captured, here rather than on the JS thread
  Tsfn tsfn = job->tsfn;
  const std::lock_guard lock(handoff->mu);
  if (!handoff->open) return false;
  if (tsfn.BlockingCall(job.get()) != napi_ok) {
    return false;  // napi_closing: the call gave up our use of the function
  }
  static_cast<void>(job.release());  // owned by SettleOnJsThread now
  tsfn.Release();
  return true;
}

// Drops a job that will not run, giving back its use of the function.
void Drop(std::unique_ptr<SerialQueue::Job> job) {
  const std::shared_ptr<Handoff> handoff = job->handoff;
  Tsfn tsfn = job->tsfn;
  job.reset();
  const std::lock_guard lock(handoff->mu);
  if (handoff->open) tsfn.Release();
}

}  // namespace

std::shared_ptr<SerialQueue> SerialQueue::Create() {
  return std::shared_ptr<SerialQueue>(new SerialQueue());
}

Napi::Promise SerialQueue::Run(Napi::Env env, Work work) {
  auto job = std::make_unique<Job>(env, std::move(work));
  Napi::Promise promise = job->deferred.Promise();
  const std::lock_guard lock(mu_);
  jobs_.push_back(std::move(job));
  if (running_) return promise;
  try {
    std::thread([self = shared_from_this()] { self->Drain(); }).detach();
    running_ = true;
  } catch (const std::system_error& e) {
    // No thread: the queue was empty before, so the job is the only one.
    const std::unique_ptr<Job> failed = std::move(jobs_.front());
    jobs_.clear();
    failed->tsfn.Release();
    failed->deferred.Reject(
        MakeError(env, "internal", std::string("cannot start a thread: ") + e.what()).Value());
  }
  return promise;
}

void SerialQueue::Drain() {
  bool env_gone = false;  // once a job could not be handed back, the rest are dropped
  for (;;) {
    std::unique_ptr<Job> job;
    {
      const std::lock_guard lock(mu_);
      if (jobs_.empty()) {
        running_ = false;
        return;
      }
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    if (env_gone) {
      Drop(std::move(job));
    } else {
      env_gone = !RunAndHandBack(std::move(job));
    }
  }
}

}  // namespace modelpool::node
