// Runtime facts and settings: LibTorch version, CUDA, threads, the CPU's features; plus, for the
// tests only, a tensor product exposed sync and async (LibTorch errors reach JS from both paths)
// and the thread count a worker thread sees.
#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <cstdint>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "model/cpu_block_cache.h"
#include "model/cpu_features.h"
#include "model/dnnl_ops.h"
#include "napi/args.h"
#include "napi/errors.h"
#include "napi/modules.h"
#include "napi/tensors.h"
#include "napi/threads.h"
#include "napi/worker.h"

namespace koner::napi {
namespace {

Napi::Value Version(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), TORCH_VERSION);
}

Napi::Value CudaAvailable(const Napi::CallbackInfo& info) {
  return Guard(info.Env(),
               [&] { return Napi::Boolean::New(info.Env(), torch::cuda::is_available()); });
}

Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    return Napi::Number::New(info.Env(), static_cast<double>(torch::cuda::device_count()));
  });
}

Napi::Value CompiledWithCuda(const Napi::CallbackInfo& info) {
#ifdef KONER_WITH_CUDA
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// What the CPU computes natively (binding/model/cpu_features.h) and whether this addon runs the
// encoder's inference on oneDNN's primitives.
Napi::Value CpuFeatures(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    const auto& f = model::HostCpu();
    auto out = Napi::Object::New(info.Env());
    out.Set("avx512", f.avx512);
    out.Set("avx512Bf16", f.avx512Bf16);
    out.Set("amxBf16", f.amxBf16);
    out.Set("avx512Vnni", f.avx512Vnni);
    out.Set("amxInt8", f.amxInt8);
    out.Set("onednnPrimitives", model::DnnlBuilt());
    return out;
  });
}

// releaseLargeAllocations(bytes) -> boolean (false where the C library is not glibc): from now
// on, every allocation of at least `bytes` gets a mapping of its own, returned to the system when
// freed. glibc otherwise raises that threshold as large blocks are freed and keeps them in
// per-thread arenas; a training step's activations (allocated and freed by the tensor thread and
// the OpenMP team) then piled up: four 4 x 256 pretraining steps held 3.2 GB, 1.3 GB with 1 MiB.
// Tensors of 128 KiB and more now come from the block cache instead (TensorMemory below), so this
// governs only the process's other large allocations; an application calls it if it wants.
Napi::Value ReleaseLargeAllocations(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    const double n = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : NAN;
    if (!(n >= 4096 && n <= 33554432) || std::floor(n) != n) {
      throw TypeError("bytes: must be an integer from 4096 to 33554432 (32 MiB)");
    }
#if defined(__GLIBC__)
    return Napi::Boolean::New(info.Env(), mallopt(M_MMAP_THRESHOLD, static_cast<int>(n)) == 1);
#else
    return Napi::Boolean::New(info.Env(), false);
#endif
  });
}

// tensorMemory() -> { cachedBytes, inUseBytes, limitBytes, hits, misses }: the CPU block cache
// (binding/model/cpu_block_cache.h) that backs tensors of 128 KiB and more.
Napi::Value TensorMemory(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    const auto stats = model::CpuBlockCacheStatistics();
    auto out = Napi::Object::New(info.Env());
    out.Set("cachedBytes", static_cast<double>(stats.cachedBytes));
    out.Set("inUseBytes", static_cast<double>(stats.inUseBytes));
    out.Set("limitBytes", static_cast<double>(stats.limitBytes));
    out.Set("hits", static_cast<double>(stats.hits));
    out.Set("misses", static_cast<double>(stats.misses));
    return out;
  });
}

Napi::Value SetTensorCacheLimit(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    const double n = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : NAN;
    if (!(n >= 0 && n <= 9007199254740991.0) || std::floor(n) != n) {
      throw TypeError("bytes: must be a non-negative integer");
    }
    model::SetCpuBlockCacheLimit(static_cast<std::size_t>(n));
    return info.Env().Undefined();
  });
}

// testing.allocate(bytes) -> bigint: allocates a LibTorch tensor of `bytes` bytes, fills it, frees
// it, and returns where its data was (so a test sees the cache hand the same block out again).
Napi::Value Allocate(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    auto tensor = torch::ones({IntegerArg(info[0], "bytes", 1, 1e10)}, torch::kUInt8);
    const auto address = reinterpret_cast<std::uintptr_t>(tensor.data_ptr());
    return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(address));
  });
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    ApplyThreads();
    return Napi::Number::New(info.Env(), at::get_num_threads());
  });
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    Napi::Value n = info[0];
    double x = n.IsNumber() ? n.As<Napi::Number>().DoubleValue() : 0;
    if (!(x >= 1) || x != static_cast<int>(x) || x > 4096) {
      throw TypeError("threads must be an integer from 1 to 4096");
    }
    SetDesiredThreads(static_cast<int>(x));
    return info.Env().Undefined();
  });
}

// The thread count tensor work sees on a worker thread (where Promise-returning calls run).
Napi::Value WorkerThreads(const Napi::CallbackInfo& info) {
  return PromiseWorker<int>::Start(
      info.Env(), [] { return at::get_num_threads(); },
      [](Napi::Env env, int& n) { return Napi::Number::New(env, n); });
}

struct MatmulArgs {
  torch::Tensor a, b;
};

MatmulArgs ReadMatmulArgs(const Napi::CallbackInfo& info) {
  auto aShape = ShapeArg(info[1], "aShape");
  auto bShape = ShapeArg(info[3], "bShape");
  return {FloatTensorArg(info[0], aShape, "a"), FloatTensorArg(info[2], bShape, "b")};
}

// matmul(a, aShape, b, bShape): Float32Array of the product (shape follows torch::matmul).
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    auto args = ReadMatmulArgs(info);
    ApplyThreads();
    return TypedArrayOf(info.Env(), torch::matmul(args.a, args.b));
  });
}

Napi::Value MatmulAsync(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto args = ReadMatmulArgs(info);
    return PromiseWorker<torch::Tensor>::Start(
        info.Env(), [args] { return torch::matmul(args.a, args.b); },
        [](Napi::Env env, torch::Tensor& t) { return TypedArrayOf(env, t); });
  });
}

}  // namespace

void InitRuntime(Napi::Env env, Napi::Object exports, Napi::Object testing) {
  model::InstallCpuBlockCache();
  exports.Set("version", Napi::Function::New(env, Version));
  exports.Set("cudaAvailable", Napi::Function::New(env, CudaAvailable));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCount));
  exports.Set("compiledWithCuda", Napi::Function::New(env, CompiledWithCuda));
  exports.Set("cpuFeatures", Napi::Function::New(env, CpuFeatures));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("releaseLargeAllocations", Napi::Function::New(env, ReleaseLargeAllocations));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("tensorMemory", Napi::Function::New(env, TensorMemory));
  exports.Set("setTensorCacheLimit", Napi::Function::New(env, SetTensorCacheLimit));
  testing.Set("workerThreads", Napi::Function::New(env, WorkerThreads));
  testing.Set("matmul", Napi::Function::New(env, Matmul));
  testing.Set("allocate", Napi::Function::New(env, Allocate));
  testing.Set("matmulAsync", Napi::Function::New(env, MatmulAsync));
}

}  // namespace koner::napi
