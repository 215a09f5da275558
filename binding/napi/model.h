// The state behind a JS `Model` (binding/napi/model.cc), shared with native code that takes a
// Model argument (the Trainer, binding/napi/train.cc): whoever touches the module takes its lock.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "model/config.h"
#include "model/ner_model.h"

namespace koner::napi {

inline constexpr const char* kDisposedMessage =
    "this model has been disposed (its memory is freed); load it again to use it";

struct ModelState {
  explicit ModelState(const model::ModelConfig& config) : config(config), model(config) {}
  // Never changes: argument checks read it on the JS thread, even after dispose.
  const model::ModelConfig config;
  // Readers: inference, saving; writers: loading, placement, seeding, training steps, dispose.
  std::shared_mutex mutex;
  // Empty once disposed (under the lock): whoever holds the lock checks before use.
  model::NerModel model;
  // Set on the JS thread by dispose(), so that later calls fail at once, before any work.
  std::atomic<bool> disposed{false};
  std::mutex placementMutex;  // guards the two names below, read by placement()
  std::string deviceName = "cpu", dtypeName = "float32";
};

// The state of a Model object; throws a TypeError naming `what` when `value` is not one. Work that
// outlives the call holds the pointer, so the model stays alive even if JS drops the object.
std::shared_ptr<ModelState> SharedModelState(Napi::Value value, const std::string& what = "model");

}  // namespace koner::napi
