// The linear-chain CRF (binding/crf) on typed arrays: crfNll, crfDecode, crfMarginals, plus
// crfGradcheck for the tests. Synchronous on purpose: a call is a few passes over [B, T, K]
// (about a millisecond at B=32, T=64, K=21), less than a worker round trip costs; training
// uses the C++ API (crf/crf.h) from its own workers.
#include "crf/crf.h"

#include <torch/torch.h>

#include <string>

#include "napi/args.h"
#include "napi/errors.h"
#include "napi/modules.h"
#include "napi/tensors.h"

namespace koner::napi {
namespace {

Napi::Object OptionsArg(const Napi::Value& value) {
  if (value.IsUndefined() || value.IsNull()) return Napi::Object::New(value.Env());
  if (!value.IsObject() || value.IsArray() || value.IsTypedArray()) {
    throw TypeError("options: expected an object");
  }
  return value.As<Napi::Object>();
}

std::string StringOption(const Napi::Object& options, const char* name, const char* fallback) {
  Napi::Value v = options.Get(name);
  if (v.IsUndefined()) return fallback;
  if (!v.IsString()) throw TypeError(std::string(name) + ": expected a string");
  return v.As<Napi::String>().Utf8Value();
}

torch::Device DeviceOption(const Napi::Object& options) {
  return ParseDevice(StringOption(options, "device", "cpu"));
}

torch::ScalarType DtypeOption(const Napi::Object& options) {
  Napi::Value v = options.Get("dtype");
  return v.IsUndefined() ? torch::kFloat32 : DtypeArg(v, "dtype", /*allowFloat64=*/true);
}

int64_t IntOption(const Napi::Object& options, const char* name, int64_t fallback, int64_t lo,
                  int64_t hi) {
  Napi::Value v = options.Get(name);
  if (v.IsUndefined()) return fallback;
  const double x = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : lo - 1.0;
  if (!(x >= lo && x <= hi) || x != static_cast<double>(static_cast<int64_t>(x))) {
    throw TypeError(std::string(name) + ": expected an integer from " + std::to_string(lo) +
                    " to " + std::to_string(hi));
  }
  return static_cast<int64_t>(x);
}

// The arguments every CRF call shares, as tensors on the requested device.
struct Inputs {
  int64_t B, T, K;
  torch::Tensor emissions, lengths, mask, transitions, start, end;
  torch::Device device = torch::kCPU;
  Napi::Object options;
};

// emissions at info[0], shape at info[1], lengths / transitions / start / end at the given
// positions, options at `optionsAt`.
Inputs ReadInputs(const Napi::CallbackInfo& info, size_t lengthsAt, size_t paramsAt,
                  size_t optionsAt) {
  Inputs in;
  const auto shape = ShapeArg(info[1], "shape");
  if (shape.size() != 3) {
    throw TypeError("shape: expected [B, T, K], got " + ShapeString(shape));
  }
  in.B = shape[0];
  in.T = shape[1];
  in.K = shape[2];
  if (in.K < 1) throw TypeError("shape: K (the number of tags) must be at least 1");
  in.options = OptionsArg(info[optionsAt]);
  in.device = DeviceOption(in.options);
  const auto dtype = DtypeOption(in.options);
  in.emissions = FloatTensorArg(info[0], shape, "emissions");
  const auto lengths = IntTensorArg(info[lengthsAt], {in.B}, "lengths");
  const int32_t* len = lengths.data_ptr<int32_t>();
  for (int64_t b = 0; b < in.B; ++b) {
    if (len[b] < 0 || len[b] > in.T) {
      throw std::invalid_argument("lengths[" + std::to_string(b) + "] = " + std::to_string(len[b]) +
                                  " is outside [0, T] for T = " + std::to_string(in.T));
    }
  }
  in.lengths = lengths.to(torch::kInt64);
  in.transitions = FloatTensorArg(info[paramsAt], {in.K, in.K}, "transitions");
  in.start = FloatTensorArg(info[paramsAt + 1], {in.K}, "start");
  in.end = FloatTensorArg(info[paramsAt + 2], {in.K}, "end");
  in.mask = torch::arange(in.T, torch::kInt64).unsqueeze(0) < in.lengths.unsqueeze(1);
  in.emissions = in.emissions.to(in.device).to(dtype);
  in.lengths = in.lengths.to(in.device);
  in.mask = in.mask.to(in.device);
  in.transitions = in.transitions.to(in.device);
  in.start = in.start.to(in.device);
  in.end = in.end.to(in.device);
  return in;
}

torch::Tensor OptionalMask(const Inputs& in, const char* name, const std::vector<int64_t>& shape) {
  Napi::Value v = in.options.Get(name);
  if (v.IsUndefined() || v.IsNull()) return torch::Tensor();
  return BoolTensorArg(v, shape, name).to(in.device);
}

crf::Constraints ConstraintsOf(const Inputs& in) {
  return {OptionalMask(in, "allowed", {in.K, in.K}), OptionalMask(in, "allowedStart", {in.K}),
          OptionalMask(in, "allowedEnd", {in.K})};
}

crf::Reduction ReductionArg(const Napi::Value& value) {
  const std::string name = value.IsString() ? value.As<Napi::String>().Utf8Value() : "";
  if (name == "sum") return crf::Reduction::Sum;
  if (name == "mean") return crf::Reduction::Mean;
  if (name == "none") return crf::Reduction::None;
  if (name == "token_mean") return crf::Reduction::TokenMean;
  throw TypeError("reduction: expected 'sum', 'mean', 'none' or 'token_mean'");
}

Napi::Value Float32Of(Napi::Env env, const torch::Tensor& t) {
  return TypedArrayOf(env, t.detach().to(torch::kCPU).to(torch::kFloat32));
}

// crfNll(emissions, shape, tags, lengths, transitions, start, end, reduction, options?):
// the reduced loss (one value, or B for 'none') and the gradients of that loss ('none': of
// the sum of the per-sequence losses).
Napi::Value CrfNll(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto in = ReadInputs(info, 3, 4, 8);
    const auto reduction = ReductionArg(info[7]);
    auto tags = IntTensorArg(info[2], {in.B, in.T}, "tags").to(torch::kInt64).to(in.device);
    auto emissions = in.emissions.detach().requires_grad_(true);
    auto transitions = in.transitions.detach().requires_grad_(true);
    auto start = in.start.detach().requires_grad_(true);
    auto end = in.end.detach().requires_grad_(true);
    auto loss = crf::Nll(emissions, tags, in.mask, transitions, start, end, reduction);
    auto grads = torch::autograd::grad({loss.sum()}, {emissions, transitions, start, end});
    Napi::Env env = info.Env();
    auto out = Napi::Object::New(env);
    out.Set("nll", Float32Of(env, loss.reshape({-1})));
    out.Set("gradEmissions", Float32Of(env, grads[0]));
    out.Set("gradTransitions", Float32Of(env, grads[1]));
    out.Set("gradStart", Float32Of(env, grads[2]));
    out.Set("gradEnd", Float32Of(env, grads[3]));
    return out;
  });
}

