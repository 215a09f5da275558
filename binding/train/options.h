// A Trainer's settings: AdamW's hyper-parameters, clipping and mixed precision. The learning rate
// is not here: it comes with every step, because the schedule lives in lib/train.
#pragma once
#include <torch/types.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace koner::train {

struct TrainerOptions {
  // Decoupled (AdamW) weight decay; biases and LayerNorm weights never decay.
  double weightDecay = 0.0;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  // Layer-wise learning-rate decay (train/optimizer.h): 1 gives every parameter the full rate.
  double layerDecay = 1.0;
  // Max global L2 norm of the gradients; 0 measures the norm without clipping.
  double clipNorm = 0.0;
  // Weight of the auxiliary POS loss beside the tagging loss (batches with posTags only).
  double posWeight = 1.0;
  // Weight and temperature of the distillation loss (batches with softTargets only).
  double distillWeight = 1.0;
  double distillTemperature = 1.0;
  // The encoder's autocast dtype (train/amp.h: bfloat16 or float16 on CUDA, bfloat16 on a CPU
  // that multiplies it natively); float32 turns autocast off.
  torch::ScalarType autocast = torch::kFloat32;
};

// Throws std::invalid_argument("options.<field>: …") for the first bad field.
inline void Validate(const TrainerOptions& o) {
  auto bad = [](const std::string& field, const std::string& problem, double value) {
    throw std::invalid_argument("options." + field + ": " + problem + ", got " +
                                std::to_string(value));
  };
  if (!std::isfinite(o.weightDecay) || o.weightDecay < 0) {
    bad("weightDecay", "must be a finite number >= 0", o.weightDecay);
  }
  if (!(o.beta1 >= 0 && o.beta1 < 1)) bad("betas[0]", "must be in [0, 1)", o.beta1);
  if (!(o.beta2 >= 0 && o.beta2 < 1)) bad("betas[1]", "must be in [0, 1)", o.beta2);
  if (!std::isfinite(o.eps) || o.eps <= 0) bad("eps", "must be a finite number > 0", o.eps);
  if (!(o.layerDecay > 0 && o.layerDecay <= 1)) {
    bad("layerDecay", "must be in (0, 1]", o.layerDecay);
  }
  if (!std::isfinite(o.posWeight) || o.posWeight < 0) {
    bad("posWeight", "must be a finite number >= 0", o.posWeight);
  }
  if (!std::isfinite(o.distillWeight) || o.distillWeight < 0) {
    bad("distillWeight", "must be a finite number >= 0", o.distillWeight);
  }
  if (!std::isfinite(o.distillTemperature) || o.distillTemperature <= 0) {
    bad("distillTemperature", "must be a finite number > 0", o.distillTemperature);
  }
  if (!std::isfinite(o.clipNorm) || o.clipNorm < 0) {
    bad("clipNorm", "must be a finite number >= 0 (0: no clipping)", o.clipNorm);
  }
  if (o.autocast != torch::kFloat32 && o.autocast != torch::kBFloat16 &&
      o.autocast != torch::kFloat16) {
    throw std::invalid_argument("options.autocast: must be float32, bfloat16 or float16");
  }
}

}  // namespace koner::train
