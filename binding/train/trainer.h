// The training step over a NerModel: forward and summed loss per micro-batch, backward
// (gradients accumulate), the sum over a data-parallel group's ranks, one division by the global
// count (train/loss.h), clipping, one AdamW update. Micro-batches and ranks therefore change
// nothing but rounding: a step is the step over all of its sentences at once.
//
// Not thread-safe by itself: the caller holds the model exclusively for Step and ApplyState
// (shared for WriteState), and, with a group, runs inside the group's turn.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "dist/group.h"
#include "model/ner_model.h"
#include "train/amp.h"
#include "train/loss.h"
#include "train/optimizer.h"
#include "train/optimizer_state.h"
#include "train/options.h"

namespace koner::train {

struct StepResult {
  // The objective: the sum over objectives of weight × loss, each loss its summed value over
  // every micro-batch and rank divided by its own count of targets (0 for an objective the step
  // did not train). Weights: 1 for tagging, masked LM and replaced-token detection, posWeight,
  // distillWeight.
  double loss = 0;
  PerObjective losses{};
  double mlmAccuracy = 0;  // masked pieces predicted exactly, over masked pieces
  double rtdAccuracy = 0;  // judged pieces whose replaced/original call is right, over them
  // The masked LM's draws of the batches that asked (sampleMasked), this rank's only: each
  // batch's masked positions in row-major order, batch after batch.
  std::vector<int64_t> mlmSamples;
  double gradNorm = 0;  // global L2 norm before clipping
  int64_t sentences = 0, pieces = 0;
  bool skipped = false;  // non-finite gradients: no update (and, in float16, a smaller scale)
};

class Trainer {
 public:
  Trainer(model::NerModel model, const TrainerOptions& options);

  const TrainerOptions& options() const { return options_; }
  const std::vector<std::string>& names() const { return names_; }
  const std::vector<std::vector<int64_t>>& shapes() const { return shapes_; }

  // `batches` may be empty only with a group (a rank whose data ran out still joins the sums).
  StepResult Step(const std::vector<MicroBatch>& batches, double lr, dist::Group* group);

  // The step's losses without a step: eval mode (no dropout), no gradients, no update, this rank's
  // batches only. For held-out losses (the masked-LM loss of pretraining).
  StepResult Evaluate(const std::vector<MicroBatch>& batches);

  // Every rank ends with `root`'s parameters.
  void BroadcastParameters(dist::Group& group, int root);

  void WriteState(const std::string& path);
  OptimizerState ReadState(const std::string& path) const {
    return ReadOptimizerState(path, names_, shapes_);
  }
  void ApplyState(OptimizerState state);

 private:
  PerObjective Weights() const;
  static void Summarise(StepResult& result, const std::vector<double>& totals,
                        const PerObjective& counts, const PerObjective& weights);
  static void KeepSamples(StepResult& result, const SummedLosses& losses);

  model::NerModel model_;
  TrainerOptions options_;
  // Fixed at construction: Model.to and loadWeights change parameters in place, never the set.
  std::vector<std::string> names_;
  std::vector<std::vector<int64_t>> shapes_;
  std::vector<torch::Tensor> parameters_;
  std::vector<ParamGroup> groups_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  LossScaler scaler_;
};

}  // namespace koner::train
