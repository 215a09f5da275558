#include "train/amp.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "model/cpu_features.h"

// PyTorch 2.4 replaced the CUDA-only autocast calls with per-device ones (the old ones are
// deprecated there); Debian's LibTorch 1.13 has only the old ones.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define KONER_AUTOCAST_PER_DEVICE 1
#endif

namespace koner::train {
namespace {

std::string AutocastUnsupported(const torch::Device& device, torch::ScalarType dtype) {
  if (dtype == torch::kFloat32 || device.is_cuda()) return {};
  if (dtype == torch::kFloat16) {
    return "float16 autocast needs the model on CUDA (it is on " + device.str() +
           "); on the CPU use bfloat16 or float32";
  }
  if (!device.is_cpu())
    return "autocast needs a CPU or CUDA device (it is on " + device.str() + ")";
  // Emulated bfloat16 products are slower than float32 and less exact: refuse, saying why.
  const std::string missing = model::Bf16Unsupported();
  if (missing.empty()) return {};
  return "bfloat16 autocast on the CPU: " + missing + "; use float32";
}

}  // namespace

void CheckAutocast(const torch::Device& device, torch::ScalarType dtype) {
  const std::string why = AutocastUnsupported(device, dtype);
  if (!why.empty()) throw std::invalid_argument("options.autocast: " + why);
}

AutocastScope::AutocastScope(const torch::Device& device, torch::ScalarType dtype) {
  if (dtype == torch::kFloat32) return;
  CheckAutocast(device, dtype);
  device_ = device.is_cuda() ? at::kCUDA : at::kCPU;
#ifdef KONER_AUTOCAST_PER_DEVICE
  wasEnabled_ = at::autocast::is_autocast_enabled(device_);
  previousDtype_ = at::autocast::get_autocast_dtype(device_);
  at::autocast::set_autocast_enabled(device_, true);
  at::autocast::set_autocast_dtype(device_, dtype);
#else
  if (device_ == at::kCUDA) {
    wasEnabled_ = at::autocast::is_enabled();
    previousDtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    wasEnabled_ = at::autocast::is_cpu_enabled();
    previousDtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
  at::autocast::increment_nesting();
  active_ = true;
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // The cache holds low-precision copies of the weights: stale after the optimizer's update.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#ifdef KONER_AUTOCAST_PER_DEVICE
  at::autocast::set_autocast_enabled(device_, wasEnabled_);
  at::autocast::set_autocast_dtype(device_, previousDtype_);
#else
  if (device_ == at::kCUDA) {
    at::autocast::set_enabled(wasEnabled_);
    at::autocast::set_autocast_gpu_dtype(previousDtype_);
  } else {
    at::autocast::set_cpu_enabled(wasEnabled_);
    at::autocast::set_autocast_cpu_dtype(previousDtype_);
  }
#endif
}

void LossScaler::Update(bool finite) {
  if (!enabled_) return;
  if (!finite) {
    scale_ = std::max(scale_ * 0.5, 1.0 / 65536.0);
    growthTracker_ = 0;
  } else if (++growthTracker_ >= kGrowthInterval) {
    scale_ = std::min(scale_ * 2.0, 1.0e30);
    growthTracker_ = 0;
  }
}

void LossScaler::Restore(double scale, int64_t growthTracker) {
  if (!(std::isfinite(scale) && scale > 0) || growthTracker < 0) {
    throw std::invalid_argument("loss scale " + std::to_string(scale) + " / growth tracker " +
                                std::to_string(growthTracker) + " is not valid");
  }
  scale_ = scale;
  growthTracker_ = growthTracker;
}

}  // namespace koner::train
