#include "model/ner_model.h"

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
  head_ = std::make_unique<Head>(*this, config_);
  InitHfWeights(*bert, config_.initializerRange);
  eval();
}

torch::Tensor NerModelImpl::Hidden(const torch::Tensor& ids, const torch::Tensor& mask,
                                   const torch::Tensor& tokenTypeIds,
                                   AttentionCapture* attentions) {
  return bert(ids, mask, tokenTypeIds, attentions);
}

torch::Tensor NerModelImpl::Emissions(const torch::Tensor& ids, const torch::Tensor& mask,
                                      const torch::Tensor& tokenTypeIds,
                                      AttentionCapture* attentions) {
  return head_->Emissions(Hidden(ids, mask, tokenTypeIds, attentions), mask);
}

void NerModelImpl::ResetParameters() {
  InitHfWeights(*bert, config_.initializerRange);
  head_->ResetParameters(config_.initializerRange);
}

void NerModelImpl::Place(const torch::Device& device, torch::ScalarType encoderDtype) {
  bert->to(device, encoderDtype);
  head_->To(device);
  device_ = device;
  encoderDtype_ = encoderDtype;
}

}  // namespace koner::model
