#include "model/attention_cpu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace koner::model {
namespace {

// An additive mask value at or below this drops its key: HF's is the dtype's lowest (about
// -3.4e38), whose exp underflows to exactly 0 next to any real score.
constexpr float kDropped = -1e30f;

template <typename Scalar>
struct Head {
  const Scalar* qkv;  // row 0 of this sentence
  int64_t rowStride;  // 3H
  int64_t offset;     // this head's column within the query part (h * d)
  int64_t hidden;     // H: the key part starts at column H, the value part at 2H
  int64_t rows;       // query rows to compute: up to the last attended key
  int64_t keys;       // L: keys up to the last attended one
  int64_t size;       // d
  const float* mask;  // [keys] additive
  float scale;        // 1 / sqrt(d)
  Scalar* out;        // row 0 of this sentence's context, column h * d
  int64_t outStride;  // H
};

// One (sentence, head). `work` holds d*L + L*d + L + d floats: keys transposed, values, one row
// of scores, one context row. Written so that every inner loop runs over contiguous floats
// without a reduction across lanes (axpy form), which the compiler vectorises as it is.
template <typename Scalar>
inline __attribute__((always_inline)) void AttendBody(const Head<Scalar>& h, float* work) {
  const int64_t L = h.keys, d = h.size;
  float* keysT = work;             // [d, L]
  float* values = keysT + d * L;   // [L, d]
  float* scores = values + L * d;  // [L]
  float* context = scores + L;     // [d]
  for (int64_t j = 0; j < L; ++j) {
    const Scalar* key = h.qkv + j * h.rowStride + h.hidden + h.offset;
    const Scalar* value = key + h.hidden;
    for (int64_t c = 0; c < d; ++c) {
      keysT[c * L + j] = static_cast<float>(key[c]);
      values[j * d + c] = static_cast<float>(value[c]);
    }
  }
  for (int64_t i = 0; i < h.rows; ++i) {
    const Scalar* query = h.qkv + i * h.rowStride + h.offset;
    std::fill(scores, scores + L, 0.f);
    for (int64_t c = 0; c < d; ++c) {
      const float q = static_cast<float>(query[c]);
      const float* k = keysT + c * L;
#pragma omp simd
      for (int64_t j = 0; j < L; ++j) scores[j] += q * k[j];
    }
    float max = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < L; ++j) {
      scores[j] = scores[j] * h.scale + h.mask[j];
      max = std::max(max, scores[j]);
    }
    float sum = 0.f;
    for (int64_t j = 0; j < L; ++j) {
      scores[j] = std::exp(scores[j] - max);
      sum += scores[j];
    }
    std::fill(context, context + d, 0.f);
    for (int64_t j = 0; j < L; ++j) {
      const float p = scores[j] / sum;
      const float* v = values + j * d;
#pragma omp simd
      for (int64_t c = 0; c < d; ++c) context[c] += p * v[c];
    }
    Scalar* out = h.out + i * h.outStride;
    for (int64_t c = 0; c < d; ++c) out[c] = static_cast<Scalar>(context[c]);
  }
}

// One compiled copy per vector width, chosen at load time by the CPU (GCC's function
// multi-versioning): the addon is built for baseline x86-64, this loop is where width pays.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KONER_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KONER_VECTOR_CLONES
#endif

KONER_VECTOR_CLONES void Attend(const Head<float>& h, float* work) { AttendBody(h, work); }
KONER_VECTOR_CLONES void Attend(const Head<c10::BFloat16>& h, float* work) { AttendBody(h, work); }

template <typename Scalar>
void Run(const torch::Tensor& qkv, const torch::Tensor& mask, int64_t heads, torch::Tensor& out) {
  const int64_t B = qkv.size(0), T = qkv.size(1), H = qkv.size(2) / 3, d = H / heads;
  const Scalar* in = qkv.data_ptr<Scalar>();
  const float* masks = mask.data_ptr<float>();
  Scalar* context = out.data_ptr<Scalar>();
  // Keys (and query rows) up to each sentence's last attended key; all T when none is.
  std::vector<int64_t> keys(B, T);
  for (int64_t b = 0; b < B; ++b) {
    int64_t last = T;
    while (last > 0 && masks[b * T + last - 1] <= kDropped) --last;
    if (last > 0) keys[b] = last;
  }
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  at::parallel_for(0, B * heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> work(2 * d * T + T + d);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / heads, h = task % heads;
      const Head<Scalar> head{
          in + b * T * 3 * H,          3 * H, h * d, H, keys[b], keys[b], d, masks + b * T, scale,
          context + b * T * H + h * d, H};
      Attend(head, work.data());
      // Rows past the last attended key are padding: zeros, never read as keys.
      for (int64_t i = keys[b]; i < T; ++i) {
        std::fill(context + (b * T + i) * H + h * d, context + (b * T + i) * H + (h + 1) * d,
                  Scalar(0));
      }
    }
  });
}

}  // namespace

torch::Tensor FusedSelfAttention(const torch::Tensor& qkv, const torch::Tensor& additiveMask,
                                 int64_t heads) {
  TORCH_CHECK(qkv.dim() == 3 && qkv.size(2) % (3 * heads) == 0 && qkv.is_contiguous() &&
                  qkv.device().is_cpu(),
              "FusedSelfAttention: qkv must be a contiguous CPU [B, T, 3H], got ", qkv.sizes());
  TORCH_CHECK(additiveMask.dim() == 2 && additiveMask.size(0) == qkv.size(0) &&
                  additiveMask.size(1) == qkv.size(1),
              "FusedSelfAttention: mask must be [B, T], got ", additiveMask.sizes());
  const auto mask = additiveMask.to(torch::kFloat32).contiguous();
  auto out = torch::empty({qkv.size(0), qkv.size(1), qkv.size(2) / 3}, qkv.options());
  if (qkv.scalar_type() == torch::kFloat32) {
    Run<float>(qkv, mask, heads, out);
  } else if (qkv.scalar_type() == torch::kBFloat16) {
    Run<c10::BFloat16>(qkv, mask, heads, out);
  } else {
    TORCH_CHECK(false, "FusedSelfAttention: float32 or bfloat16, got ", qkv.scalar_type());
  }
  return out;
}

}  // namespace koner::model
