// The CRF's CUDA kernels: one block per sequence running the shared per-sequence routines
// (crf_sequence.h) with tags across the block's threads. No LibTorch here (see crf_cuda.h).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "crf/crf_cuda.h"
#include "crf/crf_sequence.h"

namespace koner::crf::cuda {
namespace {

// The device's lanes: a block's threads, synchronised by __syncthreads().
struct BlockLanes {
  __device__ int Lane() const { return static_cast<int>(threadIdx.x); }
  __device__ int Width() const { return static_cast<int>(blockDim.x); }
  __device__ void Sync() const { __syncthreads(); }
};

__device__ inline float ToAcc(float x) { return x; }
__device__ inline double ToAcc(double x) { return x; }
__device__ inline float ToAcc(__half x) { return __half2float(x); }
__device__ inline float ToAcc(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename Out>
__device__ inline Out FromAcc(float x);
template <>
__device__ inline float FromAcc<float>(float x) {
  return x;
}
template <>
__device__ inline __half FromAcc<__half>(float x) {
  return __float2half(x);
}
template <>
__device__ inline __nv_bfloat16 FromAcc<__nv_bfloat16>(float x) {
  return __float2bfloat16(x);
}
template <typename Out>
__device__ inline Out FromAcc(double x) {
  return x;
}

template <typename In, typename Acc>
struct Emissions {
  const In* data;
  int K;
  __device__ Acc operator()(int t, int k) const {
    return static_cast<Acc>(ToAcc(data[static_cast<int64_t>(t) * K + k]));
  }
};

// Gradients of g * nll for one sequence; gradTrans row-major so that the threads owning
// consecutive columns write consecutive addresses.
template <typename Acc, typename Out>
struct GradSink {
  static constexpr bool kPairs = true;
  Acc g;
  const int64_t* tags;
  int K, length;
  Out* gradEmissions;  // [T, K]
  Acc* gradTrans;      // [K, K]
  Acc* gradStart;      // [K]
  Acc* gradEnd;        // [K]

  __device__ void Marginal(int t, int k, Acc p) {
    const int64_t y = tags[t];
    const Acc d = g * (p - (y == k ? Acc(1) : Acc(0)));
    gradEmissions[static_cast<int64_t>(t) * K + k] = FromAcc<Out>(d);
    if (t == 0) gradStart[k] = d;
    if (t == length - 1) gradEnd[k] = d;
    if (t > 0 && y == k) {
      const int64_t from = tags[t - 1];
      if (from >= 0 && from < K) gradTrans[from * K + k] -= g;
    }
  }
  __device__ void Pair(int i, int j, Acc p) { gradTrans[static_cast<int64_t>(i) * K + j] += g * p; }
};

template <typename Acc>
struct MarginalSink {
  static constexpr bool kPairs = false;
  float* out;  // [T, K]
  int K;
  __device__ void Marginal(int t, int k, Acc p) {
    out[static_cast<int64_t>(t) * K + k] = static_cast<float>(p);
  }
  __device__ void Pair(int, int, Acc) {}
};

// An odd row stride keeps a warp's strided reads of the tables on distinct shared-memory banks.
int Stride(int K) { return K | 1; }

int Threads(int K) {
  const int warps = (K + 31) / 32;
  return warps > 8 ? 256 : warps * 32;
}

size_t Align(size_t bytes) { return (bytes + 255) & ~static_cast<size_t>(255); }

size_t AccBytes(const Problem& p) { return p.emissionsType == Dtype::Float64 ? 8 : 4; }

size_t TableBytes(const Problem& p) {
  return static_cast<size_t>(seq::TableWords(p.K, Stride(p.K))) * AccBytes(p);
}

__device__ inline int Clamp(int64_t length, int T) {
  return length < 0 ? 0 : (length > T ? T : static_cast<int>(length));
}

// The tables in shared memory when `shared` (copied from the global block built once per call
// by BuildTablesKernel), otherwise read in place. Advances `smem` past what it used.
template <typename Acc>
__device__ seq::Tables<Acc> LoadTables(const Acc* global, int K, bool shared, Acc*& smem) {
  const int ld = K | 1;
  if (!shared) return seq::CarveTables(global, K, ld);
  const int64_t words = seq::TableWords(K, ld);
  for (int64_t i = threadIdx.x; i < words; i += blockDim.x) smem[i] = global[i];
  __syncthreads();
  const auto tables = seq::CarveTables<Acc>(smem, K, ld);
  smem += words;
  return tables;
}

template <typename Acc>
__global__ void BuildTablesKernel(int K, const Acc* trans, const Acc* start, const Acc* end,
                                  Acc* out) {
  seq::BuildTables(BlockLanes{}, K, K | 1, trans, start, end, out);
}

// Dynamic shared memory, aligned for double.
extern __shared__ double2 sharedWords[];

template <typename In, typename Acc>
__global__ void NllForwardKernel(int T, int K, const In* emissions, const int64_t* tags,
                                 const int64_t* lengths, const Acc* tablesGlobal, bool shared,
                                 Acc* alphas, Acc* logZ, Acc* nll) {
  const int64_t b = blockIdx.x;
  Acc* smem = reinterpret_cast<Acc*>(sharedWords);
  const auto tables = LoadTables(tablesGlobal, K, shared, smem);
  const int L = Clamp(lengths[b], T);
  if (L == 0) {
    if (threadIdx.x == 0) logZ[b] = nll[b] = Acc(0);
    return;
  }
  const int64_t offset = b * T * K;
  const Emissions<In, Acc> e{emissions + offset, K};
  const double z = seq::Forward(BlockLanes{}, tables, e, L, alphas + offset, smem);
  if (threadIdx.x == 0) {  // both terms in double: they grow with the length, nll need not
    logZ[b] = static_cast<Acc>(z);
    nll[b] = static_cast<Acc>(z - seq::PathScore(tables, e, L, tags + b * T));
  }
}

template <typename In, typename Acc>
__global__ void NllBackwardKernel(int T, int K, const In* emissions, const int64_t* tags,
                                  const int64_t* lengths, const Acc* tablesGlobal, bool shared,
                                  const Acc* alphas, const Acc* logZ, const Acc* weights,
                                  In* gradEmissions, Acc* gradTrans, Acc* gradStart, Acc* gradEnd) {
  const int64_t b = blockIdx.x;
  Acc* smem = reinterpret_cast<Acc*>(sharedWords);
  const auto tables = LoadTables(tablesGlobal, K, shared, smem);
  const int L = Clamp(lengths[b], T);
  if (L == 0) return;
  const int64_t offset = b * T * K;
  const Emissions<In, Acc> e{emissions + offset, K};
  GradSink<Acc, In> sink{
      weights[b],        tags + b * T,   K, L, gradEmissions + offset, gradTrans + b * K * K,
      gradStart + b * K, gradEnd + b * K};
  seq::Backward(BlockLanes{}, tables, e, L, alphas + offset, logZ[b] > seq::Num<Acc>::NegInf(),
                smem, sink);
}

template <typename In, typename Acc>
__global__ void MarginalsKernel(int T, int K, const In* emissions, const int64_t* lengths,
                                const Acc* tablesGlobal, bool shared, Acc* alphas, float* out) {
  const int64_t b = blockIdx.x;
  Acc* smem = reinterpret_cast<Acc*>(sharedWords);
  const auto tables = LoadTables(tablesGlobal, K, shared, smem);
  const int L = Clamp(lengths[b], T);
  if (L == 0) return;
  const int64_t offset = b * T * K;
  const Emissions<In, Acc> e{emissions + offset, K};
  const double z = seq::Forward(BlockLanes{}, tables, e, L, alphas + offset, smem);
  MarginalSink<Acc> sink{out + offset, K};
  seq::Backward(BlockLanes{}, tables, e, L, alphas + offset, z > seq::Num<double>::NegInf(), smem,
                sink);
}

template <typename In, typename Acc>
__global__ void ViterbiKernel(int T, int K, int N, const In* emissions, const int64_t* lengths,
                              const Acc* tablesGlobal, bool shared, int32_t* back, int64_t* outTags,
                              float* outScores) {
  const int64_t b = blockIdx.x;
  Acc* smem = reinterpret_cast<Acc*>(sharedWords);
  const auto tables = LoadTables(tablesGlobal, K, shared, smem);
  Acc* listA = smem;
  Acc* listB = listA + K * N;
  Acc* bestScore = listB + K * N;
  int32_t* bestIndex = reinterpret_cast<int32_t*>(bestScore + N);
  const Emissions<In, Acc> e{emissions + b * T * K, K};
  seq::Viterbi(BlockLanes{}, tables, e, Clamp(lengths[b], T), T, N, listA, listB,
               back + b * T * K * N, bestScore, bestIndex, outTags + b * N * T, outScores + b * N);
}

// Launch geometry and the shared-memory decision for one call.
struct Launch {
  int threads = 0;
  size_t sharedBytes = 0;
  bool tablesShared = false;
  const char* error = nullptr;
};

// `scratchBytes` must fit in shared memory; the tables join it when they fit too.
template <typename Kernel>
Launch Plan(const Problem& p, Kernel kernel, size_t scratchBytes) {
  Launch l;
  l.threads = Threads(p.K);
  int device = 0, optin = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess) {
    err = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  }
  if (err != cudaSuccess) {
    l.error = cudaGetErrorString(err);
    return l;
  }
  const size_t limit = static_cast<size_t>(optin);
  if (scratchBytes > limit) {
    l.error = "crf: too many tags (or nBest too large) for the CUDA kernels' shared memory";
    return l;
  }
  const size_t table = TableBytes(p);
  l.tablesShared = scratchBytes + table <= limit;
  l.sharedBytes = scratchBytes + (l.tablesShared ? table : 0);
  if (l.sharedBytes > 48 * 1024) {
    err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(l.sharedBytes));
    if (err != cudaSuccess) l.error = cudaGetErrorString(err);
  }
  return l;
}

template <typename Acc>
const char* BuildTables(const Problem& p, Acc* tables, cudaStream_t stream) {
  BuildTablesKernel<Acc><<<1, Threads(p.K), 0, stream>>>(
      p.K, static_cast<const Acc*>(p.transitions), static_cast<const Acc*>(p.start),
      static_cast<const Acc*>(p.end), tables);
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

const char* LastError() {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

// Calls f.template operator()<In, Acc>() for the problem's emissions dtype.
template <typename F>
const char* WithTypes(const Problem& p, F&& f) {
  switch (p.emissionsType) {
    case Dtype::Float32:
      return f.template operator()<float, float>();
    case Dtype::Float64:
      return f.template operator()<double, double>();
    case Dtype::Float16:
      return f.template operator()<__half, float>();
    case Dtype::BFloat16:
      return f.template operator()<__nv_bfloat16, float>();
  }
  return "crf: unsupported emissions dtype";
}

struct NllForwardOp {
  const Problem& p;
  const int64_t* tags;
  void *alphas, *logZ, *nll, *workspace;
  cudaStream_t stream;

  template <typename In, typename Acc>
  const char* operator()() const {
    auto* tables = static_cast<Acc*>(workspace);
    if (const char* e = BuildTables(p, tables, stream)) return e;
    const auto kernel = NllForwardKernel<In, Acc>;
    const Launch l = Plan(p, kernel, p.K * sizeof(Acc));
    if (l.error) return l.error;
    kernel<<<static_cast<unsigned>(p.B), l.threads, l.sharedBytes, stream>>>(
        p.T, p.K, static_cast<const In*>(p.emissions), tags, p.lengths, tables, l.tablesShared,
        static_cast<Acc*>(alphas), static_cast<Acc*>(logZ), static_cast<Acc*>(nll));
    return LastError();
  }
};

struct NllBackwardOp {
  const Problem& p;
  const int64_t* tags;
  const void *alphas, *logZ, *weights;
  void *gradEmissions, *gradTrans, *gradStart, *gradEnd, *workspace;
  cudaStream_t stream;

  template <typename In, typename Acc>
  const char* operator()() const {
    auto* tables = static_cast<Acc*>(workspace);
    if (const char* e = BuildTables(p, tables, stream)) return e;
    const auto kernel = NllBackwardKernel<In, Acc>;
    const Launch l = Plan(p, kernel, 5 * p.K * sizeof(Acc));
    if (l.error) return l.error;
    kernel<<<static_cast<unsigned>(p.B), l.threads, l.sharedBytes, stream>>>(
        p.T, p.K, static_cast<const In*>(p.emissions), tags, p.lengths, tables, l.tablesShared,
        static_cast<const Acc*>(alphas), static_cast<const Acc*>(logZ),
        static_cast<const Acc*>(weights), static_cast<In*>(gradEmissions),
        static_cast<Acc*>(gradTrans), static_cast<Acc*>(gradStart), static_cast<Acc*>(gradEnd));
    return LastError();
  }
};

struct MarginalsOp {
  const Problem& p;
  float* out;
  void* workspace;
  cudaStream_t stream;

  template <typename In, typename Acc>
  const char* operator()() const {
    auto* tables = static_cast<Acc*>(workspace);
    auto* alphas = reinterpret_cast<Acc*>(static_cast<char*>(workspace) + Align(TableBytes(p)));
    if (const char* e = BuildTables(p, tables, stream)) return e;
    const auto kernel = MarginalsKernel<In, Acc>;
    const Launch l = Plan(p, kernel, 5 * p.K * sizeof(Acc));
    if (l.error) return l.error;
    kernel<<<static_cast<unsigned>(p.B), l.threads, l.sharedBytes, stream>>>(
        p.T, p.K, static_cast<const In*>(p.emissions), p.lengths, tables, l.tablesShared, alphas,
        out);
    return LastError();
  }
};

struct ViterbiOp {
  const Problem& p;
  int N;
  int64_t* tags;
  float* scores;
  void* workspace;
  cudaStream_t stream;

  template <typename In, typename Acc>
  const char* operator()() const {
    auto* tables = static_cast<Acc*>(workspace);
    auto* back = reinterpret_cast<int32_t*>(static_cast<char*>(workspace) + Align(TableBytes(p)));
    if (const char* e = BuildTables(p, tables, stream)) return e;
    const auto kernel = ViterbiKernel<In, Acc>;
    const size_t scratch = (2 * static_cast<size_t>(p.K) * N + N) * sizeof(Acc) + N * 4;
    const Launch l = Plan(p, kernel, scratch);
    if (l.error) return l.error;
    kernel<<<static_cast<unsigned>(p.B), l.threads, l.sharedBytes, stream>>>(
        p.T, p.K, N, static_cast<const In*>(p.emissions), p.lengths, tables, l.tablesShared, back,
        tags, scores);
    return LastError();
  }
};

}  // namespace

size_t NllWorkspaceBytes(const Problem& p) { return Align(TableBytes(p)); }

size_t MarginalsWorkspaceBytes(const Problem& p) {
  return Align(TableBytes(p)) + static_cast<size_t>(p.B) * p.T * p.K * AccBytes(p);
}

size_t ViterbiWorkspaceBytes(const Problem& p, int nBest) {
  return Align(TableBytes(p)) + static_cast<size_t>(p.B) * p.T * p.K * nBest * sizeof(int32_t);
}

const char* NllForward(const Problem& p, const int64_t* tags, void* alphas, void* logZ, void* nll,
                       void* workspace, cudaStream_t stream) {
  if (p.B == 0) return nullptr;
  return WithTypes(p, NllForwardOp{p, tags, alphas, logZ, nll, workspace, stream});
}

const char* NllBackward(const Problem& p, const int64_t* tags, const void* alphas, const void* logZ,
                        const void* weights, void* gradEmissions, void* gradTransitions,
                        void* gradStart, void* gradEnd, void* workspace, cudaStream_t stream) {
  if (p.B == 0) return nullptr;
  return WithTypes(p, NllBackwardOp{p, tags, alphas, logZ, weights, gradEmissions, gradTransitions,
                                    gradStart, gradEnd, workspace, stream});
}

const char* Marginals(const Problem& p, float* out, void* workspace, cudaStream_t stream) {
  if (p.B == 0) return nullptr;
  return WithTypes(p, MarginalsOp{p, out, workspace, stream});
}

const char* Viterbi(const Problem& p, int nBest, int64_t* tags, float* scores, void* workspace,
                    cudaStream_t stream) {
  if (p.B == 0) return nullptr;
  return WithTypes(p, ViterbiOp{p, nBest, tags, scores, workspace, stream});
}

}  // namespace koner::crf::cuda
