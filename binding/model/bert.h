// BERT as torch::nn modules whose registered names are Hugging Face's (modeling_bert.py), so that
// named_parameters() yields the keys of a transformers checkpoint: embeddings.word_embeddings.
// weight, encoder.layer.N.attention.self.query.weight, … The forward pass follows HF's eager
// numerics: erf GELU, post-LayerNorm residual blocks, scores scaled after QK^T, and an additive
// padding mask of the dtype's lowest value.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <mutex>
#include <vector>

#include "model/config.h"
#include "model/dnnl_ops.h"

namespace koner::model {

// Whether LinearForward takes oneDNN for this input and weight: CPU float32 inference (no
// autograd), LibTorch built with MKLDNN and not disabled (torch.backends.mkldnn, or the
// environment variable KONER_ONEDNN=0 at the first forward).
bool UsesOneDnn(const torch::Tensor& x, const torch::Tensor& weight);

// A Linear's weight prepacked for oneDNN: laid out once in oneDNN's blocked format (as the weight
// of the equivalent 1x1 convolution) instead of being re-laid out on every call, which costs as
// much as the product itself for a few rows. Packed at first use and again whenever the weight
// changes: other storage or shape, or an in-place update (a load, a re-draw, an optimizer step)
// moving its version counter. Safe to call from concurrent inferences.
class PackedWeight {
 public:
  // The packed form of `weight` [out, in] (CPU float32, not an inference tensor).
  torch::Tensor Get(const torch::Tensor& weight);

 private:
  struct Packed {
    c10::Storage storage;  // held, so that its address cannot be reused while we compare it
    int64_t offset = 0, version = -1;
    std::vector<int64_t> sizes;
    torch::Tensor weight;  // mkldnn layout, [out, in, 1, 1]
  };
  std::mutex mutex_;
  std::shared_ptr<const Packed> packed_;
};

// layer(x) for x [..., in]. With UsesOneDnn: oneDNN's kernels (those of the LibTorch build: AVX-512
// where the system BLAS may run older ones), on `packed`'s weights when given; the same math in
// another summation order, within float32 rounding of the BLAS path. Otherwise the module.
torch::Tensor LinearForward(torch::nn::LinearImpl& layer, const torch::Tensor& x,
                            PackedWeight* packed = nullptr);

// HF's output_attentions for some layers: a forward given one sets probs[j] to the attention
// probabilities [B, heads, T, T] (softmax over keys, in the encoder's dtype) of layer layers[j].
// A forward without one keeps none, at no extra cost.
struct AttentionCapture {
  std::vector<int64_t> layers;
  std::vector<torch::Tensor> probs;
};

class BertEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit BertEmbeddingsImpl(const ModelConfig& config);
  // ids, tokenTypeIds: [B, T] int64; positions are 0..T-1. syllables [B, T, S] int64 (0 = none)
  // when the config has a syllable channel, which then requires them; undefined otherwise.
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& tokenTypeIds,
                        const torch::Tensor& syllables = {});
  // Zeroes the syllable embeddings (no-op without the channel): a channel added to a pretrained
  // encoder then starts as exactly that encoder, and learns from there (an embedding's gradient
  // does not depend on its value).
  void ResetSyllables();

  torch::nn::Embedding wordEmbeddings{nullptr}, positionEmbeddings{nullptr},
      tokenTypeEmbeddings{nullptr};
  torch::nn::Embedding syllableEmbeddings{nullptr};  // null without the syllable channel
  torch::nn::LayerNorm layerNorm{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(BertEmbeddings);

class BertSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit BertSelfAttentionImpl(const ModelConfig& config);
  // hidden [B, T, H]; additiveMask [B, 1, 1, T] in hidden's dtype (0 or lowest). When `probs`
  // is given it receives the attention probabilities [B, heads, T, T].
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& additiveMask,
                        torch::Tensor* probs = nullptr);

  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
  torch::nn::Dropout dropout{nullptr};
  // Inference on oneDNN: query, key and value stacked into one product (packed from the three
  // Linears, whose parameters keep their names).
  std::shared_ptr<DnnlLinear> dnnl = std::make_shared<DnnlLinear>();

 private:
  int64_t numHeads_, headSize_;
  std::shared_ptr<PackedWeight> packedQuery_ = std::make_shared<PackedWeight>(),
                                packedKey_ = std::make_shared<PackedWeight>(),
                                packedValue_ = std::make_shared<PackedWeight>();
};
TORCH_MODULE(BertSelfAttention);

