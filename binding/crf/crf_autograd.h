// The CRF negative log-likelihood as an autograd node. Its backward pass is fused: one
// backward sweep over the saved forward variables yields the posterior marginals, and they are
// the gradients of emissions, transitions, start and end (minus the gold path's indicators),
// instead of autograd replaying T log-sum-exp steps. Not twice differentiable.
#pragma once
#include <torch/torch.h>

#include <cstdint>

namespace koner::crf {

class NllFunction : public torch::autograd::Function<NllFunction> {
 public:
  // emissions [B, T, K] (any floating dtype); transitions [K, K], start [K], end [K]; tags
  // [B, T] int64; lengths [B] int64 within [0, T]; reduction a koner::crf::Reduction. All
  // validated by the caller (crf.cc).
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                               const torch::Tensor& emissions, const torch::Tensor& transitions,
                               const torch::Tensor& start, const torch::Tensor& end,
                               const torch::Tensor& tags, const torch::Tensor& lengths,
                               int64_t reduction);

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list gradOutputs);
};

}  // namespace koner::crf
