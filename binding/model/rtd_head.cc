#include "model/rtd_head.h"

namespace koner::model {

RtdHeadImpl::RtdHeadImpl(const ModelConfig& c) {
  dense = register_module("dense", torch::nn::Linear(c.hiddenSize, c.hiddenSize));
  densePrediction = register_module("dense_prediction", torch::nn::Linear(c.hiddenSize, 1));
}

torch::Tensor RtdHeadImpl::forward(const torch::Tensor& hidden) {
  auto x = hidden.to(torch::kFloat32);
  return densePrediction(torch::gelu(dense(x))).squeeze(-1);
}

}  // namespace koner::model
