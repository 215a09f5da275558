// Routes each CRF call by the emissions' device. CUDA tensors reach the kernels only in builds
// against a CUDA LibTorch (KONER_WITH_CUDA, set by CMake); elsewhere they are a clear error.
#include "crf/crf_dispatch.h"

#include <torch/torch.h>

#include "crf/crf_cpu.h"

#ifdef KONER_WITH_CUDA
// c10's stream header rather than ATen/cuda/CUDAContext.h (whose at::cuda::getCurrentCUDAStream
// is this same function): it needs no cuBLAS / cuSPARSE / cuSOLVER headers.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "crf/crf_cuda.h"
#endif

namespace koner::crf::detail {
namespace {

[[noreturn]] void Unsupported(const torch::Tensor& emissions) {
#ifdef KONER_WITH_CUDA
  TORCH_CHECK(false, "crf: emissions are on ", emissions.device(),
              "; the CRF runs on cpu and cuda devices");
#else
  TORCH_CHECK(false, "crf: emissions are on ", emissions.device(),
              " but this koner was built without CUDA (its LibTorch is CPU-only); "
              "use device 'cpu'");
#endif
}

#ifdef KONER_WITH_CUDA
cuda::Dtype DtypeOf(const torch::Tensor& emissions) {
  switch (emissions.scalar_type()) {
    case torch::kFloat32:
      return cuda::Dtype::Float32;
    case torch::kFloat64:
      return cuda::Dtype::Float64;
    case torch::kFloat16:
      return cuda::Dtype::Float16;
    case torch::kBFloat16:
      return cuda::Dtype::BFloat16;
    default:
      TORCH_CHECK(false, "crf: unsupported emissions dtype ", emissions.scalar_type());
  }
}

cuda::Problem ProblemOf(const torch::Tensor& emissions, const torch::Tensor& lengths,
                        const torch::Tensor& transitions, const torch::Tensor& start,
                        const torch::Tensor& end) {
  TORCH_CHECK(emissions.size(0) <= std::numeric_limits<int32_t>::max(),
              "crf: a CUDA batch holds at most 2^31 - 1 sequences");
  return {emissions.size(0),
          static_cast<int>(emissions.size(1)),
          static_cast<int>(emissions.size(2)),
          DtypeOf(emissions),
          emissions.data_ptr(),
          lengths.data_ptr<int64_t>(),
          transitions.data_ptr(),
          start.data_ptr(),
          end.data_ptr()};
}

// Scratch from LibTorch's caching allocator: freeing it before the kernel ends is safe because
// reuse is ordered on the same stream.
torch::Tensor Workspace(size_t bytes, const torch::Tensor& like) {
  return torch::empty({static_cast<int64_t>(bytes)}, like.options().dtype(torch::kUInt8));
}

void Check(const char* error) { TORCH_CHECK(error == nullptr, "crf (CUDA): ", error); }
#endif

}  // namespace

torch::ScalarType AccType(torch::ScalarType emissions) {
  return emissions == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

ForwardResult NllForward(const torch::Tensor& emissions, const torch::Tensor& tags,
                         const torch::Tensor& lengths, const torch::Tensor& transitions,
                         const torch::Tensor& start, const torch::Tensor& end) {
  if (emissions.is_cpu()) return cpu::NllForward(emissions, tags, lengths, transitions, start, end);
#ifdef KONER_WITH_CUDA
  if (emissions.is_cuda()) {
    const c10::cuda::CUDAGuard guard(emissions.device());
    const auto p = ProblemOf(emissions, lengths, transitions, start, end);
    const auto opts = transitions.options();
    ForwardResult r{torch::empty({p.B}, opts), torch::empty({p.B, p.T, p.K}, opts),
                    torch::empty({p.B}, opts)};
    auto ws = Workspace(cuda::NllWorkspaceBytes(p), emissions);
    Check(cuda::NllForward(p, tags.data_ptr<int64_t>(), r.alphas.data_ptr(), r.logZ.data_ptr(),
                           r.nll.data_ptr(), ws.data_ptr(), c10::cuda::getCurrentCUDAStream()));
    return r;
  }
#endif
  Unsupported(emissions);
}

GradResult NllBackward(const torch::Tensor& emissions, const torch::Tensor& tags,
                       const torch::Tensor& lengths, const torch::Tensor& transitions,
                       const torch::Tensor& start, const torch::Tensor& end,
                       const ForwardResult& forward, const torch::Tensor& weights) {
  if (emissions.is_cpu()) {
    return cpu::NllBackward(emissions, tags, lengths, transitions, start, end, forward, weights);
  }
#ifdef KONER_WITH_CUDA
  if (emissions.is_cuda()) {
    const c10::cuda::CUDAGuard guard(emissions.device());
    const auto p = ProblemOf(emissions, lengths, transitions, start, end);
    const auto opts = transitions.options();
    auto gradEmissions = torch::zeros_like(emissions);
    auto gradTrans = torch::zeros({p.B, p.K, p.K}, opts);
    auto gradStart = torch::zeros({p.B, p.K}, opts);
    auto gradEnd = torch::zeros({p.B, p.K}, opts);
    auto ws = Workspace(cuda::NllWorkspaceBytes(p), emissions);
    Check(cuda::NllBackward(p, tags.data_ptr<int64_t>(), forward.alphas.data_ptr(),
                            forward.logZ.data_ptr(), weights.data_ptr(), gradEmissions.data_ptr(),
                            gradTrans.data_ptr(), gradStart.data_ptr(), gradEnd.data_ptr(),
                            ws.data_ptr(), c10::cuda::getCurrentCUDAStream()));
    return {gradEmissions, gradTrans.sum(0), gradStart.sum(0), gradEnd.sum(0)};
  }
#endif
  Unsupported(emissions);
}

torch::Tensor Marginals(const torch::Tensor& emissions, const torch::Tensor& lengths,
                        const torch::Tensor& transitions, const torch::Tensor& start,
                        const torch::Tensor& end) {
  if (emissions.is_cpu()) return cpu::Marginals(emissions, lengths, transitions, start, end);
#ifdef KONER_WITH_CUDA
  if (emissions.is_cuda()) {
    const c10::cuda::CUDAGuard guard(emissions.device());
    const auto p = ProblemOf(emissions, lengths, transitions, start, end);
    auto out = torch::zeros({p.B, p.T, p.K}, emissions.options().dtype(torch::kFloat32));
    auto ws = Workspace(cuda::MarginalsWorkspaceBytes(p), emissions);
    Check(cuda::Marginals(p, out.data_ptr<float>(), ws.data_ptr(),
                          c10::cuda::getCurrentCUDAStream()));
    return out;
  }
#endif
  Unsupported(emissions);
}

Decoded Viterbi(const torch::Tensor& emissions, const torch::Tensor& lengths,
                const torch::Tensor& transitions, const torch::Tensor& start,
                const torch::Tensor& end, int64_t nBest) {
  if (emissions.is_cpu()) return cpu::Viterbi(emissions, lengths, transitions, start, end, nBest);
#ifdef KONER_WITH_CUDA
  if (emissions.is_cuda()) {
    const c10::cuda::CUDAGuard guard(emissions.device());
    const auto p = ProblemOf(emissions, lengths, transitions, start, end);
    const int N = static_cast<int>(nBest);
    Decoded r{torch::empty({p.B, nBest, p.T}, emissions.options().dtype(torch::kInt64)),
              torch::empty({p.B, nBest}, emissions.options().dtype(torch::kFloat32))};
    auto ws = Workspace(cuda::ViterbiWorkspaceBytes(p, N), emissions);
    Check(cuda::Viterbi(p, N, r.tags.data_ptr<int64_t>(), r.scores.data_ptr<float>(), ws.data_ptr(),
                        c10::cuda::getCurrentCUDAStream()));
    return r;
  }
#endif
  Unsupported(emissions);
}

}  // namespace koner::crf::detail
