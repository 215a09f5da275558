// Mixed precision for training: an autocast scope for the encoder's forward pass, and a dynamic
// loss scale for float16, whose narrow exponent lets small gradients flush to zero (bfloat16 has
// float32's exponent and needs none). CUDA autocasts to bfloat16 or float16; the CPU to bfloat16,
// and only where it multiplies bfloat16 natively (AVX512_BF16 or AMX-BF16): emulated, it would be
// slower than float32. The heads and losses stay outside the scope, in float32.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>

namespace koner::train {

// Throws std::invalid_argument("options.autocast: <why>") when autocast to `dtype` cannot run on
// `device` here (never for float32).
void CheckAutocast(const torch::Device& device, torch::ScalarType dtype);

// While alive, the calling thread's ops on `device` run under autocast to `dtype` (nothing for
// float32), as `with torch.autocast(device, dtype)`: autocast state is thread-local, so the scope
// must open and close on the thread that runs the forward pass. Throws as CheckAutocast.
class AutocastScope {
 public:
  AutocastScope(const torch::Device& device, torch::ScalarType dtype);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType device_ = c10::DeviceType::CPU;
  bool wasEnabled_ = false;
  torch::ScalarType previousDtype_ = torch::kFloat16;
};

// torch.cuda.amp.GradScaler's policy: the loss is multiplied by scale() before backward and the
// gradients divided by it after; non-finite gradients skip the step and halve the scale, and
// every `growthInterval` finite steps in a row double it.
class LossScaler {
 public:
  static constexpr double kInitialScale = 65536.0;
  static constexpr int64_t kGrowthInterval = 2000;

  void Enable(bool enabled) { enabled_ = enabled; }
  bool enabled() const { return enabled_; }
  double scale() const { return enabled_ ? scale_ : 1.0; }
  // After each step's gradients are known, with whether they were all finite.
  void Update(bool finite);

  // Saved with the optimizer's state, so a resumed run continues with the same scale.
  double rawScale() const { return scale_; }
  int64_t growthTracker() const { return growthTracker_; }
  void Restore(double scale, int64_t growthTracker);

 private:
  bool enabled_ = false;
  double scale_ = kInitialScale;
  int64_t growthTracker_ = 0;
};

}  // namespace koner::train
