// Reading JS arguments, once for every binding/napi file: each reader checks its value and throws
// a TypeError (napi/errors.h) that names the argument (`what`) and says what it got.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "napi/errors.h"

namespace koner::napi {

// A value in words for an error message: its text when short and scalar, else its kind.
std::string Describe(const Napi::Value& v);

std::string StringArg(const Napi::Value& v, const std::string& what);
double NumberArg(const Napi::Value& v, const std::string& what);
bool BooleanArg(const Napi::Value& v, const std::string& what);
// An array whose items `read(item, "what[i]")` reads (and names in its errors).
template <typename Read>
auto ListArg(const Napi::Value& v, const std::string& what, Read read)
    -> std::vector<decltype(read(v, what))> {
  if (!v.IsArray()) throw TypeError(what + ": must be an array, got " + Describe(v));
  const auto array = v.As<Napi::Array>();
  std::vector<decltype(read(v, what))> out;
  out.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    out.push_back(read(array.Get(i), what + "[" + std::to_string(i) + "]"));
  }
  return out;
}

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
