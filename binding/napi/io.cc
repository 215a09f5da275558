// Weights I/O for JS: list a checkpoint's tensors, read some as raw bytes, and convert any
// checkpoint into a model.safetensors (renamed, converted, with initialised extra tensors).
// File work runs on worker threads; arguments are validated on the JS thread.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "io/checkpoint.h"
#include "io/file.h"
#include "io/quantized_rows.h"
#include "io/safetensors.h"
#include "napi/args.h"
#include "napi/errors.h"
#include "napi/modules.h"
#include "napi/tensors.h"
#include "napi/worker.h"

namespace koner::napi {
namespace {

struct DtypeEntry {
  const char* name;
  torch::ScalarType type;
};

const DtypeEntry kDtypeNames[] = {
    {"float32", torch::kFloat32}, {"float16", torch::kFloat16}, {"bfloat16", torch::kBFloat16},
    {"float64", torch::kFloat64}, {"int64", torch::kInt64},     {"int32", torch::kInt32},
    {"int16", torch::kInt16},     {"int8", torch::kInt8},       {"uint8", torch::kUInt8},
    {"bool", torch::kBool},
};

std::string NameOf(torch::ScalarType type) {
  for (const auto& d : kDtypeNames) {
    if (d.type == type) return d.name;
  }
  return c10::toString(type);
}

std::string NonEmptyArg(const Napi::Value& value, const std::string& what) {
  std::string s = StringArg(value, what);
  if (s.empty()) throw TypeError(what + ": must not be empty");
  return s;
}

Napi::Array ShapeToJs(Napi::Env env, const std::vector<int64_t>& shape) {
  auto array = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    array.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(shape[i])));
  }
  return array;
}

// inspectCheckpoint(path) -> Promise<{ name, shape, dtype }[]>
Napi::Value InspectCheckpoint(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    std::string path = NonEmptyArg(info[0], "path");
    return PromiseWorker<std::vector<io::TensorInfo>>::Start(
        info.Env(), [path] { return io::InspectCheckpoint(path).tensors; },
        [](Napi::Env env, std::vector<io::TensorInfo>& tensors) -> Napi::Value {
          auto array = Napi::Array::New(env, tensors.size());
          for (size_t i = 0; i < tensors.size(); ++i) {
            auto entry = Napi::Object::New(env);
            entry.Set("name", tensors[i].name);
            entry.Set("shape", ShapeToJs(env, tensors[i].shape));
            entry.Set("dtype", NameOf(tensors[i].dtype));
            array.Set(static_cast<uint32_t>(i), entry);
          }
          return array;
        });
  });
}

// readTensors(path, names | null, asFloat32?) -> Promise<Record<name, { shape, dtype, data }>>,
// data being the tensor's little-endian bytes (Uint8Array) in its dtype, or float32 when
// asFloat32 converts floating tensors.
Napi::Value ReadTensors(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    std::string path = NonEmptyArg(info[0], "path");
    std::optional<std::set<std::string>> names;
    if (!info[1].IsNull() && !info[1].IsUndefined()) {
      if (!info[1].IsArray()) throw TypeError("names: expected an array of strings or null");
      auto array = info[1].As<Napi::Array>();
      names.emplace();
      for (uint32_t i = 0; i < array.Length(); ++i) {
        names->insert(NonEmptyArg(array.Get(i), "names[" + std::to_string(i) + "]"));
      }
    }
    const bool asFloat32 = info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
    using Tensors = std::map<std::string, torch::Tensor>;
    return PromiseWorker<Tensors>::Start(
        info.Env(),
        [path, names, asFloat32] {
          std::function<bool(const std::string&)> want;
          if (names) want = [&](const std::string& n) { return names->count(n) > 0; };
          Tensors tensors = io::ReadCheckpoint(path, want).tensors;
          if (names) {
            for (const auto& n : *names) {
              if (!tensors.count(n)) io::FileError(path, "no tensor named \"" + n + "\"");
            }
          }
          for (auto& [name, t] : tensors) {
            if (asFloat32 && t.is_floating_point()) t = t.to(torch::kFloat32);
            t = t.contiguous();
          }
          return tensors;
        },
        [](Napi::Env env, Tensors& tensors) -> Napi::Value {
          auto out = Napi::Object::New(env);
          for (auto& [name, t] : tensors) {
            // The bytes as a uint8 view of the same storage: JS gets the memory without a copy.
            const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
            auto raw = torch::empty({0}, torch::kUInt8)
                           .set_(t.storage(), t.storage_offset() * t.element_size(), {bytes}, {1});
            auto entry = Napi::Object::New(env);
            entry.Set("shape", ShapeToJs(env, t.sizes().vec()));
            entry.Set("dtype", NameOf(t.scalar_type()));
            entry.Set("data", TypedArrayOf(env, raw));
            out.Set(name, entry);
          }
          return out;
        });
  });
}

