// One Init function per binding/napi/*.cc file; addon.cc calls them all.
#pragma once
#include <napi.h>

namespace koner::napi {

void InitRuntime(Napi::Env env, Napi::Object exports);
void InitCrf(Napi::Env env, Napi::Object exports);
void InitIo(Napi::Env env, Napi::Object exports);
void InitModel(Napi::Env env, Napi::Object exports);
void InitDist(Napi::Env env, Napi::Object exports);
void InitTrain(Napi::Env env, Napi::Object exports);

}  // namespace koner::napi