// dense -> dropout -> LayerNorm(x + residual): BertSelfOutput and BertOutput alike.
class BertResidualOutputImpl : public torch::nn::Module {
 public:
  BertResidualOutputImpl(int64_t in, const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual);

  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm layerNorm{nullptr};
  torch::nn::Dropout dropout{nullptr};
  std::shared_ptr<DnnlLinear> dnnl = std::make_shared<DnnlLinear>();  // + residual inside

 private:
  std::shared_ptr<PackedWeight> packed_ = std::make_shared<PackedWeight>();
};
TORCH_MODULE(BertResidualOutput);

class BertAttentionImpl : public torch::nn::Module {
 public:
  explicit BertAttentionImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& additiveMask,
                        torch::Tensor* probs = nullptr);

  BertSelfAttention self{nullptr};
  BertResidualOutput output{nullptr};
};
TORCH_MODULE(BertAttention);

class BertIntermediateImpl : public torch::nn::Module {
 public:
  explicit BertIntermediateImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden);

  torch::nn::Linear dense{nullptr};
  std::shared_ptr<DnnlLinear> dnnl = std::make_shared<DnnlLinear>();  // GELU inside

 private:
  std::shared_ptr<PackedWeight> packed_ = std::make_shared<PackedWeight>();
};
TORCH_MODULE(BertIntermediate);

class BertLayerImpl : public torch::nn::Module {
 public:
  explicit BertLayerImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& additiveMask,
                        torch::Tensor* probs = nullptr);

  BertAttention attention{nullptr};
  BertIntermediate intermediate{nullptr};
  BertResidualOutput output{nullptr};
};
TORCH_MODULE(BertLayer);

class BertEncoderImpl : public torch::nn::Module {
 public:
  explicit BertEncoderImpl(const ModelConfig& config);
  torch::Tensor forward(torch::Tensor hidden, const torch::Tensor& additiveMask,
                        AttentionCapture* capture = nullptr);

  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(BertEncoder);

class BertPoolerImpl : public torch::nn::Module {
 public:
  explicit BertPoolerImpl(const ModelConfig& config);
  // tanh(dense(hidden[:, 0])): [B, H].
  torch::Tensor forward(const torch::Tensor& hidden);

  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(BertPooler);

class BertModelImpl : public torch::nn::Module {
 public:
  // Token classification uses no pooler (HF's add_pooling_layer=False).
  explicit BertModelImpl(const ModelConfig& config, bool withPooler = false);

  // ids [B, T] int64; attentionMask [B, T] (bool or 0/1, 1 = real piece); tokenTypeIds [B, T]
  // int64 or undefined for zeros; syllables as BertEmbeddings takes them. Returns the last hidden
  // states [B, T, H] in the parameters' dtype; fills `capture` when given.
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& attentionMask,
                        const torch::Tensor& tokenTypeIds = {}, const torch::Tensor& syllables = {},
                        AttentionCapture* capture = nullptr);

  // The precision of the encoder's matrix products at inference on the CPU (dnnl_ops.h); the
  // parameters stay as they are.
  void SetProducts(Products products);

  BertEmbeddings embeddings{nullptr};
  BertEncoder encoder{nullptr};
  BertPooler pooler{nullptr};  // null unless withPooler
};
TORCH_MODULE(BertModel);

// HF's mask: 0 where attentionMask is set, the lowest finite value of `dtype` elsewhere, shaped
// [B, 1, 1, T] to broadcast over heads and query positions.
torch::Tensor AdditiveAttentionMask(const torch::Tensor& attentionMask, torch::ScalarType dtype);

// HF's _init_weights over every submodule of `module`: Linear and Embedding weights from
// normal(0, range) with zero bias (and a zero padding row), LayerNorm weight 1 and bias 0.
// Other modules (RNNs) keep their own initialisation.
void InitHfWeights(torch::nn::Module& module, double initializerRange);

}  // namespace koner::model