enum class Init { Normal, Uniform, Zeros, Ones, Values };

struct Extra {
  std::string name;
  std::vector<int64_t> shape;
  Init init;
  double std = 0.02, bound = 0.1;
  torch::Tensor values;
};

struct ConvertArgs {
  std::string src, dst;
  std::vector<std::pair<std::string, std::string>> renames;
  std::optional<torch::ScalarType> dtype;
  // dtype 'int8' or 'int4': large matrices as int8 rows or int4 groups (io/quantized_rows.h),
  // the other floating tensors as `dtype` (float16).
  std::optional<io::RowBits> rowBits;
  std::vector<Extra> extra;
  std::map<std::string, std::string> metadata{{"format", "pt"}};
  std::optional<uint64_t> seed;
};

double PositiveNumber(const Napi::Object& o, const char* key, double fallback,
                      const std::string& what) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  double x = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(x > 0) || !std::isfinite(x)) throw TypeError(what + "." + key + ": expected a number > 0");
  return x;
}

ConvertArgs ReadConvertArgs(const Napi::CallbackInfo& info) {
  ConvertArgs a;
  a.src = NonEmptyArg(info[0], "src");
  a.dst = NonEmptyArg(info[1], "dst");
  if (!info[2].IsArray()) throw TypeError("renames: expected an array of [from, to] pairs");
  auto renames = info[2].As<Napi::Array>();
  std::set<std::string> targets;
  for (uint32_t i = 0; i < renames.Length(); ++i) {
    const std::string what = "renames[" + std::to_string(i) + "]";
    Napi::Value pair = renames.Get(i);
    if (!pair.IsArray() || pair.As<Napi::Array>().Length() != 2) {
      throw TypeError(what + ": expected a [from, to] pair of strings");
    }
    auto p = pair.As<Napi::Array>();
    a.renames.emplace_back(NonEmptyArg(p.Get(0u), what + "[0]"),
                           NonEmptyArg(p.Get(1u), what + "[1]"));
    if (!targets.insert(a.renames.back().second).second) {
      throw TypeError(what + ": \"" + a.renames.back().second + "\" is the target of two renames");
    }
  }
  Napi::Value optionsValue = info[3];
  if (optionsValue.IsUndefined() || optionsValue.IsNull()) return a;
  if (!optionsValue.IsObject()) throw TypeError("options: expected an object");
  auto options = optionsValue.As<Napi::Object>();

  Napi::Value dtype = options.Get("dtype");
  if (!dtype.IsUndefined()) {
    const std::string d = dtype.IsString() ? dtype.As<Napi::String>().Utf8Value() : "";
    if (d == "float32") {
      a.dtype = torch::kFloat32;
    } else if (d == "float16") {
      a.dtype = torch::kFloat16;
    } else if (d == "bfloat16") {
      a.dtype = torch::kBFloat16;
    } else if (d == "int8" || d == "int4") {
      a.dtype = torch::kFloat16;
      a.rowBits = d == "int8" ? io::RowBits::Int8 : io::RowBits::Int4;
    } else {
      throw TypeError("options.dtype: expected 'float32', 'float16', 'bfloat16', 'int8' or 'int4'");
    }
  }

  Napi::Value seed = options.Get("seed");
  if (!seed.IsUndefined()) {
    double s = seed.IsNumber() ? seed.As<Napi::Number>().DoubleValue() : -1;
    if (!(s >= 0) || std::floor(s) != s || s > 9.0e15) {
      throw TypeError("options.seed: expected a non-negative integer");
    }
    a.seed = static_cast<uint64_t>(s);
  }

  Napi::Value extra = options.Get("extra");
  if (!extra.IsUndefined()) {
    if (!extra.IsArray()) throw TypeError("options.extra: expected an array");
    auto list = extra.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); ++i) {
      const std::string what = "options.extra[" + std::to_string(i) + "]";
      Napi::Value item = list.Get(i);
      if (!item.IsObject()) throw TypeError(what + ": expected an object");
      auto o = item.As<Napi::Object>();
      Extra e;
      e.name = NonEmptyArg(o.Get("name"), what + ".name");
      if (targets.count(e.name)) {
        throw TypeError(what + ": \"" + e.name + "\" is also the target of a rename");
      }
      targets.insert(e.name);
      e.shape = ShapeArg(o.Get("shape"), what + ".shape");
      Napi::Value init = o.Get("init");
      const std::string kind = init.IsString() ? init.As<Napi::String>().Utf8Value() : "";
      if (kind == "normal") {
        e.init = Init::Normal;
        e.std = PositiveNumber(o, "std", 0.02, what);
      } else if (kind == "uniform") {
        e.init = Init::Uniform;
        e.bound = PositiveNumber(o, "bound", 0.1, what);
      } else if (kind == "zeros") {
        e.init = Init::Zeros;
      } else if (kind == "ones") {
        e.init = Init::Ones;
      } else if (kind == "values") {
        e.init = Init::Values;
        e.values = FloatTensorArg(o.Get("values"), e.shape, what + ".values");
      } else {
        throw TypeError(what + ".init: expected 'normal', 'uniform', 'zeros', 'ones' or 'values'");
      }
      a.extra.push_back(std::move(e));
    }
  }

  Napi::Value metadata = options.Get("metadata");
  if (!metadata.IsUndefined()) {
    if (!metadata.IsObject()) throw TypeError("options.metadata: expected an object of strings");
    auto m = metadata.As<Napi::Object>();
    auto keys = m.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
      Napi::Value v = m.Get(key);
      if (!v.IsString()) throw TypeError("options.metadata." + key + ": expected a string");
      a.metadata[key] = v.As<Napi::String>().Utf8Value();
    }
  }
  return a;
}

