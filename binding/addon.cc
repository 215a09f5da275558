// Module registration only: each binding/napi/*.cc adds its functions to the exports.
#include <napi.h>

#include "napi/modules.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  koner::napi::InitRuntime(env, exports);
  koner::napi::InitCrf(env, exports);
  koner::napi::InitIo(env, exports);
  koner::napi::InitModel(env, exports);
  koner::napi::InitDist(env, exports);
  koner::napi::InitTrain(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(koner, Init)
