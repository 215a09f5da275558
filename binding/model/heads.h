// The token-classification heads over the encoder's last hidden states, chosen by config.head:
//   softmax     dropout -> classifier; loss = cross entropy over valid pieces
//   crf         dropout -> classifier -> CRF
//   bilstm-crf  dropout -> bidirectional LSTM (rnnHiddenSize per direction) -> classifier -> CRF
//   bigru-crf   the same with a GRU
// The head registers its modules on the owning model, not under a prefix of its own, so the
// checkpoint keys are HF's and pytorch-crf's: classifier.*, crf.*, bilstm.* / bigru.* (PyTorch
// nn.LSTM/nn.GRU names: weight_ih_l0, …, weight_ih_l0_reverse). The head always computes in fp32.
#pragma once
#include <torch/torch.h>

#include <optional>
#include <tuple>

#include "crf/crf.h"
#include "model/config.h"

namespace koner::model {

// The CRF's parameters (the math is koner::crf), initialised as pytorch-crf does.
class CrfImpl : public torch::nn::Module {
 public:
  explicit CrfImpl(int64_t numTags);
  void ResetParameters();

  torch::Tensor transitions;                       // [K, K]: [i][j] scores tag i followed by tag j
  torch::Tensor startTransitions, endTransitions;  // [K]
};
TORCH_MODULE(Crf);

class Head {
 public:
  // Registers the head's modules on `owner` (which must outlive the head).
  Head(torch::nn::Module& owner, const ModelConfig& config);

  HeadKind kind() const { return kind_; }

  // Emissions [B, T, K] float32 from hidden [B, T, H] (any floating dtype) and a prefix mask
  // [B, T]. The RNN runs on packed sequences, so a piece's emissions never depend on padding.
  torch::Tensor Emissions(const torch::Tensor& hidden, const torch::Tensor& mask);

  // The training loss for tags [B, T] (ignored beyond each length). Default reduction: the mean
  // cross entropy over valid pieces for softmax (HF's), the batch mean of the NLL for CRF heads
  // (pytorch-crf's 'mean').
  torch::Tensor Loss(const torch::Tensor& emissions, const torch::Tensor& tags,
                     const torch::Tensor& mask,
                     std::optional<crf::Reduction> reduction = std::nullopt);

  // Best paths. The softmax head decodes through the same routine with log-softmax emissions and
  // zero transitions, so its scores are log-probabilities and n-best and constraints work alike
  // (with one best path and no constraints that is the argmax).
  crf::Paths Decode(const torch::Tensor& emissions, const torch::Tensor& mask, int64_t nBest,
                    const crf::Constraints& constraints);

  // P(tag | pieces) [B, T] x K, 0 beyond each length: CRF posteriors, or the softmax
  // probabilities (constrained posteriors of the softmax head when constraints are given).
  torch::Tensor Marginals(const torch::Tensor& emissions, const torch::Tensor& mask,
                          const crf::Constraints& constraints);

  void ResetParameters(double initializerRange);
  // Head parameters always stay float32: the CRF computes in fp32 anyway, and the classifier
  // and RNN are a rounding error of the encoder's cost.
  void To(const torch::Device& device);

 private:
  // Transitions, start and end for the decoder: the CRF's, or zeros for the softmax head.
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> Scores(const torch::Tensor& like);
  torch::Tensor DecoderEmissions(const torch::Tensor& emissions);

  HeadKind kind_;
  int64_t numTags_;
  torch::nn::Dropout dropout_{nullptr};
  torch::nn::LSTM lstm_{nullptr};
  torch::nn::GRU gru_{nullptr};
  torch::nn::Linear classifier_{nullptr};
  Crf crf_{nullptr};
};

}  // namespace koner::model
