// The linear-chain CRF as the model code uses it: negative log-likelihood (differentiable),
// Viterbi / n-best decoding and posterior marginals over torch tensors on CPU or CUDA.
//
// Conventions (as kmkurn/pytorch-crf): emissions [B, T, K] batch-first; tags [B, T] int64;
// mask [B, T] bool/uint8, a prefix mask per sequence (length 0 allowed; see Nll on CUDA);
// transitions [K, K] with transitions[i][j] the score of tag i followed by tag j; start [K] and
// end [K] the scores of beginning and ending with a tag (parameter names crf.transitions,
// crf.start_transitions, crf.end_transitions). Emissions may be fp32, fp64, fp16 or bf16: the
// CRF computes in fp32 (fp64 stays fp64 so that gradcheck is exact) and returns gradients in the
// inputs' dtypes.
#pragma once
#include <torch/types.h>

#include <cstdint>

namespace koner::crf {

// How Nll reduces the per-sequence losses [B]: Sum; Mean over the batch (pytorch-crf's 'mean');
// None keeps [B]; TokenMean divides the sum by the number of unmasked tokens.
enum class Reduction { Sum, Mean, None, TokenMean };

// Allowed transitions (bool, or uint8 0/1): allowed[i][j] permits tag i followed by tag j,
// allowedStart[j] permits starting with j, allowedEnd[i] permits ending with i. An undefined
// tensor leaves that part unconstrained. Callers build BIO rules here (no O -> I-X, no
// B-X -> I-Y, no start with I-). A sequence with no allowed path decodes as missing.
struct Constraints {
  torch::Tensor allowed, allowedStart, allowedEnd;
};

// Negative log-likelihood of `tags` under the CRF: log Z - score(tags), reduced. Differentiable
// w.r.t. emissions, transitions, start and end; the backward pass is fused (forward-backward
// marginals), so it costs one more pass, not autograd over T steps. The loss is float32 (float64
// for float64 emissions); a length-0 sequence contributes 0. Tags beyond a sequence's length are
// ignored. On CPU tensors the mask must be a prefix mask and tags must lie in [0, K) (both
// checked); on CUDA neither is checked, since that would synchronise the device: a sequence's
// length is its mask's count, and a sequence with a tag outside [0, K) gets a NaN loss.
torch::Tensor Nll(const torch::Tensor& emissions, const torch::Tensor& tags,
                  const torch::Tensor& mask, const torch::Tensor& transitions,
                  const torch::Tensor& start, const torch::Tensor& end,
                  Reduction reduction = Reduction::Mean);

// The nBest highest-scoring distinct paths of each sequence, best first.
struct Paths {
  torch::Tensor tags;    // [B, N, T] int64; -1 beyond the sequence's length and for missing paths
  torch::Tensor scores;  // [B, N] float32; -inf for missing paths
};
// A path is missing when fewer than N distinct (allowed) paths exist: K^length of them, or
// fewer under constraints. A length-0 sequence has exactly one path, the empty one, scored 0.
// Equal scores are ordered deterministically, the same way on CPU and CUDA.
Paths Decode(const torch::Tensor& emissions, const torch::Tensor& mask,
             const torch::Tensor& transitions, const torch::Tensor& start, const torch::Tensor& end,
             int64_t nBest = 1, const Constraints& constraints = {});

// Posterior marginals P(y_t = k | x) [B, T, K] float32: rows sum to 1 within a sequence's length
// and are 0 beyond it (and for a sequence with no allowed path). Not differentiable.
torch::Tensor Marginals(const torch::Tensor& emissions, const torch::Tensor& mask,
                        const torch::Tensor& transitions, const torch::Tensor& start,
                        const torch::Tensor& end, const Constraints& constraints = {});

}  // namespace koner::crf
