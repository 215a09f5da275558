#include "train/trainer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "train/gradients.h"
#include "train/optimizer.h"

namespace koner::train {
namespace {

// Dropout on for the step, off again however the step ends: inference between steps must be
// deterministic.
class TrainingMode {
 public:
  explicit TrainingMode(model::NerModelImpl& model) : model_(model) { model_.train(); }
  ~TrainingMode() { model_.eval(); }

 private:
  model::NerModelImpl& model_;
};

// Gradients must not outlive a failed step either: the next step would add to them.
class GradientsCleared {
 public:
  explicit GradientsCleared(const std::vector<torch::Tensor>& parameters)
      : parameters_(parameters) {
    ClearGradients(parameters_);
  }
  ~GradientsCleared() { ClearGradients(parameters_); }

 private:
  const std::vector<torch::Tensor>& parameters_;
};

}  // namespace

Trainer::Trainer(model::NerModel model, const TrainerOptions& options)
    : model_(std::move(model)), options_(options) {
  Validate(options_);
  CheckAutocast(model_->device(), options_.autocast);
  for (const auto& item : model_->named_parameters(/*recurse=*/true)) {
    names_.push_back(item.key());
    shapes_.push_back(item.value().sizes().vec());
    parameters_.push_back(item.value());
  }
  groups_ = PlanGroups(names_, options_);
  optimizer_ = MakeAdamW(groups_, parameters_, options_);
}

StepResult Trainer::Step(const std::vector<MicroBatch>& batches, double lr, dist::Group* group) {
  if (!std::isfinite(lr) || lr < 0) {
    throw std::invalid_argument("lr: must be a finite number >= 0, got " + std::to_string(lr));
  }
  if (batches.empty() && !group) throw std::invalid_argument("batches: empty");
  auto& m = *model_;
  CheckAutocast(m.device(), options_.autocast);
  scaler_.Enable(options_.autocast == torch::kFloat16 || m.encoderDtype() == torch::kFloat16);
  const double scale = scaler_.scale();

  TrainingMode training(m);
  GradientsCleared cleared(parameters_);
  FollowParameters(*optimizer_, parameters_);

  // Each objective is normalised by its own global count (train/loss.h), known from the batches
  // before any forward: so the counts are summed over the ranks first, and every micro-batch's
  // losses are divided before its backward.
  StepResult result;
  PerObjective counts{};
  double sentences = 0, pieces = 0;
  for (const auto& batch : batches) {
    for (int o = 0; o < kObjectives; ++o) counts[o] += batch.targets[o];
    sentences += static_cast<double>(batch.sentences);
    pieces += static_cast<double>(batch.pieces);
  }
  if (group) {
    std::vector<double> local(counts.begin(), counts.end());
    local.push_back(sentences);
    local.push_back(pieces);
    auto sums = group->AllreduceScalars(local, dist::ReduceOp::kSum);
    for (int o = 0; o < kObjectives; ++o) counts[o] = sums[o];
    sentences = sums[kObjectives];
    pieces = sums[kObjectives + 1];
  }
  if (sentences <= 0) throw std::invalid_argument("batches: no sentences in this step on any rank");
  const PerObjective weights = Weights();

  auto zero = [&] { return torch::zeros({}, torch::TensorOptions().device(m.device())); };
  std::array<torch::Tensor, kObjectives> sums;
  for (auto& sum : sums) sum = zero();
  torch::Tensor mlmCorrect = zero(), rtdCorrect = zero();
  for (const auto& batch : batches) {
    auto losses = SumLosses(m, batch, options_.autocast, options_.distillTemperature);
    KeepSamples(result, losses);
    torch::Tensor objective = zero();
    for (int o = 0; o < kObjectives; ++o) {
      if (!losses.sums[o].defined()) continue;
      sums[o] += losses.sums[o].detach();
      objective = objective + losses.sums[o] * (weights[o] / std::max(1.0, counts[o]));
    }
    if (losses.mlmCorrect.defined()) mlmCorrect += losses.mlmCorrect.to(torch::kFloat32);
    if (losses.rtdCorrect.defined()) rtdCorrect += losses.rtdCorrect.to(torch::kFloat32);
    if (objective.requires_grad()) (scale == 1.0 ? objective : objective * scale).backward();
  }

  std::vector<double> totals;
  for (auto& sum : sums) totals.push_back(sum.item<double>());
  totals.push_back(mlmCorrect.item<double>());
  totals.push_back(rtdCorrect.item<double>());
  auto gradients = DenseGradients(parameters_);
  if (group) {
    totals = group->AllreduceScalars(totals, dist::ReduceOp::kSum);
    SumOverRanks(*group, gradients);
  }
  result.sentences = static_cast<int64_t>(sentences);
  result.pieces = static_cast<int64_t>(pieces);
  Summarise(result, totals, counts, weights);
  DivideGradients(gradients, scale);

  result.gradNorm = ClipGradNorm(parameters_, options_.clipNorm);
  // Every rank holds the same summed gradients, so every rank decides alike.
  result.skipped = !std::isfinite(result.gradNorm);
  scaler_.Update(!result.skipped);
  if (result.skipped) return result;

  SetLearningRate(*optimizer_, groups_, lr);
  optimizer_->step();
  return result;
}

StepResult Trainer::Evaluate(const std::vector<MicroBatch>& batches) {
  if (batches.empty()) throw std::invalid_argument("batches: empty");
  auto& m = *model_;
  torch::NoGradGuard noGrad;
  StepResult result;
  std::vector<double> totals(kObjectives + 2, 0.0);
  PerObjective counts{};
  for (const auto& batch : batches) {
    auto losses = SumLosses(m, batch, options_.autocast, options_.distillTemperature);
    KeepSamples(result, losses);
    for (int o = 0; o < kObjectives; ++o) {
      if (losses.sums[o].defined()) totals[o] += losses.sums[o].item<double>();
      counts[o] += batch.targets[o];
    }
    if (losses.mlmCorrect.defined()) totals[kObjectives] += losses.mlmCorrect.item<double>();
    if (losses.rtdCorrect.defined()) totals[kObjectives + 1] += losses.rtdCorrect.item<double>();
    result.sentences += batch.sentences;
    result.pieces += batch.pieces;
  }
  Summarise(result, totals, counts, Weights());
  return result;
}

PerObjective Trainer::Weights() const {
  PerObjective weights{};
  weights[kTagging] = 1.0;
  weights[kPos] = options_.posWeight;
  weights[kMlm] = 1.0;
  weights[kDistill] = options_.distillWeight;
  weights[kRtd] = 1.0;
  return weights;
}

void Trainer::Summarise(StepResult& result, const std::vector<double>& totals,
                        const PerObjective& counts, const PerObjective& weights) {
  result.loss = 0;
  for (int o = 0; o < kObjectives; ++o) {
    result.losses[o] = totals[o] / std::max(1.0, counts[o]);
    result.loss += weights[o] * result.losses[o];
  }
  result.mlmAccuracy = totals[kObjectives] / std::max(1.0, counts[kMlm]);
  result.rtdAccuracy = totals[kObjectives + 1] / std::max(1.0, counts[kRtd]);
}

void Trainer::KeepSamples(StepResult& result, const SummedLosses& losses) {
  if (!losses.mlmSamples.defined()) return;
  auto samples = losses.mlmSamples.contiguous();
  const int64_t* data = samples.data_ptr<int64_t>();
  result.mlmSamples.insert(result.mlmSamples.end(), data, data + samples.numel());
}

void Trainer::BroadcastParameters(dist::Group& group, int root) {
  torch::NoGradGuard noGrad;
  // The group's flat buffers are copied back into these handles, i.e. into the parameters.
  std::vector<torch::Tensor> tensors = parameters_;
  group.Broadcast(tensors, root);
}

void Trainer::WriteState(const std::string& path) {
  WriteOptimizerState(path, *optimizer_, names_, parameters_, scaler_, options_);
}

void Trainer::ApplyState(OptimizerState state) {
  ApplyOptimizerState(std::move(state), *optimizer_, parameters_, scaler_);
}

}  // namespace koner::train
