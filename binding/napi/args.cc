#include "napi/args.h"

#include <cmath>
#include <stdexcept>

#include "napi/errors.h"

namespace koner::napi {

std::string Describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsString()) {
    const std::string s = v.As<Napi::String>().Utf8Value();
    return s.size() > 60 ? "a string of " + std::to_string(s.size()) + " bytes" : "\"" + s + "\"";
  }
  if (v.IsNumber() || v.IsBoolean()) return v.ToString().Utf8Value();
  if (v.IsArray()) return "an array";
  if (v.IsTypedArray()) return "a typed array";
  if (v.IsFunction()) return "a function";
  return "an object";
}

std::string StringArg(const Napi::Value& v, const std::string& what) {
  if (!v.IsString()) throw TypeError(what + ": expected a string, got " + Describe(v));
  return v.As<Napi::String>().Utf8Value();
}

double NumberArg(const Napi::Value& v, const std::string& what) {
  if (!v.IsNumber()) throw TypeError(what + ": must be a number, got " + Describe(v));
  return v.As<Napi::Number>().DoubleValue();
}

bool BooleanArg(const Napi::Value& v, const std::string& what) {
  if (!v.IsBoolean()) throw TypeError(what + ": expected a boolean, got " + Describe(v));
  return v.As<Napi::Boolean>().Value();
}

std::vector<std::string> StringListArg(const Napi::Value& v, const std::string& what) {
  return ListArg(v, what, StringArg);
}

int64_t IntegerArg(const Napi::Value& v, const std::string& what, double min, double max) {
  const double x = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(x >= min && x <= max) || std::floor(x) != x) {
    const std::string range = max >= 9.0e15
                                  ? ">= " + std::to_string(static_cast<int64_t>(min))
                                  : "from " + std::to_string(static_cast<int64_t>(min)) + " to " +
                                        std::to_string(static_cast<int64_t>(max));
    throw TypeError(what + ": must be an integer " + range + ", got " + Describe(v));
  }
  return static_cast<int64_t>(x);
}

void OnlyKnownKeys(const Napi::Object& object, const std::string& what,
                   std::initializer_list<const char*> known) {
  const Napi::Array keys = object.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string key = keys.Get(i).ToString().Utf8Value();
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    if (!ok) throw TypeError(what + "." + key + ": unknown field");
  }
}

torch::Device ParseDevice(const std::string& name, const std::string& what) {
  if (name == "cpu") return torch::kCPU;
  int64_t index = 0;
  if (name != "cuda") {
    const std::string prefix = "cuda:";
    const std::string digits = name.substr(std::min(prefix.size(), name.size()));
    if (name.compare(0, prefix.size(), prefix) != 0 || digits.empty() || digits.size() > 3 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      throw TypeError(what + ": must be 'cpu', 'cuda' or 'cuda:N', got \"" + name + "\"");
    }
    index = std::stoll(digits);
  }
  if (!torch::cuda::is_available()) {
#ifdef KONER_WITH_CUDA
    const char* why = "no CUDA device is visible";
#else
    const char* why = "this koner was built without CUDA (its LibTorch is CPU-only)";
#endif
    throw std::invalid_argument(what + " \"" + name + "\": CUDA is not available (" + why +
                                "); use 'cpu'");
  }
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (index >= count) {
    throw std::invalid_argument(what + " \"" + name + "\": only " + std::to_string(count) +
                                " CUDA device(s) visible");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

torch::Device DeviceArg(const Napi::Value& v, const std::string& what) {
  return ParseDevice(StringArg(v, what), what);
}

torch::ScalarType DtypeArg(const Napi::Value& v, const std::string& what, bool allowFloat64) {
  const std::string name = StringArg(v, what);
  if (name == "float32") return torch::kFloat32;
  if (name == "float16") return torch::kFloat16;
  if (name == "bfloat16") return torch::kBFloat16;
  if (allowFloat64 && name == "float64") return torch::kFloat64;
  throw TypeError(what + ": must be 'float32', " + (allowFloat64 ? "'float64', " : "") +
                  "'float16' or 'bfloat16', got \"" + name + "\"");
}

const char* DtypeName(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat16:
      return "float16";
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kFloat64:
      return "float64";
    case torch::kQInt8:
      return "int8";
    default:
      return "float32";
  }
}

}  // namespace koner::napi
