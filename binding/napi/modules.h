// One Init function per binding/napi/*.cc file; addon.cc calls them all. Entry points that exist
// only for the tests go on `testing` (the addon's `testing` object), outside koner's contract.
#pragma once
#include <napi.h>

namespace koner::napi {

void InitRuntime(Napi::Env env, Napi::Object exports, Napi::Object testing);
void InitCrf(Napi::Env env, Napi::Object exports, Napi::Object testing);
void InitIo(Napi::Env env, Napi::Object exports);
void InitModel(Napi::Env env, Napi::Object exports);
void InitDist(Napi::Env env, Napi::Object exports);
void InitTrain(Napi::Env env, Napi::Object exports);

}  // namespace koner::napi
