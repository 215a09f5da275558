#include "model/bert.h"

#include <ATen/Dispatch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "model/attention_cpu.h"

namespace koner::model {
namespace {

torch::nn::LayerNorm MakeLayerNorm(const ModelConfig& c) {
  return torch::nn::LayerNorm(
      torch::nn::LayerNormOptions({c.hiddenSize}).eps(c.layerNormEps).elementwise_affine(true));
}

}  // namespace

bool UsesOneDnn(const torch::Tensor& x, const torch::Tensor& weight) {
  return !at::GradMode::is_enabled() && x.device().is_cpu() && x.scalar_type() == torch::kFloat32 &&
         weight.scalar_type() == torch::kFloat32 && weight.device().is_cpu() &&
         weight.layout() == torch::kStrided && at::globalContext().userEnabledMkldnn() &&
         at::hasMKLDNN() && OneDnnAllowed();
}

// Below this many rows the product is as cheap as laying the weight out, so the prepacked weight
// (a 1x1 convolution) wins, about 2x at 34 rows; from here on the inner product's own layout of a
// plain weight is faster (about 1.1x at 512 rows, 1.4x at 1280; measured on AVX-512, 2 threads).
constexpr int64_t kPackedRowsBelow = 256;

torch::Tensor PackedWeight::Get(const torch::Tensor& weight) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto& p = packed_;
  if (!p || !p->storage.is_alias_of(weight.storage()) || p->offset != weight.storage_offset() ||
      p->version != weight._version() || p->sizes != weight.sizes().vec()) {
    auto fresh = std::make_shared<Packed>();
    fresh->storage = weight.storage();
    fresh->offset = weight.storage_offset();
    fresh->version = weight._version();
    fresh->sizes = weight.sizes().vec();
    auto w4 = weight.detach().contiguous().view({weight.size(0), weight.size(1), 1, 1});
    fresh->weight = at::mkldnn_reorder_conv2d_weight(w4.to_mkldnn(), {0, 0}, {1, 1}, {1, 1}, 1);
    packed_ = std::move(fresh);
  }
  return packed_->weight;
}

torch::Tensor LinearForward(torch::nn::LinearImpl& layer, const torch::Tensor& x,
                            PackedWeight* packed) {
  const auto& weight = layer.weight;
  if (!UsesOneDnn(x, weight) || x.dim() < 2 || x.numel() == 0) return layer.forward(x);
  auto sizes = x.sizes().vec();
  const int64_t in = sizes.back(), rows = x.numel() / in, out = weight.size(0);
  const auto bias = layer.bias.defined() ? c10::optional<torch::Tensor>(layer.bias) : c10::nullopt;
  torch::Tensor y;
  if (packed && rows < kPackedRowsBelow && !weight.is_inference()) {
    // A 1x1 convolution over `rows` positions with `in` channels: x [rows, in] is the input
    // [1, in, rows, 1] in channels-last strides, no copy.
    auto input = x.reshape({rows, in}).contiguous().view({1, rows, 1, in}).permute({0, 3, 1, 2});
    auto conv = at::mkldnn_convolution(input, packed->Get(weight), bias, {0, 0}, {1, 1}, {1, 1}, 1);
    y = conv.permute({0, 2, 3, 1}).reshape({rows, out}).contiguous();
  } else {
    auto input = x.reshape({rows, in}).contiguous().to_mkldnn();
    y = at::mkldnn_linear(input, weight.contiguous(), bias).to_dense();
  }
  sizes.back() = out;
  return y.view(sizes);
}

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
  if (c.syllableVocabSize > 0) {
    syllableEmbeddings = register_module(
        "syllable_embeddings",
        torch::nn::Embedding(
            torch::nn::EmbeddingOptions(c.syllableVocabSize, c.hiddenSize).padding_idx(0)));
  }
}

void BertEmbeddingsImpl::ResetSyllables() {
  torch::NoGradGuard noGrad;
  if (syllableEmbeddings) syllableEmbeddings->weight.zero_();
}

