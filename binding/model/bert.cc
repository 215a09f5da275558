#include "model/bert.h"

#include <ATen/Dispatch.h>

#include <cmath>
#include <limits>
#include <string>

namespace koner::model {
namespace {

torch::nn::LayerNorm MakeLayerNorm(const ModelConfig& c) {
  return torch::nn::LayerNorm(
      torch::nn::LayerNormOptions({c.hiddenSize}).eps(c.layerNormEps).elementwise_affine(true));
}

}  // namespace

BertEmbeddingsImpl::BertEmbeddingsImpl(const ModelConfig& c) {
  wordEmbeddings = register_module(
      "word_embeddings",
      torch::nn::Embedding(
          torch::nn::EmbeddingOptions(c.vocabSize, c.hiddenSize).padding_idx(c.padTokenId)));
  positionEmbeddings = register_module("position_embeddings",
                                       torch::nn::Embedding(c.maxPositionEmbeddings, c.hiddenSize));
  tokenTypeEmbeddings =
      register_module("token_type_embeddings", torch::nn::Embedding(c.typeVocabSize, c.hiddenSize));
  layerNorm = register_module("LayerNorm", MakeLayerNorm(c));
  dropout = register_module("dropout", torch::nn::Dropout(c.hiddenDropoutProb));
}

torch::Tensor BertEmbeddingsImpl::forward(const torch::Tensor& ids,
                                          const torch::Tensor& tokenTypeIds) {
  const int64_t T = ids.size(1);
  auto positions = torch::arange(T, ids.options().dtype(torch::kInt64)).unsqueeze(0);
  // HF's order of the sums, so that rounding matches too.
  auto x = wordEmbeddings(ids) + tokenTypeEmbeddings(tokenTypeIds);
  x = x + positionEmbeddings(positions);
  return dropout(layerNorm(x));
}

BertSelfAttentionImpl::BertSelfAttentionImpl(const ModelConfig& c)
    : numHeads_(c.numAttentionHeads), headSize_(c.hiddenSize / c.numAttentionHeads) {
  query = register_module("query", torch::nn::Linear(c.hiddenSize, c.hiddenSize));
  key = register_module("key", torch::nn::Linear(c.hiddenSize, c.hiddenSize));
  value = register_module("value", torch::nn::Linear(c.hiddenSize, c.hiddenSize));
  dropout = register_module("dropout", torch::nn::Dropout(c.attentionProbsDropoutProb));
}

torch::Tensor BertSelfAttentionImpl::forward(const torch::Tensor& hidden,
                                             const torch::Tensor& additiveMask) {
  const int64_t B = hidden.size(0), T = hidden.size(1);
  auto heads = [&](const torch::Tensor& x) {
    return x.view({B, T, numHeads_, headSize_}).transpose(1, 2);  // [B, heads, T, size]
  };
  auto q = heads(query(hidden));
  auto k = heads(key(hidden));
  auto v = heads(value(hidden));
  auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(headSize_));
  scores = scores + additiveMask;
  auto probs = dropout(torch::softmax(scores, -1));
  auto context = torch::matmul(probs, v);  // [B, heads, T, size]
  return context.permute({0, 2, 1, 3}).contiguous().view({B, T, numHeads_ * headSize_});
}

BertResidualOutputImpl::BertResidualOutputImpl(int64_t in, const ModelConfig& c) {
  dense = register_module("dense", torch::nn::Linear(in, c.hiddenSize));
  layerNorm = register_module("LayerNorm", MakeLayerNorm(c));
  dropout = register_module("dropout", torch::nn::Dropout(c.hiddenDropoutProb));
}

torch::Tensor BertResidualOutputImpl::forward(const torch::Tensor& x,
                                              const torch::Tensor& residual) {
  return layerNorm(dropout(dense(x)) + residual);
}

BertAttentionImpl::BertAttentionImpl(const ModelConfig& c) {
  self = register_module("self", BertSelfAttention(c));
  output = register_module("output", BertResidualOutput(c.hiddenSize, c));
}

torch::Tensor BertAttentionImpl::forward(const torch::Tensor& hidden,
                                         const torch::Tensor& additiveMask) {
  return output(self(hidden, additiveMask), hidden);
}

BertIntermediateImpl::BertIntermediateImpl(const ModelConfig& c) {
  dense = register_module("dense", torch::nn::Linear(c.hiddenSize, c.intermediateSize));
}

torch::Tensor BertIntermediateImpl::forward(const torch::Tensor& hidden) {
  return torch::gelu(dense(hidden));  // erf form: HF's "gelu"
}

BertLayerImpl::BertLayerImpl(const ModelConfig& c) {
  attention = register_module("attention", BertAttention(c));
  intermediate = register_module("intermediate", BertIntermediate(c));
  output = register_module("output", BertResidualOutput(c.intermediateSize, c));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& hidden,
                                     const torch::Tensor& additiveMask) {
  auto attended = attention(hidden, additiveMask);
  return output(intermediate(attended), attended);
}

BertEncoderImpl::BertEncoderImpl(const ModelConfig& c) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.numHiddenLayers; ++i) layer->push_back(BertLayer(c));
}

torch::Tensor BertEncoderImpl::forward(torch::Tensor hidden, const torch::Tensor& additiveMask) {
  for (const auto& module : *layer) {
    hidden = module->as<BertLayerImpl>()->forward(hidden, additiveMask);
  }
  return hidden;
}

BertPoolerImpl::BertPoolerImpl(const ModelConfig& c) {
  dense = register_module("dense", torch::nn::Linear(c.hiddenSize, c.hiddenSize));
}

torch::Tensor BertPoolerImpl::forward(const torch::Tensor& hidden) {
  return torch::tanh(dense(hidden.select(1, 0)));
}

BertModelImpl::BertModelImpl(const ModelConfig& c, bool withPooler) {
  embeddings = register_module("embeddings", BertEmbeddings(c));
  encoder = register_module("encoder", BertEncoder(c));
  if (withPooler) pooler = register_module("pooler", BertPooler(c));
}

torch::Tensor BertModelImpl::forward(const torch::Tensor& ids, const torch::Tensor& attentionMask,
                                     const torch::Tensor& tokenTypeIds) {
  auto types = tokenTypeIds.defined() ? tokenTypeIds : torch::zeros_like(ids);
  auto hidden = embeddings(ids, types);
  return encoder(hidden, AdditiveAttentionMask(attentionMask, hidden.scalar_type()));
}

torch::Tensor AdditiveAttentionMask(const torch::Tensor& attentionMask, torch::ScalarType dtype) {
  double lowest = 0;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "AdditiveAttentionMask", [&] {
    lowest = static_cast<double>(std::numeric_limits<scalar_t>::lowest());
  });
  // HF: (1 - mask) * finfo(dtype).min, computed in the target dtype.
  auto keep = attentionMask.to(dtype).unsqueeze(1).unsqueeze(2);
  return (1.0 - keep) * lowest;
}

void InitHfWeights(torch::nn::Module& module, double range) {
  torch::NoGradGuard noGrad;
  module.apply([range](torch::nn::Module& m) {
    if (auto* linear = m.as<torch::nn::Linear>()) {
      linear->weight.normal_(0, range);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* embedding = m.as<torch::nn::Embedding>()) {
      embedding->weight.normal_(0, range);
      const auto& padding = embedding->options.padding_idx();
      if (padding.has_value()) embedding->weight[*padding].zero_();
    } else if (auto* norm = m.as<torch::nn::LayerNorm>()) {
      norm->weight.fill_(1);
      norm->bias.zero_();
    }
  });
}

}  // namespace koner::model
