// AdamW over the model's parameters in two groups, as BERT fine-tuning recipes (Hugging Face's
// examples) do: decoupled weight decay for weight matrices, embeddings and the CRF's scores; none
// for biases and LayerNorm weights, whose decay only pulls the network towards a worse
// normalisation. LibTorch's AdamW is the same update as torch.optim.AdamW (step-wise decay,
// bias-corrected moments, eps added after the square root).
//
// With a layer decay d < 1 (ELECTRA's fine-tuning recipe, Clark et al. 2020) each group is also
// split by depth, and a parameter at depth k of D gets the rate lr · d^(D − k): the heads and CRF
// (depth D = layers + 1) the full rate, encoder layer i (depth i + 1) less, the embeddings
// (depth 0) least. Pretrained lower layers then move less than the freshly drawn head.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "train/options.h"

namespace koner::train {

// Whether a parameter (by checkpoint name) gets weight decay: all but `*.bias` and LayerNorms.
bool DecaysWeight(const std::string& name);

// A parameter's depth (by checkpoint name) in a network of `layers` encoder layers: 0 for
// `bert.embeddings.*`, i + 1 for `bert.encoder.layer.<i>.*`, layers + 1 for everything else.
int Depth(const std::string& name, int layers);

// One parameter group: the indices of its parameters, whether they decay, and the share of the
// step's learning rate they get.
struct ParamGroup {
  std::vector<size_t> members;
  bool decays = true;
  double lrScale = 1.0;
};

// The groups in AdamW's order: by decay (decaying first), then by depth from the top, empty
// groups left out. One group per decay class when options.layerDecay is 1.
std::vector<ParamGroup> PlanGroups(const std::vector<std::string>& names,
                                   const TrainerOptions& options);

// An AdamW over `groups`. The learning rate is a placeholder until SetLearningRate.
std::unique_ptr<torch::optim::AdamW> MakeAdamW(const std::vector<ParamGroup>& groups,
                                               const std::vector<torch::Tensor>& parameters,
                                               const TrainerOptions& options);

// Sets each group's rate to lr · its lrScale; `groups` is what the optimizer was made from.
void SetLearningRate(torch::optim::AdamW& optimizer, const std::vector<ParamGroup>& groups,
                     double lr);

// The state AdamW keeps for `parameter`, or null before its first update.
torch::optim::AdamWParamState* StateOf(torch::optim::AdamW& optimizer,
                                       const torch::Tensor& parameter);
void SetStateOf(torch::optim::AdamW& optimizer, const torch::Tensor& parameter,
                std::unique_ptr<torch::optim::AdamWParamState> state);

// Moves each parameter's moments to its device and dtype: Model.to() moves parameters in place,
// but not the optimizer's tensors, and AdamW's update needs both on one device.
void FollowParameters(torch::optim::AdamW& optimizer, const std::vector<torch::Tensor>& parameters);

}  // namespace koner::train
