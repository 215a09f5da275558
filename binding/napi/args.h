// Reading JS arguments, once for every binding/napi file: each reader checks its value and throws
// a TypeError (napi/errors.h) that names the argument (`what`) and says what it got.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace koner::napi {

// A value in words for an error message: its text when short and scalar, else its kind.
std::string Describe(const Napi::Value& v);

std::string StringArg(const Napi::Value& v, const std::string& what);
double NumberArg(const Napi::Value& v, const std::string& what);
bool BooleanArg(const Napi::Value& v, const std::string& what);
// An array of strings; an entry that is not one is named (`what: entry 3 must be a string`).
std::vector<std::string> StringListArg(const Napi::Value& v, const std::string& what);
// An integer within [min, max].
int64_t IntegerArg(const Napi::Value& v, const std::string& what, double min, double max);

// Throws naming the first key of `object` that is not in `known`.
void OnlyKnownKeys(const Napi::Object& object, const std::string& what,
                   std::initializer_list<const char*> known);

// 'cpu', 'cuda' or 'cuda:N', checked against this build and this machine (CUDA compiled in, a
// device visible, N below the device count). The one parser of device strings in the addon.
torch::Device ParseDevice(const std::string& name, const std::string& what = "device");
torch::Device DeviceArg(const Napi::Value& v, const std::string& what = "device");

// float32 | float16 | bfloat16, plus float64 when `allowFloat64`.
torch::ScalarType DtypeArg(const Napi::Value& v, const std::string& what,
                           bool allowFloat64 = false);
const char* DtypeName(torch::ScalarType t);

}  // namespace koner::napi
