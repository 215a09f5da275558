// The CRF on the CPU: at::parallel_for over the batch, each sequence run by the shared
// per-sequence routines (crf_sequence.h) with one lane. Same contract as crf_dispatch.h.
#pragma once
#include "crf/crf_dispatch.h"

namespace koner::crf::cpu {

detail::ForwardResult NllForward(const torch::Tensor& emissions, const torch::Tensor& tags,
                                 const torch::Tensor& lengths, const torch::Tensor& transitions,
                                 const torch::Tensor& start, const torch::Tensor& end);

detail::GradResult NllBackward(const torch::Tensor& emissions, const torch::Tensor& tags,
                               const torch::Tensor& lengths, const torch::Tensor& transitions,
                               const torch::Tensor& start, const torch::Tensor& end,
                               const detail::ForwardResult& forward, const torch::Tensor& weights);

torch::Tensor Marginals(const torch::Tensor& emissions, const torch::Tensor& lengths,
                        const torch::Tensor& transitions, const torch::Tensor& start,
                        const torch::Tensor& end);

detail::Decoded Viterbi(const torch::Tensor& emissions, const torch::Tensor& lengths,
                        const torch::Tensor& transitions, const torch::Tensor& start,
                        const torch::Tensor& end, int64_t nBest);

}  // namespace koner::crf::cpu
