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
// The largest head size (hidden size / heads) the kernel takes.
constexpr int64_t kMaxHeadSize = 256;

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

// Keys are laid out transposed in blocks of this many (one vector of floats at AVX-512).
constexpr int64_t kKeyBlock = 16;
// Query rows computed together: each key and value read serves this many rows.
constexpr int kRows = 4;

// Floats of work space one (sentence, head) takes: keys transposed [d, Lp], values [L, d],
// scores [kRows, Lp], for Lp = L rounded up to kKeyBlock.
int64_t WorkFloats(int64_t keys, int64_t d) {
  const int64_t padded = (keys + kKeyBlock - 1) / kKeyBlock * kKeyBlock;
  return d * padded + keys * d + kRows * padded;
}

// One (sentence, head), kRows query rows at a time: their scores against a block of keys and
// their weighted sums of values accumulate in local arrays the compiler keeps in registers
// (fully when the head size D is known at compile time; D = 0 reads it from `h`).
template <int D, typename Scalar>
inline __attribute__((always_inline)) void AttendBody(const Head<Scalar>& h, float* work) {
  constexpr int64_t kMaxSize = D > 0 ? D : kMaxHeadSize;
  const int64_t d = D > 0 ? D : h.size, L = h.keys;
  const int64_t padded = (L + kKeyBlock - 1) / kKeyBlock * kKeyBlock;
  float* keysT = work;                 // [d, padded], zero past L
  float* values = keysT + d * padded;  // [L, d]
  float* scores = values + L * d;      // [kRows, padded]
  for (int64_t j = 0; j < padded; ++j) {
    if (j < L) {
      const Scalar* key = h.qkv + j * h.rowStride + h.hidden + h.offset;
      const Scalar* value = key + h.hidden;
      for (int64_t c = 0; c < d; ++c) {
        keysT[c * padded + j] = static_cast<float>(key[c]);
        values[j * d + c] = static_cast<float>(value[c]);
      }
    } else {
      for (int64_t c = 0; c < d; ++c) keysT[c * padded + j] = 0.f;
    }
  }
  for (int64_t i0 = 0; i0 < h.rows; i0 += kRows) {
    const int n = static_cast<int>(std::min<int64_t>(kRows, h.rows - i0));
    const Scalar* query[kRows];  // past the last row: the last row again, its result unused
    for (int r = 0; r < kRows; ++r) {
      query[r] = h.qkv + (i0 + std::min(r, n - 1)) * h.rowStride + h.offset;
    }
    for (int64_t j0 = 0; j0 < padded; j0 += kKeyBlock) {
      float acc[kRows][kKeyBlock] = {};
      for (int64_t c = 0; c < d; ++c) {
        const float* k = keysT + c * padded + j0;
        for (int r = 0; r < kRows; ++r) {
          const float q = static_cast<float>(query[r][c]);
#pragma omp simd
          for (int64_t jj = 0; jj < kKeyBlock; ++jj) acc[r][jj] += q * k[jj];
        }
      }
      for (int r = 0; r < kRows; ++r) {
        for (int64_t jj = 0; jj < kKeyBlock; ++jj) scores[r * padded + j0 + jj] = acc[r][jj];
      }
    }
    // HF's order: scale, add the mask, softmax.
    for (int r = 0; r < n; ++r) {
      float* s = scores + r * padded;
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < L; ++j) {
        s[j] = s[j] * h.scale + h.mask[j];
        max = std::max(max, s[j]);
      }
      float sum = 0.f;
      for (int64_t j = 0; j < L; ++j) {
        s[j] = std::exp(s[j] - max);
        sum += s[j];
      }
      for (int64_t j = 0; j < L; ++j) s[j] /= sum;
    }
    float context[kRows][kMaxSize] = {};
    for (int64_t j = 0; j < L; ++j) {
      const float* v = values + j * d;
      for (int r = 0; r < kRows; ++r) {
        const float p = scores[r * padded + j];
#pragma omp simd
        for (int64_t c = 0; c < d; ++c) context[r][c] += p * v[c];
      }
    }
    for (int r = 0; r < n; ++r) {
      Scalar* out = h.out + (i0 + r) * h.outStride;
      for (int64_t c = 0; c < d; ++c) out[c] = static_cast<Scalar>(context[r][c]);
    }
  }
}

// One compiled copy per vector width, chosen at load time by the CPU (GCC's function
// multi-versioning): the addon is built for baseline x86-64, this loop is where width pays.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KONER_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KONER_VECTOR_CLONES
#endif

// Head size 64 (BERT-base's and the bundled model's) compiled for its size, any other read at
// run time.
template <typename Scalar>
inline __attribute__((always_inline)) void AttendAnySize(const Head<Scalar>& h, float* work) {
  if (h.size == 64) {
    AttendBody<64>(h, work);
  } else {
    AttendBody<0>(h, work);
  }
}

KONER_VECTOR_CLONES void Attend(const Head<float>& h, float* work) { AttendAnySize(h, work); }

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
    std::vector<float> work(WorkFloats(T, d));
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
                  qkv.device().is_cpu() && qkv.scalar_type() == torch::kFloat32,
              "FusedSelfAttention: qkv must be a contiguous float32 CPU [B, T, 3H], got ",
              qkv.scalar_type(), " ", qkv.sizes());
  TORCH_CHECK(qkv.size(2) / 3 / heads <= kMaxHeadSize, "FusedSelfAttention: head size ",
              qkv.size(2) / 3 / heads, " is over ", kMaxHeadSize);
  TORCH_CHECK(additiveMask.dim() == 2 && additiveMask.size(0) == qkv.size(0) &&
                  additiveMask.size(1) == qkv.size(1),
              "FusedSelfAttention: mask must be [B, T], got ", additiveMask.sizes());
  const auto mask = additiveMask.to(torch::kFloat32).contiguous();
  auto out = torch::empty({qkv.size(0), qkv.size(1), qkv.size(2) / 3}, qkv.options());
  Run<float>(qkv, mask, heads, out);
  return out;
}

}  // namespace koner::model
