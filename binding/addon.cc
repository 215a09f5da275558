// Module registration only: each binding/napi/*.cc adds its functions to the exports, and its
// test-only ones to `exports.testing`.
#include <napi.h>

#include "napi/modules.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto testing = Napi::Object::New(env);
  koner::napi::InitRuntime(env, exports, testing);
  koner::napi::InitCrf(env, exports, testing);
  koner::napi::InitIo(env, exports);
  koner::napi::InitModel(env, exports);
  koner::napi::InitDist(env, exports);
  koner::napi::InitTrain(env, exports);
  exports.Set("testing", testing);
  return exports;
}

}  // namespace

NODE_API_MODULE(koner, Init)
