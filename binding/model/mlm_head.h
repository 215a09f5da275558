// The masked-LM head of pretraining, with Hugging Face's names and numerics (BertOnlyMLMHead):
// cls.predictions.transform.dense -> gelu -> cls.predictions.transform.LayerNorm -> the word
// embeddings' transpose + cls.predictions.bias. The decoder is tied to
// bert.embeddings.word_embeddings.weight, so it is no parameter of its own and the checkpoint
// holds no cls.predictions.decoder.weight (HF ties it back on load).
#pragma once
#include <torch/torch.h>

#include "model/config.h"

namespace koner::model {

class MlmHeadImpl : public torch::nn::Module {
 public:
  explicit MlmHeadImpl(const ModelConfig& config);

  // Vocabulary logits [M, V] (float32) for hidden states [M, H] of the masked positions only:
  // the [M, V] product is the head's whole cost, so it is never paid for unmasked pieces.
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& wordEmbeddings);

  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm layerNorm{nullptr};
  torch::Tensor bias;  // [V]
};
TORCH_MODULE(MlmHead);

// Registers the head as `cls` on `owner` with HF's nesting (cls.predictions.transform.*).
MlmHead RegisterMlmHead(torch::nn::Module& owner, const ModelConfig& config);

}  // namespace koner::model
