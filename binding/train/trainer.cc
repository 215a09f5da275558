#include "train/trainer.h"

#include <algorithm>
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
  for (const auto& item : model_->named_parameters(/*recurse=*/true)) {
    names_.push_back(item.key());
    shapes_.push_back(item.value().sizes().vec());
    parameters_.push_back(item.value());
  }
  optimizer_ = MakeAdamW(names_, parameters_, options_);
}

StepResult Trainer::Step(const std::vector<MicroBatch>& batches, double lr, dist::Group* group) {
  if (!std::isfinite(lr) || lr < 0) {
    throw std::invalid_argument("lr: must be a finite number >= 0, got " + std::to_string(lr));
  }
  if (batches.empty() && !group) throw std::invalid_argument("batches: empty");
  auto& m = *model_;
  if (options_.autocast != torch::kFloat32 && !m.device().is_cuda()) {
    throw std::invalid_argument(std::string("options.autocast: '") +
                                (options_.autocast == torch::kBFloat16 ? "bfloat16" : "float16") +
                                "' needs the model on CUDA (it is on " + m.device().str() +
                                "); the CPU trains in float32");
  }
  scaler_.Enable(options_.autocast == torch::kFloat16 || m.encoderDtype() == torch::kFloat16);
  const double scale = scaler_.scale();

  TrainingMode training(m);
  GradientsCleared cleared(parameters_);
  FollowParameters(*optimizer_, parameters_);

  // Each objective is normalised by its own global count (train/loss.h), known from the batches'
  // shapes before any forward: so the counts are summed over the ranks first, and every
  // micro-batch's loss is divided before its backward.
  StepResult result;
  double counts[4] = {0, 0, 0, 0};  // sentences, pieces, POS targets, masked pieces
  for (const auto& batch : batches) {
    counts[0] += static_cast<double>(batch.sentences);
    counts[1] += static_cast<double>(batch.pieces);
    counts[2] += static_cast<double>(batch.posPieces);
    counts[3] += static_cast<double>(batch.maskedPieces);
  }
  if (group) {
    auto sums =
        group->AllreduceScalars({counts[0], counts[1], counts[2], counts[3]}, dist::ReduceOp::kSum);
    for (int i = 0; i < 4; ++i) counts[i] = sums[i];
  }
  if (counts[0] <= 0) throw std::invalid_argument("batches: no sentences in this step on any rank");
  const double taggingCount = CountOf(NormaliserOf(m.config().head), counts[0], counts[1]);
  const double posCount = std::max(1.0, counts[2]), mlmCount = std::max(1.0, counts[3]);

  auto zero = [&] { return torch::zeros({}, torch::TensorOptions().device(m.device())); };
  torch::Tensor tagging = zero(), pos = zero(), mlm = zero(), mlmCorrect = zero();
  for (const auto& batch : batches) {
    auto losses = SumLosses(m, batch, options_.autocast);
    torch::Tensor objective = zero();
    if (losses.tagging.defined()) {
      tagging += losses.tagging.detach();
      objective = objective + losses.tagging / taggingCount;
    }
    if (losses.pos.defined()) {
      pos += losses.pos.detach();
      objective = objective + losses.pos * (options_.posWeight / posCount);
    }
    if (losses.mlm.defined()) {
      mlm += losses.mlm.detach();
      mlmCorrect += losses.mlmCorrect.to(torch::kFloat32);
      objective = objective + losses.mlm / mlmCount;
    }
    if (objective.requires_grad()) (scale == 1.0 ? objective : objective * scale).backward();
  }

  double sums[4] = {tagging.item<double>(), pos.item<double>(), mlm.item<double>(),
                    mlmCorrect.item<double>()};
  auto gradients = DenseGradients(parameters_);
  if (group) {
    auto reduced =
        group->AllreduceScalars({sums[0], sums[1], sums[2], sums[3]}, dist::ReduceOp::kSum);
    for (int i = 0; i < 4; ++i) sums[i] = reduced[i];
    SumOverRanks(*group, gradients);
  }
  result.sentences = static_cast<int64_t>(counts[0]);
  result.pieces = static_cast<int64_t>(counts[1]);
  result.taggingLoss = sums[0] / taggingCount;
  result.posLoss = sums[1] / posCount;
  result.mlmLoss = sums[2] / mlmCount;
  result.mlmAccuracy = sums[3] / mlmCount;
  result.loss = result.taggingLoss + options_.posWeight * result.posLoss + result.mlmLoss;
  DivideGradients(gradients, scale);

  result.gradNorm = ClipGradNorm(parameters_, options_.clipNorm);
  // Every rank holds the same summed gradients, so every rank decides alike.
  result.skipped = !std::isfinite(result.gradNorm);
  scaler_.Update(!result.skipped);
  if (result.skipped) return result;

  SetLearningRate(*optimizer_, lr);
  optimizer_->step();
  return result;
}

StepResult Trainer::Evaluate(const std::vector<MicroBatch>& batches) {
  if (batches.empty()) throw std::invalid_argument("batches: empty");
  auto& m = *model_;
  torch::NoGradGuard noGrad;
  StepResult result;
  double sums[4] = {0, 0, 0, 0}, counts[4] = {0, 0, 0, 0};
  for (const auto& batch : batches) {
    auto losses = SumLosses(m, batch, options_.autocast);
    if (losses.tagging.defined()) sums[0] += losses.tagging.item<double>();
    if (losses.pos.defined()) sums[1] += losses.pos.item<double>();
    if (losses.mlm.defined()) {
      sums[2] += losses.mlm.item<double>();
      sums[3] += losses.mlmCorrect.item<double>();
    }
    counts[0] += static_cast<double>(batch.sentences);
    counts[1] += static_cast<double>(batch.pieces);
    counts[2] += static_cast<double>(batch.posPieces);
    counts[3] += static_cast<double>(batch.maskedPieces);
  }
  result.sentences = static_cast<int64_t>(counts[0]);
  result.pieces = static_cast<int64_t>(counts[1]);
  result.taggingLoss = sums[0] / CountOf(NormaliserOf(m.config().head), counts[0], counts[1]);
  result.posLoss = sums[1] / std::max(1.0, counts[2]);
  result.mlmLoss = sums[2] / std::max(1.0, counts[3]);
  result.mlmAccuracy = sums[3] / std::max(1.0, counts[3]);
  result.loss = result.taggingLoss + options_.posWeight * result.posLoss + result.mlmLoss;
  return result;
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
