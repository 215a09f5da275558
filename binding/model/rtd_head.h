// The replaced-token-detection head of ELECTRA pretraining, with Hugging Face's names and
// numerics (ElectraDiscriminatorPredictions): discriminator_predictions.dense -> gelu ->
// discriminator_predictions.dense_prediction, one logit per piece that says "a generator
// replaced this piece". It learns from every piece of a window, not only the 15% that a masked
// LM predicts: that is why ELECTRA learns more per step of a small compute budget.
#pragma once
#include <torch/torch.h>

#include "model/config.h"

namespace koner::model {

class RtdHeadImpl : public torch::nn::Module {
 public:
  explicit RtdHeadImpl(const ModelConfig& config);

  // Logits [...] (float32) for hidden states [..., H].
  torch::Tensor forward(const torch::Tensor& hidden);

  torch::nn::Linear dense{nullptr};
  torch::nn::Linear densePrediction{nullptr};
};
TORCH_MODULE(RtdHead);

}  // namespace koner::model
