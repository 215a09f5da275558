#include "train/optimizer_state.h"

#include <iomanip>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "io/safetensors.h"
#include "train/optimizer.h"

namespace koner::train {
namespace {

constexpr char kFormat[] = "koner-adamw";
constexpr char kVersion[] = "1";

std::string Number(double x) {
  std::ostringstream out;
  out << std::setprecision(17) << x;
  return out.str();
}

std::string ShapeText(torch::IntArrayRef shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

// "a, b, c and 7 more": a state file of another model would otherwise list hundreds of names.
std::string Listed(const std::vector<std::string>& items) {
  constexpr size_t kShown = 8;
  std::string out;
  for (size_t i = 0; i < items.size() && i < kShown; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > kShown) out += " and " + std::to_string(items.size() - kShown) + " more";
  return out;
}

}  // namespace

void WriteOptimizerState(const std::string& path, torch::optim::AdamW& optimizer,
                         const std::vector<std::string>& names,
                         const std::vector<torch::Tensor>& parameters, const LossScaler& scaler,
                         const TrainerOptions& options) {
  std::map<std::string, torch::Tensor> tensors;
  for (size_t i = 0; i < parameters.size(); ++i) {
    const auto* state = StateOf(optimizer, parameters[i]);
    const auto zeros = [&] { return torch::zeros_like(parameters[i], torch::kCPU); };
    tensors["exp_avg." + names[i]] = state ? state->exp_avg() : zeros();
    tensors["exp_avg_sq." + names[i]] = state ? state->exp_avg_sq() : zeros();
    tensors["step." + names[i]] = torch::scalar_tensor(state ? state->step() : 0, torch::kInt64);
  }
  const std::map<std::string, std::string> metadata = {
      {"format", kFormat},
      {"version", kVersion},
      {"parameters", std::to_string(parameters.size())},
      {"lossScale", Number(scaler.rawScale())},
      {"lossScaleGrowth", std::to_string(scaler.growthTracker())},
      {"weightDecay", Number(options.weightDecay)},
      {"betas", Number(options.beta1) + "," + Number(options.beta2)},
      {"eps", Number(options.eps)},
  };
  io::WriteSafetensors(path, tensors, metadata);
}

OptimizerState ReadOptimizerState(const std::string& path, const std::vector<std::string>& names,
                                  const std::vector<std::vector<int64_t>>& shapes) {
  auto file = io::ReadSafetensors(path);
  auto meta = [&](const char* key) {
    auto it = file.metadata.find(key);
    return it == file.metadata.end() ? std::string() : it->second;
  };
  if (meta("format") != kFormat) {
    throw std::runtime_error(path + ": not a koner optimizer state (metadata format is \"" +
                             meta("format") + "\", expected \"" + kFormat + "\")");
  }
  if (meta("version") != kVersion) {
    throw std::runtime_error(path + ": optimizer state version \"" + meta("version") +
                             "\" is not supported (this koner reads version " + kVersion + ")");
  }

  OptimizerState out;
  out.moments.resize(names.size());
  std::vector<std::string> missing, misshaped;
  std::map<std::string, torch::Tensor> rest = file.tensors;
  auto take = [&](const std::string& key) {
    auto it = rest.find(key);
    if (it == rest.end()) {
      missing.push_back(key);
      return torch::Tensor();
    }
    auto t = it->second;
    rest.erase(it);
    return t;
  };
  for (size_t i = 0; i < names.size(); ++i) {
    auto& m = out.moments[i];
    const std::pair<const char*, torch::Tensor*> slots[] = {{"exp_avg.", &m.expAvg},
                                                            {"exp_avg_sq.", &m.expAvgSq}};
    for (const auto& [kind, slot] : slots) {
      const std::string key = kind + names[i];
      auto t = take(key);
      if (!t.defined()) continue;
      if (!t.is_floating_point()) {
        misshaped.push_back(key + " is not floating point");
        continue;
      }
      if (t.sizes() != torch::IntArrayRef(shapes[i])) {
        misshaped.push_back(key + " has shape " + ShapeText(t.sizes()) + ", the parameter " +
                            ShapeText(shapes[i]));
        continue;
      }
      *slot = t;
    }
    const std::string key = "step." + names[i];
    auto step = take(key);
    if (!step.defined()) continue;
    if (step.numel() != 1 || step.scalar_type() != torch::kInt64 || step.item<int64_t>() < 0) {
      misshaped.push_back(key + " must be one non-negative int64");
      continue;
    }
    m.step = step.item<int64_t>();
  }
  std::vector<std::string> unexpected;
  for (const auto& [key, t] : rest) unexpected.push_back(key);
  if (!missing.empty() || !misshaped.empty() || !unexpected.empty()) {
    std::string message = path + ": the optimizer state does not match the model's parameters";
    if (!missing.empty()) message += "; missing: " + Listed(missing);
    if (!misshaped.empty()) message += "; mis-shaped: " + Listed(misshaped);
    if (!unexpected.empty()) message += "; unexpected: " + Listed(unexpected);
    throw std::runtime_error(message);
  }

  if (!meta("lossScale").empty()) {
    try {
      size_t used = 0;
      out.lossScale = std::stod(meta("lossScale"), &used);
      out.lossScaleGrowth = std::stoll(meta("lossScaleGrowth"));
      if (used != meta("lossScale").size()) throw std::invalid_argument("trailing text");
    } catch (const std::exception&) {
      throw std::runtime_error(path + ": metadata lossScale/lossScaleGrowth are not numbers");
    }
    if (!(out.lossScale > 0) || out.lossScaleGrowth < 0) {
      throw std::runtime_error(path + ": metadata lossScale/lossScaleGrowth are out of range");
    }
  }
  return out;
}

void ApplyOptimizerState(OptimizerState state, torch::optim::AdamW& optimizer,
                         const std::vector<torch::Tensor>& parameters, LossScaler& scaler) {
  // Converted first, installed after: a failure (out of device memory) leaves the old state.
  std::vector<std::unique_ptr<torch::optim::AdamWParamState>> installed;
  for (size_t i = 0; i < parameters.size(); ++i) {
    const auto& p = parameters[i];
    auto& m = state.moments[i];
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->step(m.step);
    s->exp_avg(m.expAvg.to(p.device(), p.scalar_type(), /*non_blocking=*/false, /*copy=*/true));
    s->exp_avg_sq(
        m.expAvgSq.to(p.device(), p.scalar_type(), /*non_blocking=*/false, /*copy=*/true));
    installed.push_back(std::move(s));
  }
  for (size_t i = 0; i < parameters.size(); ++i) {
    SetStateOf(optimizer, parameters[i], std::move(installed[i]));
  }
  scaler.Restore(state.lossScale, state.lossScaleGrowth);
}

}  // namespace koner::train
