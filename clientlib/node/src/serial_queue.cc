// File: clientlib/node/src/serial_queue.cc
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

void SettleOnJsThread(Napi::Env env, Napi::Function, std::nullptr_t*, SerialQueue::Job* job);

using Tsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, SerialQueue::Job, &SettleOnJsThread>;

}  // namespace

struct SerialQueue::Job {
  Job(Napi::Env env, Work w)
      : work(std::move(w)),
        deferred(Napi::Promise::Deferred::New(env)),
        tsfn(Tsfn::New(env, "modelpool", 0, 1)) {}

  Work work;
  Napi::Promise::Deferred deferred;
  Tsfn tsfn;
  // The outcome, written on the queue's thread before the job is handed back.
  Settle settle;
  std::optional<ErrorCode> code;  // set when work threw
  std::string message;
};

namespace {

void SettleOnJsThread(Napi::Env env, Napi::Function, std::nullptr_t*, SerialQueue::Job* raw) {
  const std::unique_ptr<SerialQueue::Job> job(raw);
  if (env == nullptr) return;  // the environment is being torn down
  const Napi::HandleScope scope(env);
  try {
    if (job->code) throw Error(*job->code, job->message);
    job->deferred.Resolve(job->settle(env));
  } catch (const Error& e) {
    job->deferred.Reject(MakeError(env, e).Value());
  } catch (const Napi::Error& e) {
    job->deferred.Reject(e.Value());
  }
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
    SerialQueue::Job* raw = job.release();
    // Fails only while the environment is torn down: drop the result here.
    if (tsfn.BlockingCall(raw) != napi_ok) delete raw;  // NOLINT(cppcoreguidelines-owning-memory)
    tsfn.Release();
  }
}

}  // namespace modelpool::node
