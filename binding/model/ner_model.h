// The NER model: the BERT encoder registered as `bert` plus the configured head, so that its
// parameter names are the model directory's safetensors keys (bert.embeddings.…, classifier.*,
// crf.*, bilstm.* / bigru.*). Mixed precision on CUDA is by placement, not autocast: the
// encoder's parameters are stored in the chosen dtype (fp32, bf16 or fp16) and its output is
// cast to fp32 before the head, whose parameters always stay fp32; the CRF math is fp32 either
// way. On the CPU, bf16 and int8 are the precision of the encoder's matrix products at inference
// (oneDNN, dnnl_ops.h): the parameters, LayerNorm, softmax and the residual stream stay fp32.
//
// The optional parts of the config add modules beside the head: `cls` (the masked-LM head of
// pretraining), `discriminator_predictions` (ELECTRA's replaced-token detection), `pos_classifier`
// (the auxiliary POS head) and, inside the encoder, the syllable channel. A model with head none is
// an encoder only: it trains (masked LM) but cannot tag.
#pragma once
#include <torch/torch.h>

#include <memory>

#include "model/bert.h"
#include "model/config.h"
#include "model/heads.h"
#include "model/mlm_head.h"
#include "model/rtd_head.h"

namespace koner::model {

class NerModelImpl : public torch::nn::Module {
 public:
  // Validates the config, builds every module and initialises it as HF does (eval mode).
  explicit NerModelImpl(const ModelConfig& config);

  const ModelConfig& config() const { return config_; }
  // The tagging head; throws for head none.
  Head& head();
  MlmHeadImpl* mlm() { return mlm_ ? mlm_.get() : nullptr; }
  RtdHeadImpl* rtd() { return rtd_ ? rtd_.get() : nullptr; }
  torch::nn::LinearImpl* posClassifier() { return pos_ ? pos_.get() : nullptr; }
  torch::Device device() const { return device_; }
  torch::ScalarType encoderDtype() const { return encoderDtype_; }

  // ids [B, T] int64 and a prefix mask [B, T] (bool), both on the model's device; tokenTypeIds
  // undefined for zeros; syllables [B, T, S] int64 when the config has a syllable channel. The
  // encoder's last hidden states [B, T, H] in the encoder's dtype; `attentions`, when given,
  // receives the attention probabilities of the layers it lists.
  torch::Tensor Hidden(const torch::Tensor& ids, const torch::Tensor& mask,
                       const torch::Tensor& tokenTypeIds = {}, const torch::Tensor& syllables = {},
                       AttentionCapture* attentions = nullptr);
  // Encoder + head: emissions [B, T, K] float32.
  torch::Tensor Emissions(const torch::Tensor& ids, const torch::Tensor& mask,
                          const torch::Tensor& tokenTypeIds = {},
                          const torch::Tensor& syllables = {},
                          AttentionCapture* attentions = nullptr);

  // Re-draws every parameter: HF's init for the encoder and classifier, PyTorch's for RNNs,
  // uniform(-0.1, 0.1) for the CRF (from LibTorch's global generator).
  void ResetParameters();
  // Moves the encoder to (device, dtype) and the head to (device, float32). On the CPU,
  // bfloat16 and kQInt8 (dynamic int8 quantization) set the products' precision instead, and
  // throw where the CPU lacks the instructions (naming them) or oneDNN's primitives are absent.
  void Place(const torch::Device& device, torch::ScalarType encoderDtype);

  BertModel bert{nullptr};

 private:
  void ResetAuxiliary();
  // Hidden's inference on the CPU with several threads: see ner_model.cc.
  torch::Tensor HiddenInParts(const torch::Tensor& ids, const torch::Tensor& mask,
                              const torch::Tensor& tokenTypeIds, const torch::Tensor& syllables);

  ModelConfig config_;
  std::unique_ptr<Head> head_;  // null for head none
  MlmHead mlm_{nullptr};
  RtdHead rtd_{nullptr};
  torch::nn::Linear pos_{nullptr};
  torch::Device device_{torch::kCPU};
  torch::ScalarType encoderDtype_ = torch::kFloat32;
};
TORCH_MODULE(NerModel);

}  // namespace koner::model
