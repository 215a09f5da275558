// The encoder's inference on the CPU through oneDNN's primitives (the oneDNN LibTorch itself
// links, called directly). Linear layers on the matmul primitive: the weight laid out once in the
// primitive's blocked format instead of on every call, several projections of one input in one
// product (the fused Q|K|V), and what follows the product fused into it (GELU, the residual sum),
// so that a layer costs one pass over memory and one parallel region instead of several.
// LayerNorm on oneDNN's (LibTorch's bfloat16 LayerNorm took 12% of a bf16 forward). Built only
// where oneDNN's headers are (Debian: libdnnl-dev; KONER_WITH_DNNL); elsewhere DnnlInference is
// false and the model runs LibTorch's own ops.
#pragma once
#include <torch/torch.h>

#include <initializer_list>
#include <memory>
#include <mutex>

namespace koner::model {

// False when KONER_ONEDNN=0 was in the environment at the first forward: every oneDNN path of the
// encoder (this one and LibTorch's mkldnn ops) off, for comparisons.
bool OneDnnAllowed();

// Whether DnnlLinear runs `x` through `weight`: built with oneDNN, not turned off (KONER_ONEDNN=0
// in the environment at the first forward), no autograd, CPU tensors, x float32 or bfloat16 of
// the weight's dtype.
bool DnnlInference(const torch::Tensor& x, const torch::Tensor& weight);

// What the product is followed by, inside the primitive.
enum class Epilogue { None, Gelu /* erf form, HF's "gelu" */ };

// norm(x) over the last dimension, written into x (which must be contiguous and not needed
// after), for x as DnnlInference takes it; statistics in float32.
torch::Tensor DnnlLayerNorm(torch::Tensor x, torch::nn::LayerNormImpl& norm);

class DnnlLinear {
 public:
  DnnlLinear();
  ~DnnlLinear();

  // x Wᵀ + b for W, b the layers' weights and biases stacked along their outputs (one product
  // for several projections of the same input: [q | k | v]), then the epilogue, then
  // + residual. x [..., in]; residual [..., out] or undefined. Returns [..., out] in x's dtype
  // (bfloat16 products accumulate in float32). The weights are packed at first use and again
  // whenever one of them changes (other storage or shape, an in-place update moving its version
  // counter, a dtype change). Safe to call from concurrent inferences.
  torch::Tensor Forward(std::initializer_list<torch::nn::LinearImpl*> layers,
                        const torch::Tensor& x, Epilogue epilogue = Epilogue::None,
                        const torch::Tensor& residual = {});

 private:
  struct Packed;
  std::mutex mutex_;
  std::shared_ptr<const Packed> packed_;
};

}  // namespace koner::model
