#include "train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <type_traits>
#include <utility>

namespace koner::train {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// AdamW keys its state by the parameter's TensorImpl: as the pointer's text in LibTorch 1.13
// (c10::guts::to_string), as the pointer itself since 2.1.
using StateMap = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;

template <typename Key>
Key KeyFor(c10::TensorImpl* impl) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text;
    text << impl;
    return text.str();
  } else {
    return impl;
  }
}

typename StateMap::key_type KeyOf(const torch::Tensor& parameter) {
  return KeyFor<typename StateMap::key_type>(parameter.unsafeGetTensorImpl());
}

const std::string kEmbeddings = "bert.embeddings.", kLayer = "bert.encoder.layer.";

}  // namespace

bool DecaysWeight(const std::string& name) {
  return !EndsWith(name, ".bias") && name.find("LayerNorm") == std::string::npos;
}

int Depth(const std::string& name, int layers) {
  if (name.compare(0, kEmbeddings.size(), kEmbeddings) == 0) return 0;
  if (name.compare(0, kLayer.size(), kLayer) == 0) {
    return 1 + std::stoi(name.substr(kLayer.size()));
  }
  return layers + 1;
}

std::vector<ParamGroup> PlanGroups(const std::vector<std::string>& names,
                                   const TrainerOptions& options) {
  // The layer count is read off the names, so a checkpoint's own layout decides it.
  int layers = 0;
  for (const auto& name : names) {
    if (name.compare(0, kLayer.size(), kLayer) == 0) layers = std::max(layers, Depth(name, 0));
  }
  const bool byDepth = options.layerDecay < 1.0;
  std::vector<ParamGroup> groups;
  for (bool decays : {true, false}) {
    for (int depth = layers + 1; depth >= 0; --depth) {
      ParamGroup group;
      group.decays = decays;
      group.lrScale = byDepth ? std::pow(options.layerDecay, layers + 1 - depth) : 1.0;
      for (size_t i = 0; i < names.size(); ++i) {
        if (DecaysWeight(names[i]) == decays && (!byDepth || Depth(names[i], layers) == depth)) {
          group.members.push_back(i);
        }
      }
      if (!group.members.empty()) groups.push_back(std::move(group));
      if (!byDepth) break;
    }
  }
  return groups;
}

std::unique_ptr<torch::optim::AdamW> MakeAdamW(const std::vector<ParamGroup>& groups,
                                               const std::vector<torch::Tensor>& parameters,
                                               const TrainerOptions& options) {
  auto defaults = torch::optim::AdamWOptions(1e-3)
                      .betas({options.beta1, options.beta2})
                      .eps(options.eps)
                      .weight_decay(options.weightDecay);
  std::vector<torch::optim::OptimizerParamGroup> adamGroups;
  for (const auto& group : groups) {
    std::vector<torch::Tensor> members;
    for (size_t i : group.members) members.push_back(parameters[i]);
    auto groupOptions = defaults;
    if (!group.decays) groupOptions.weight_decay(0.0);
    adamGroups.emplace_back(std::move(members),
                            std::make_unique<torch::optim::AdamWOptions>(groupOptions));
  }
  return std::make_unique<torch::optim::AdamW>(std::move(adamGroups), defaults);
}

void SetLearningRate(torch::optim::AdamW& optimizer, const std::vector<ParamGroup>& groups,
                     double lr) {
  auto& adamGroups = optimizer.param_groups();
  for (size_t g = 0; g < adamGroups.size(); ++g) {
    static_cast<torch::optim::AdamWOptions&>(adamGroups[g].options()).lr(lr * groups[g].lrScale);
  }
}

torch::optim::AdamWParamState* StateOf(torch::optim::AdamW& optimizer,
                                       const torch::Tensor& parameter) {
  auto it = optimizer.state().find(KeyOf(parameter));
  if (it == optimizer.state().end()) return nullptr;
  return static_cast<torch::optim::AdamWParamState*>(it->second.get());
}

void SetStateOf(torch::optim::AdamW& optimizer, const torch::Tensor& parameter,
                std::unique_ptr<torch::optim::AdamWParamState> state) {
  optimizer.state()[KeyOf(parameter)] = std::move(state);
}

void FollowParameters(torch::optim::AdamW& optimizer,
                      const std::vector<torch::Tensor>& parameters) {
  for (const auto& p : parameters) {
    auto* state = StateOf(optimizer, p);
    if (!state) continue;
    auto follow = [&](const torch::Tensor& t) {
      return t.defined() && (t.device() != p.device() || t.scalar_type() != p.scalar_type())
                 ? t.to(p.device(), p.scalar_type())
                 : t;
    };
    state->exp_avg(follow(state->exp_avg()));
    state->exp_avg_sq(follow(state->exp_avg_sq()));
    state->max_exp_avg_sq(follow(state->max_exp_avg_sq()));
  }
}

}  // namespace koner::train