void Convert(const ConvertArgs& a) {
  std::set<std::string> wanted;
  for (const auto& r : a.renames) wanted.insert(r.first);
  io::Checkpoint source =
      io::ReadCheckpoint(a.src, [&](const std::string& n) { return wanted.count(n) > 0; });
  std::map<std::string, torch::Tensor> out;
  for (const auto& [from, to] : a.renames) {
    auto it = source.tensors.find(from);
    if (it == source.tensors.end()) io::FileError(a.src, "no tensor named \"" + from + "\"");
    torch::Tensor t = it->second;
    // Matrices to be quantized are rounded once, from the source's own precision.
    if (a.dtype && t.is_floating_point() && !a.rowBits) t = t.to(*a.dtype);
    out.emplace(to, t);
  }
  c10::optional<at::Generator> generator;
  if (a.seed) generator = at::make_generator<at::CPUGeneratorImpl>(*a.seed);
  const torch::ScalarType dtype = a.dtype.value_or(torch::kFloat32);
  for (const Extra& e : a.extra) {
    // Drawn in float32 whatever the target dtype, so a seed gives the same values in each.
    torch::Tensor t;
    switch (e.init) {
      case Init::Normal:
        t = torch::empty(e.shape, torch::kFloat32).normal_(0.0, e.std, generator);
        break;
      case Init::Uniform:
        t = torch::empty(e.shape, torch::kFloat32).uniform_(-e.bound, e.bound, generator);
        break;
      case Init::Zeros:
        t = torch::zeros(e.shape, torch::kFloat32);
        break;
      case Init::Ones:
        t = torch::ones(e.shape, torch::kFloat32);
        break;
      case Init::Values:
        t = e.values;
        break;
    }
    out.emplace(e.name, a.rowBits ? t : t.to(dtype));
  }
  if (a.rowBits) io::QuantizeRows(out, *a.rowBits, dtype);
  io::WriteSafetensors(a.dst, out, a.metadata);
}

// convertCheckpoint(src, dst, renames, options?) -> Promise<void>
Napi::Value ConvertCheckpoint(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    ConvertArgs args = ReadConvertArgs(info);
    return PromiseWorker<void>::Start(info.Env(), [args] { Convert(args); });
  });
}

}  // namespace

void InitIo(Napi::Env env, Napi::Object exports) {
  exports.Set("inspectCheckpoint", Napi::Function::New(env, InspectCheckpoint));
  exports.Set("readTensors", Napi::Function::New(env, ReadTensors));
  exports.Set("convertCheckpoint", Napi::Function::New(env, ConvertCheckpoint));
}

}  // namespace koner::napi
