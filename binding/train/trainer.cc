#include "train/trainer.h"

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

  StepResult result;
  torch::Tensor lossSum = torch::zeros({}, torch::TensorOptions().device(m.device()));
  for (const auto& batch : batches) {
    auto loss = SummedLoss(m, batch, options_.autocast);
    lossSum += loss.detach();
    (scale == 1.0 ? loss : loss * scale).backward();
    result.sentences += batch.sentences;
    result.pieces += batch.pieces;
  }

  double totalLoss = lossSum.item<double>();
  double sentences = static_cast<double>(result.sentences);
  double pieces = static_cast<double>(result.pieces);
  auto gradients = DenseGradients(parameters_);
  if (group) {
    auto sums = group->AllreduceScalars({totalLoss, sentences, pieces}, dist::ReduceOp::kSum);
    totalLoss = sums[0];
    sentences = sums[1];
    pieces = sums[2];
    SumOverRanks(*group, gradients);
  }
  result.sentences = static_cast<int64_t>(sentences);
  result.pieces = static_cast<int64_t>(pieces);
  const double count = CountOf(NormaliserOf(m.config().head), sentences, pieces);
  if (count <= 0) {
    throw std::invalid_argument("batches: no sentences in this step on any rank");
  }
  result.loss = totalLoss / count;
  DivideGradients(gradients, count * scale);

  result.gradNorm = ClipGradNorm(parameters_, options_.clipNorm);
  // Every rank holds the same summed gradients, so every rank decides alike.
  result.skipped = !std::isfinite(result.gradNorm);
  scaler_.Update(!result.skipped);
  if (result.skipped) return result;

  SetLearningRate(*optimizer_, lr);
  optimizer_->step();
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
