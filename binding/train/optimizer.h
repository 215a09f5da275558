// AdamW over the model's parameters in two groups, as BERT fine-tuning recipes (Hugging Face's
// examples) do: decoupled weight decay for weight matrices, embeddings and the CRF's scores; none
// for biases and LayerNorm weights, whose decay only pulls the network towards a worse
// normalisation. LibTorch's AdamW is the same update as torch.optim.AdamW (step-wise decay,
// bias-corrected moments, eps added after the square root).
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "train/options.h"

namespace koner::train {

// Whether a parameter (by checkpoint name) gets weight decay: all but `*.bias` and LayerNorms.
bool DecaysWeight(const std::string& name);

// An AdamW with the decay group first, then the no-decay group (an empty group is left out).
// The learning rate is a placeholder until SetLearningRate.
std::unique_ptr<torch::optim::AdamW> MakeAdamW(const std::vector<std::string>& names,
                                               const std::vector<torch::Tensor>& parameters,
                                               const TrainerOptions& options);

void SetLearningRate(torch::optim::AdamW& optimizer, double lr);

// The state AdamW keeps for `parameter`, or null before its first update.
torch::optim::AdamWParamState* StateOf(torch::optim::AdamW& optimizer,
                                       const torch::Tensor& parameter);
void SetStateOf(torch::optim::AdamW& optimizer, const torch::Tensor& parameter,
                std::unique_ptr<torch::optim::AdamWParamState> state);

// Moves each parameter's moments to its device and dtype: Model.to() moves parameters in place,
// but not the optimizer's tensors, and AdamW's update needs both on one device.
void FollowParameters(torch::optim::AdamW& optimizer, const std::vector<torch::Tensor>& parameters);

}  // namespace koner::train
