// The CRF's CUDA kernels behind a plain C++ interface: raw device pointers, sizes and a stream,
// so that crf_cuda.cu compiles with nvcc alone (no LibTorch headers) and crf_dispatch.cc, the
// only caller, owns every allocation (workspaces come from LibTorch's caching allocator).
// One block per sequence, tags across threads, the transition tables in shared memory when
// they fit. Every function returns nullptr on success or a static error message.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace koner::crf::cuda {

enum class Dtype { Float32, Float64, Float16, BFloat16 };

// One call's inputs. Float64 emissions accumulate in double, all others in float: the
// transitions [K, K], start [K] and end [K] (contiguous, -inf where forbidden) and every
// accumulation-typed output below use that type.
struct Problem {
  int64_t B;
  int T, K;
  Dtype emissionsType;
  const void* emissions;   // [B, T, K] contiguous
  const int64_t* lengths;  // [B], each within [0, T]
  const void* transitions;
  const void* start;
  const void* end;
};

// Bytes of device workspace each call needs (any alignment-respecting allocation).
size_t NllWorkspaceBytes(const Problem& p);
size_t MarginalsWorkspaceBytes(const Problem& p);
size_t ViterbiWorkspaceBytes(const Problem& p, int nBest);

// nll [B], logZ [B], alphas [B, T, K] (offset per position: crf_sequence.h, Forward), all
// accumulation-typed. Tags outside [0, K) within a sequence's length give that sequence a NaN
// loss (validating them would synchronise).
const char* NllForward(const Problem& p, const int64_t* tags, void* alphas, void* logZ, void* nll,
                       void* workspace, cudaStream_t stream);

// Gradients of sum_b weights[b] * nll[b]: gradEmissions [B, T, K] in the emissions' dtype and
// per-sequence gradTransitions [B, K, K], gradStart [B, K], gradEnd [B, K] accumulation-typed,
// all zero-filled by the caller (positions beyond a length are left untouched).
const char* NllBackward(const Problem& p, const int64_t* tags, const void* alphas, const void* logZ,
                        const void* weights, void* gradEmissions, void* gradTransitions,
                        void* gradStart, void* gradEnd, void* workspace, cudaStream_t stream);

// Posterior marginals into out [B, T, K] float32, zero-filled by the caller.
const char* Marginals(const Problem& p, float* out, void* workspace, cudaStream_t stream);

// The nBest best paths: tags [B, nBest, T] (-1 beyond length and for missing paths) and
// scores [B, nBest] (-inf for missing paths).
const char* Viterbi(const Problem& p, int nBest, int64_t* tags, float* scores, void* workspace,
                    cudaStream_t stream);

}  // namespace koner::crf::cuda
