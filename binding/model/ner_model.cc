#include "model/ner_model.h"

#include <stdexcept>

namespace koner::model {

namespace {
const ModelConfig& Validated(const ModelConfig& config) {
  Validate(config);
  return config;
}
}  // namespace

NerModelImpl::NerModelImpl(const ModelConfig& config) : config_(Validated(config)) {
  // Registration order is named_parameters() order: encoder first, then the head.
  bert = register_module("bert", BertModel(config_, /*withPooler=*/false));
  if (config_.head != HeadKind::None) head_ = std::make_unique<Head>(*this, config_);
  if (!config_.posLabels.empty()) {
    pos_ = register_module(
        "pos_classifier",
        torch::nn::Linear(config_.hiddenSize, static_cast<int64_t>(config_.posLabels.size())));
  }
  if (config_.mlmHead) mlm_ = RegisterMlmHead(*this, config_);
  ResetAuxiliary();
  InitHfWeights(*bert, config_.initializerRange);
  bert->embeddings->ResetSyllables();
  eval();
}

Head& NerModelImpl::head() {
  if (!head_) {
    throw std::invalid_argument(
        "this model has no tagging head (head none: a pretrained encoder); fine-tune it with "
        "`koner train` (model.init) before tagging");
  }
  return *head_;
}

torch::Tensor NerModelImpl::Hidden(const torch::Tensor& ids, const torch::Tensor& mask,
                                   const torch::Tensor& tokenTypeIds,
                                   const torch::Tensor& syllables, AttentionCapture* attentions) {
  return bert(ids, mask, tokenTypeIds, syllables, attentions);
}

torch::Tensor NerModelImpl::Emissions(const torch::Tensor& ids, const torch::Tensor& mask,
                                      const torch::Tensor& tokenTypeIds,
                                      const torch::Tensor& syllables,
                                      AttentionCapture* attentions) {
  return head().Emissions(Hidden(ids, mask, tokenTypeIds, syllables, attentions), mask);
}

void NerModelImpl::ResetAuxiliary() {
  // HF's init for both: normal(0, range) weights, zero biases, unit LayerNorm.
  if (pos_) InitHfWeights(*pos_, config_.initializerRange);
  if (mlm_) {
    InitHfWeights(*mlm_, config_.initializerRange);
    torch::NoGradGuard noGrad;
    mlm_->bias.zero_();
  }
}

void NerModelImpl::ResetParameters() {
  InitHfWeights(*bert, config_.initializerRange);
  bert->embeddings->ResetSyllables();
  if (head_) head_->ResetParameters(config_.initializerRange);
  ResetAuxiliary();
}

void NerModelImpl::Place(const torch::Device& device, torch::ScalarType encoderDtype) {
  bert->to(device, encoderDtype);
  if (head_) head_->To(device);
  // The auxiliary heads compute in float32, like the tagging head.
  if (pos_) pos_->to(device, torch::kFloat32);
  if (mlm_) mlm_->to(device, torch::kFloat32);
  device_ = device;
  encoderDtype_ = encoderDtype;
}

}  // namespace koner::model
