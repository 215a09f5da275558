// The encoder's inference on the CPU through oneDNN's primitives (the oneDNN LibTorch itself
// links, called directly). Linear layers on the matmul primitive: the weight laid out once in the
// primitive's blocked format instead of on every call, several projections of one input in one
// product (the fused Q|K|V), and what follows the product fused into it (GELU, the residual sum),
// so that a layer costs one pass over memory and one parallel region instead of several; the
// products in float32, bfloat16 or int8 (Products). LayerNorm on oneDNN's too. Built only where
// oneDNN's headers are (Debian: libdnnl-dev; KONER_WITH_DNNL); elsewhere DnnlInference is false
// and the model runs LibTorch's own ops.
#pragma once
#include <torch/torch.h>

#include <atomic>
#include <initializer_list>
#include <memory>
#include <mutex>

namespace koner::model {

// Whether this addon was built with oneDNN's headers (the paths below exist).
bool DnnlBuilt();

// False when KONER_ONEDNN=0 was in the environment at the first forward: every oneDNN path of the
// encoder (these and LibTorch's mkldnn ops) off, for comparisons.
bool OneDnnAllowed();

// Whether DnnlLinear runs `x` through `weight`: built with oneDNN, not turned off, no autograd,
// CPU tensors, a float32 weight, x float32 (or bfloat16: an earlier product's result).
bool DnnlInference(const torch::Tensor& x, const torch::Tensor& weight);

// The precision of the encoder's matrix products; the parameters, LayerNorm, the softmax and the
// residual stream stay float32 (as under PyTorch's CPU autocast).
enum class Products {
  Float32,
  // Weights and inputs rounded to bfloat16, sums in float32 (AVX512_BF16 or AMX-BF16).
  BFloat16,
  // Dynamic quantization: weights int8 with a scale per output, each input int8 with a scale of
  // its own (its largest magnitude / 127), sums in int32 (AVX512_VNNI or AMX-INT8).
  Int8,
};

// What the product is followed by, inside the primitive.
enum class Epilogue { None, Gelu /* erf form, HF's "gelu" */ };

// norm(x) over the last dimension, written into x (float32, contiguous, not needed after);
// statistics in float32.
torch::Tensor DnnlLayerNorm(torch::Tensor x, torch::nn::LayerNormImpl& norm);

class DnnlLinear {
 public:
  DnnlLinear();
  ~DnnlLinear();

  void SetProducts(Products products) { products_.store(products); }

  // x Wᵀ + b for W, b the layers' weights and biases stacked along their outputs (one product
  // for several projections of the same input: [q | k | v]), then the epilogue, then
  // + residual (float32). x [..., in]; returns [..., out] in float32, or in bfloat16 when
  // `feedsProduct` (the result is only the input of another product) and the products are
  // bfloat16. The weights are packed at first use and again whenever one of them changes (other
  // storage or shape, an in-place update moving its version counter) or the products' precision
  // does. Safe to call from concurrent inferences.
  torch::Tensor Forward(std::initializer_list<torch::nn::LinearImpl*> layers,
                        const torch::Tensor& x, Epilogue epilogue = Epilogue::None,
                        const torch::Tensor& residual = {}, bool feedsProduct = false);

 private:
  struct Packed;
  std::atomic<Products> products_{Products::Float32};
  std::mutex mutex_;
  std::shared_ptr<const Packed> packed_;
};

}  // namespace koner::model