torch::Tensor BertEmbeddingsImpl::forward(const torch::Tensor& ids,
                                          const torch::Tensor& tokenTypeIds,
                                          const torch::Tensor& syllables) {
  const int64_t T = ids.size(1);
  auto positions = torch::arange(T, ids.options().dtype(torch::kInt64)).unsqueeze(0);
  // HF's order of the sums, so that rounding matches too.
  auto x = wordEmbeddings(ids) + tokenTypeEmbeddings(tokenTypeIds);
  x = x + positionEmbeddings(positions);
  if (syllableEmbeddings) {
    TORCH_CHECK(syllables.defined(),
                "syllables: this model has a syllable channel (syllable_vocab_size ",
                syllableEmbeddings->weight.size(0), ") and needs each piece's syllable ids");
    TORCH_CHECK(syllables.dim() == 3 && syllables.size(0) == ids.size(0) && syllables.size(1) == T,
                "syllables: expected shape [", ids.size(0), ", ", T, ", S], got ",
                syllables.sizes());
    // The mean over each piece's syllables; the padding row is zero, so summing all S slots sums
    // the present ones. A piece without syllables ([CLS], padding) adds nothing.
    auto present = syllables.ne(0).sum(2, /*keepdim=*/true).clamp_min(1).to(x.scalar_type());
    x = x + syllableEmbeddings(syllables).sum(2) / present;
  }
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
                                             const torch::Tensor& additiveMask,
                                             torch::Tensor* probsOut) {
  const int64_t B = hidden.size(0), T = hidden.size(1);
  if (!probsOut && DnnlInference(hidden, query->weight)) {
    // Inference: one product for q|k|v, then attention straight from its rows (which never
    // forms the probabilities).
    auto qkv = dnnl->Forward({query.get(), key.get(), value.get()}, hidden);
    return FusedSelfAttention(qkv, additiveMask.reshape({B, T}), numHeads_);
  }
  auto heads = [&](const torch::Tensor& x) {
    return x.view({B, T, numHeads_, headSize_}).transpose(1, 2);  // [B, heads, T, size]
  };
  auto q = heads(LinearForward(*query, hidden, packedQuery_.get()));
  auto k = heads(LinearForward(*key, hidden, packedKey_.get()));
  auto v = heads(LinearForward(*value, hidden, packedValue_.get()));
  auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(headSize_));
  scores = scores + additiveMask;
  auto probs = dropout(torch::softmax(scores, -1));
  if (probsOut) *probsOut = probs;
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
  if (DnnlInference(x, dense->weight)) {
    return DnnlLayerNorm(dnnl->Forward({dense.get()}, x, Epilogue::None, residual), *layerNorm);
  }
  return layerNorm(dropout(LinearForward(*dense, x, packed_.get())) + residual);
}

BertAttentionImpl::BertAttentionImpl(const ModelConfig& c) {
  self = register_module("self", BertSelfAttention(c));
  output = register_module("output", BertResidualOutput(c.hiddenSize, c));
}

torch::Tensor BertAttentionImpl::forward(const torch::Tensor& hidden,
                                         const torch::Tensor& additiveMask, torch::Tensor* probs) {
  return output(self(hidden, additiveMask, probs), hidden);
}

BertIntermediateImpl::BertIntermediateImpl(const ModelConfig& c) {
  dense = register_module("dense", torch::nn::Linear(c.hiddenSize, c.intermediateSize));
}

torch::Tensor BertIntermediateImpl::forward(const torch::Tensor& hidden) {
  if (DnnlInference(hidden, dense->weight)) {
    return dnnl->Forward({dense.get()}, hidden, Epilogue::Gelu, {}, /*feedsProduct=*/true);
  }
  return torch::gelu(LinearForward(*dense, hidden, packed_.get()));  // erf form: HF's "gelu"
}

BertLayerImpl::BertLayerImpl(const ModelConfig& c) {
  attention = register_module("attention", BertAttention(c));
  intermediate = register_module("intermediate", BertIntermediate(c));
  output = register_module("output", BertResidualOutput(c.intermediateSize, c));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& hidden, const torch::Tensor& additiveMask,
                                     torch::Tensor* probs) {
  auto attended = attention(hidden, additiveMask, probs);
  return output(intermediate(attended), attended);
}

BertEncoderImpl::BertEncoderImpl(const ModelConfig& c) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.numHiddenLayers; ++i) layer->push_back(BertLayer(c));
}

torch::Tensor BertEncoderImpl::forward(torch::Tensor hidden, const torch::Tensor& additiveMask,
                                       AttentionCapture* capture) {
  static const std::vector<int64_t> kNone;
  const auto& wanted = capture ? capture->layers : kNone;
  if (capture) capture->probs.assign(wanted.size(), {});
  for (size_t i = 0; i < layer->size(); ++i) {
    const bool keep = std::count(wanted.begin(), wanted.end(), static_cast<int64_t>(i)) > 0;
    torch::Tensor probs;
    hidden = layer[i]->as<BertLayerImpl>()->forward(hidden, additiveMask, keep ? &probs : nullptr);
    for (size_t j = 0; j < wanted.size(); ++j) {
      if (wanted[j] == static_cast<int64_t>(i)) capture->probs[j] = probs;
    }
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
                                     const torch::Tensor& tokenTypeIds,
                                     const torch::Tensor& syllables, AttentionCapture* capture) {
  auto types = tokenTypeIds.defined() ? tokenTypeIds : torch::zeros_like(ids);
  auto hidden = embeddings(ids, types, syllables);
  return encoder(hidden, AdditiveAttentionMask(attentionMask, hidden.scalar_type()), capture);
}

void BertModelImpl::SetProducts(Products products) {
  for (const auto& module : *encoder->layer) {
    auto* layer = module->as<BertLayerImpl>();
    for (auto* dnnl : {layer->attention->self->dnnl.get(), layer->attention->output->dnnl.get(),
                       layer->intermediate->dnnl.get(), layer->output->dnnl.get()}) {
      dnnl->SetProducts(products);
    }
  }
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