// crfDecode(emissions, shape, lengths, transitions, start, end, options?): tags [B * N * T]
// (-1 beyond length and for missing paths), scores [B * N] (-Infinity when missing).
Napi::Value CrfDecode(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto in = ReadInputs(info, 2, 3, 6);
    const int64_t nBest = IntOption(in.options, "nBest", 1, 1, 1 << 16);
    auto paths = crf::Decode(in.emissions, in.mask, in.transitions, in.start, in.end, nBest,
                             ConstraintsOf(in));
    Napi::Env env = info.Env();
    auto out = Napi::Object::New(env);
    out.Set("tags", TypedArrayOf(env, paths.tags.to(torch::kCPU).to(torch::kInt32)));
    out.Set("scores", Float32Of(env, paths.scores));
    return out;
  });
}

// crfMarginals(emissions, shape, lengths, transitions, start, end, options?): [B * T * K].
Napi::Value CrfMarginals(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto in = ReadInputs(info, 2, 3, 6);
    return Float32Of(info.Env(), crf::Marginals(in.emissions, in.mask, in.transitions, in.start,
                                                in.end, ConstraintsOf(in)));
  });
}

// Test-only: the analytic gradients of Nll (autograd through the fused backward) next to
// central finite differences, in float64, on a random problem ({ batch, time, tags, seed,
// reduction }). Lengths cover 0, 1 and T; 'none' is weighted by random per-sequence factors.
// Also reports the gradient dtype for float16 and bfloat16 emissions.
Napi::Value CrfGradcheck(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto options = OptionsArg(info[0]);
    const int64_t B = IntOption(options, "batch", 4, 1, 64);
    const int64_t T = IntOption(options, "time", 5, 1, 64);
    const int64_t K = IntOption(options, "tags", 3, 1, 16);
    const int64_t seed = IntOption(options, "seed", 0, 0, 1 << 30);
    const auto reduction =
        ReductionArg(Napi::String::New(info.Env(), StringOption(options, "reduction", "sum")));
    torch::manual_seed(static_cast<uint64_t>(seed));
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
    auto emissions = torch::randn({B, T, K}, f64).requires_grad_(true);
    auto transitions = torch::randn({K, K}, f64).requires_grad_(true);
    auto start = torch::randn({K}, f64).requires_grad_(true);
    auto end = torch::randn({K}, f64).requires_grad_(true);
    auto lengths = torch::randint(0, T + 1, {B}, torch::kInt64);
    lengths[0] = T;
    if (B > 1) lengths[1] = 0;
    if (B > 2) lengths[2] = 1;
    auto mask = torch::arange(T).unsqueeze(0) < lengths.unsqueeze(1);
    auto tags = torch::randint(0, K, {B, T}, torch::kInt64);
    auto weights = torch::rand({B}, f64) + 0.5;
    auto loss = [&] {
      auto l = crf::Nll(emissions, tags, mask, transitions, start, end, reduction);
      return reduction == crf::Reduction::None ? (l * weights).sum() : l;
    };
    std::vector<torch::Tensor> params{emissions, transitions, start, end};
    auto analytic = torch::autograd::grad({loss()}, params);
    std::vector<torch::Tensor> numeric;
    {
      const torch::NoGradGuard noGrad;
      const double eps = 1e-6;
      for (auto& p : params) {
        auto flat = p.view({-1});
        auto g = torch::zeros_like(flat);
        for (int64_t i = 0; i < flat.numel(); ++i) {
          const double x = flat[i].item<double>();
          flat[i] = x + eps;
          const double up = loss().item<double>();
          flat[i] = x - eps;
          const double down = loss().item<double>();
          flat[i] = x;
          g[i] = (up - down) / (2 * eps);
        }
        numeric.push_back(g);
      }
    }
    std::vector<torch::Tensor> flatAnalytic;
    for (auto& a : analytic) flatAnalytic.push_back(a.reshape({-1}));
    auto dtypeOfGrad = [&](torch::ScalarType dtype) {
      auto e = emissions.detach().to(dtype).requires_grad_(true);
      crf::Nll(e, tags, mask, transitions.detach(), start.detach(), end.detach(),
               crf::Reduction::Sum)
          .backward();
      return std::string(c10::toString(e.grad().scalar_type()));
    };
    Napi::Env env = info.Env();
    auto out = Napi::Object::New(env);
    out.Set("analytic", TypedArrayOf(env, torch::cat(flatAnalytic)));
    out.Set("numeric", TypedArrayOf(env, torch::cat(numeric)));
    auto dtypes = Napi::Object::New(env);
    dtypes.Set("float16", dtypeOfGrad(torch::kFloat16));
    dtypes.Set("bfloat16", dtypeOfGrad(torch::kBFloat16));
    out.Set("gradDtypes", dtypes);
    return out;
  });
}

}  // namespace

void InitCrf(Napi::Env env, Napi::Object exports, Napi::Object testing) {
  exports.Set("crfNll", Napi::Function::New(env, CrfNll));
  exports.Set("crfDecode", Napi::Function::New(env, CrfDecode));
  exports.Set("crfMarginals", Napi::Function::New(env, CrfMarginals));
  testing.Set("crfGradcheck", Napi::Function::New(env, CrfGradcheck));
}

}  // namespace koner::napi
