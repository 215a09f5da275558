#include "model/mlm_head.h"

namespace koner::model {
namespace {

// Empty modules that only give the head HF's key prefixes: cls.predictions.transform.dense.
struct NamespaceImpl : torch::nn::Module {};
TORCH_MODULE(Namespace);

}  // namespace

MlmHeadImpl::MlmHeadImpl(const ModelConfig& c) {
  dense = torch::nn::Linear(c.hiddenSize, c.hiddenSize);
  layerNorm = torch::nn::LayerNorm(
      torch::nn::LayerNormOptions({c.hiddenSize}).eps(c.layerNormEps).elementwise_affine(true));
  bias = register_parameter("bias", torch::zeros({c.vocabSize}));
}

torch::Tensor MlmHeadImpl::forward(const torch::Tensor& hidden,
                                   const torch::Tensor& wordEmbeddings) {
  auto x = layerNorm(torch::gelu(dense(hidden)));
  return torch::addmm(bias.to(x.scalar_type()), x, wordEmbeddings.to(x.scalar_type()).t())
      .to(torch::kFloat32);
}

MlmHead RegisterMlmHead(torch::nn::Module& owner, const ModelConfig& config) {
  // cls -> predictions (holds bias) -> transform (holds dense, LayerNorm).
  auto cls = owner.register_module("cls", Namespace());
  auto head = cls->register_module("predictions", MlmHead(config));
  auto transform = head->register_module("transform", Namespace());
  transform->register_module("dense", head->dense);
  transform->register_module("LayerNorm", head->layerNorm);
  return head;
}

}  // namespace koner::model
