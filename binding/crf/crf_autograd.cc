#include "crf/crf_autograd.h"

#include "crf/crf.h"
#include "crf/crf_dispatch.h"

namespace koner::crf {

torch::Tensor NllFunction::forward(torch::autograd::AutogradContext* ctx,
                                   const torch::Tensor& emissions, const torch::Tensor& transitions,
                                   const torch::Tensor& start, const torch::Tensor& end,
                                   const torch::Tensor& tags, const torch::Tensor& lengths,
                                   int64_t reduction) {
  const auto acc = detail::AccType(emissions.scalar_type());
  const auto em = emissions.contiguous();
  const auto tr = transitions.to(acc).contiguous();
  const auto st = start.to(acc).contiguous();
  const auto en = end.to(acc).contiguous();
  auto fwd = detail::NllForward(em, tags, lengths, tr, st, en);
  // Token count as a tensor: dividing by it never waits for the device.
  const auto tokens = lengths.sum().clamp_min(1).to(acc);
  ctx->save_for_backward({em, tags, lengths, tr, st, en, fwd.alphas, fwd.logZ, tokens});
  ctx->saved_data["reduction"] = reduction;
  ctx->saved_data["transitions"] = static_cast<int64_t>(transitions.scalar_type());
  ctx->saved_data["start"] = static_cast<int64_t>(start.scalar_type());
  ctx->saved_data["end"] = static_cast<int64_t>(end.scalar_type());
  const int64_t B = emissions.size(0);
  switch (static_cast<Reduction>(reduction)) {
    case Reduction::None:
      return fwd.nll;
    case Reduction::Sum:
      return fwd.nll.sum();
    case Reduction::Mean:
      return fwd.nll.sum() / static_cast<double>(std::max<int64_t>(B, 1));
    case Reduction::TokenMean:
      return fwd.nll.sum() / tokens;
  }
  TORCH_CHECK(false, "crf: unknown reduction ", reduction);
}

torch::autograd::tensor_list NllFunction::backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::tensor_list gradOutputs) {
  const auto saved = ctx->get_saved_variables();
  const auto& em = saved[0];
  const auto& tags = saved[1];
  const auto& lengths = saved[2];
  const auto& tokens = saved[8];
  const int64_t B = em.size(0);
  const auto acc = saved[3].scalar_type();
  auto g = gradOutputs[0].to(acc);
  // d loss / d nll[b]: the weight of each sequence in the fused backward pass.
  torch::Tensor weights;
  switch (static_cast<Reduction>(ctx->saved_data["reduction"].toInt())) {
    case Reduction::None:
      weights = g.contiguous();
      break;
    case Reduction::Sum:
      weights = g.expand({B}).contiguous();
      break;
    case Reduction::Mean:
      weights = (g / static_cast<double>(std::max<int64_t>(B, 1))).expand({B}).contiguous();
      break;
    case Reduction::TokenMean:
      weights = (g / tokens).expand({B}).contiguous();
      break;
  }
  const detail::ForwardResult fwd{torch::Tensor(), saved[6], saved[7]};
  auto grads = detail::NllBackward(em, tags, lengths, saved[3], saved[4], saved[5], fwd, weights);
  auto dtype = [&](const char* name) {
    return static_cast<torch::ScalarType>(ctx->saved_data[name].toInt());
  };
  return {grads.emissions,
          grads.transitions.to(dtype("transitions")),
          grads.start.to(dtype("start")),
          grads.end.to(dtype("end")),
          torch::Tensor(),
          torch::Tensor(),
          torch::Tensor()};
}

}  // namespace koner::crf
