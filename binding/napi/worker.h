// Runs tensor work on libuv's thread pool and settles a Promise: the event loop never waits on
// a tensor. `work` runs off the JS thread and must not touch Napi values; `toJs` runs on it.
// PromiseWorker<void> resolves with undefined and takes no `toJs`.
#pragma once
#include <napi.h>

#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "napi/errors.h"
#include "napi/threads.h"

namespace koner::napi {

template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
  static constexpr bool kVoid = std::is_void_v<Result>;

 public:
  using Work = std::function<Result()>;
  using ToJs = std::conditional_t<
      kVoid, std::nullptr_t,
      std::function<Napi::Value(Napi::Env, std::conditional_t<kVoid, int, Result>&)>>;

  static Napi::Promise Start(Napi::Env env, Work work, ToJs toJs = {}) {
    auto* worker = new PromiseWorker(env, std::move(work), std::move(toJs));
    auto promise = worker->deferred_.Promise();
    worker->Queue();
    return promise;
  }

 protected:
  void Execute() override {
    try {
      ApplyThreads();
      if constexpr (kVoid) {
        work_();
      } else {
        result_.emplace(work_());
      }
    } catch (...) {
      SetError(CurrentExceptionMessage());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    try {
      if constexpr (kVoid) {
        deferred_.Resolve(env.Undefined());
      } else {
        deferred_.Resolve(toJs_(env, *result_));
      }
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(Napi::Error::New(env, CurrentExceptionMessage()).Value());
    }
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  PromiseWorker(Napi::Env env, Work work, ToJs toJs)
      : Napi::AsyncWorker(env, "koner"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        toJs_(std::move(toJs)) {}

  Napi::Promise::Deferred deferred_;
  Work work_;
  ToJs toJs_;
  std::optional<std::conditional_t<kVoid, int, Result>> result_;
};

}  // namespace koner::napi
