#include "train/optimizer.h"

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

}  // namespace

bool DecaysWeight(const std::string& name) {
  return !EndsWith(name, ".bias") && name.find("LayerNorm") == std::string::npos;
}

std::unique_ptr<torch::optim::AdamW> MakeAdamW(const std::vector<std::string>& names,
                                               const std::vector<torch::Tensor>& parameters,
                                               const TrainerOptions& options) {
  std::vector<torch::Tensor> decay, noDecay;
  for (size_t i = 0; i < parameters.size(); ++i) {
    (DecaysWeight(names[i]) ? decay : noDecay).push_back(parameters[i]);
  }
  auto defaults = torch::optim::AdamWOptions(1e-3)
                      .betas({options.beta1, options.beta2})
                      .eps(options.eps)
                      .weight_decay(options.weightDecay);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!decay.empty()) {
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(defaults));
  }
  if (!noDecay.empty()) {
    auto none = defaults;
    none.weight_decay(0.0);
    groups.emplace_back(noDecay, std::make_unique<torch::optim::AdamWOptions>(none));
  }
  return std::make_unique<torch::optim::AdamW>(std::move(groups), defaults);
}

void SetLearningRate(torch::optim::AdamW& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
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
