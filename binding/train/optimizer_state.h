// AdamW's state as a safetensors file, named after the parameters so that it survives any change
// of parameter order and can be inspected with ordinary tools:
//   exp_avg.<name>, exp_avg_sq.<name>   the moments, the parameter's shape (and dtype)
//   step.<name>                         int64 scalar: updates this parameter has had
// Every parameter has all three (zeros and step 0 before its first update, which AdamW treats
// exactly as no state). The metadata holds format "koner-adamw", version "1", the parameter
// count, the loss scale of float16 training, and the hyper-parameters for the record.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "train/amp.h"
#include "train/options.h"

namespace koner::train {

struct ParameterMoments {
  torch::Tensor expAvg, expAvgSq;  // CPU
  int64_t step = 0;
};

// A validated state file, not yet applied: by parameter index.
struct OptimizerState {
  std::vector<ParameterMoments> moments;
  double lossScale = LossScaler::kInitialScale;
  int64_t lossScaleGrowth = 0;
};

// Writes atomically (a temporary file, then a rename).
void WriteOptimizerState(const std::string& path, torch::optim::AdamW& optimizer,
                         const std::vector<std::string>& names,
                         const std::vector<torch::Tensor>& parameters, const LossScaler& scaler,
                         const TrainerOptions& options);

// Reads and checks a state file against the parameters' names and shapes; throws
// std::runtime_error("<path>: …") listing every missing, unexpected or mis-shaped entry.
OptimizerState ReadOptimizerState(const std::string& path, const std::vector<std::string>& names,
                                  const std::vector<std::vector<int64_t>>& shapes);

// Installs a read state: moments on each parameter's device and in its dtype.
void ApplyOptimizerState(OptimizerState state, torch::optim::AdamW& optimizer,
                         const std::vector<torch::Tensor>& parameters, LossScaler& scaler);

}  // namespace koner::train
