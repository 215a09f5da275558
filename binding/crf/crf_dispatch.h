// The CRF's backends behind one interface: routes each call to the CPU loops (crf_cpu.cc) or
// the CUDA kernels (crf_cuda.cu) by the emissions' device. Inputs arrive prepared by crf.cc:
// emissions [B, T, K] contiguous in any floating dtype; lengths [B] int64 within [0, T]; tags
// [B, T] int64; transitions [K, K], start [K], end [K] contiguous in AccType(emissions), holding
// -inf where constraints forbid; everything on the emissions' device.
#pragma once
#include <torch/types.h>

#include <cstdint>

namespace koner::crf::detail {

// The accumulation dtype: double for double emissions (gradcheck), float for everything else.
torch::ScalarType AccType(torch::ScalarType emissions);

struct ForwardResult {
  torch::Tensor nll;  // [B] acc: log Z - score(tags), 0 for a length-0 sequence
  // [B, T, K] acc: the forward variables less per-position offsets (crf_sequence.h, Forward),
  // kept for the backward pass, which needs no more than them.
  torch::Tensor alphas;
  torch::Tensor logZ;  // [B] acc (computed in double; the backward pass reads only its -inf)
};

struct GradResult {
  torch::Tensor emissions;    // [B, T, K] in the emissions' dtype
  torch::Tensor transitions;  // [K, K] acc, summed over the batch
  torch::Tensor start, end;   // [K] acc
};

ForwardResult NllForward(const torch::Tensor& emissions, const torch::Tensor& tags,
                         const torch::Tensor& lengths, const torch::Tensor& transitions,
                         const torch::Tensor& start, const torch::Tensor& end);

// Gradients of sum_b weights[b] * nll[b] from a forward result (weights [B] acc).
GradResult NllBackward(const torch::Tensor& emissions, const torch::Tensor& tags,
                       const torch::Tensor& lengths, const torch::Tensor& transitions,
                       const torch::Tensor& start, const torch::Tensor& end,
                       const ForwardResult& forward, const torch::Tensor& weights);

// [B, T, K] float32 posterior marginals, 0 beyond each length.
torch::Tensor Marginals(const torch::Tensor& emissions, const torch::Tensor& lengths,
                        const torch::Tensor& transitions, const torch::Tensor& start,
                        const torch::Tensor& end);

struct Decoded {
  torch::Tensor tags;    // [B, N, T] int64
  torch::Tensor scores;  // [B, N] float32
};
Decoded Viterbi(const torch::Tensor& emissions, const torch::Tensor& lengths,
                const torch::Tensor& transitions, const torch::Tensor& start,
                const torch::Tensor& end, int64_t nBest);

}  // namespace koner::crf::detail
