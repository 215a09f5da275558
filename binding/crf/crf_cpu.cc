#include "crf/crf_cpu.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <type_traits>
#include <vector>

#include "crf/crf_sequence.h"

namespace koner::crf::cpu {
namespace {

using seq::SerialLanes;

template <typename In>
using AccOf = std::conditional_t<std::is_same_v<In, double>, double, float>;

// Half and BFloat16 convert through float; float and double directly (double stays exact).
template <typename Acc, typename In>
inline Acc Load(In x) {
  if constexpr (std::is_same_v<In, double> || std::is_same_v<In, float>) {
    return static_cast<Acc>(x);
  } else {
    return static_cast<Acc>(static_cast<float>(x));
  }
}

// One sequence's emissions [T, K] in any input dtype, read in the accumulation type.
template <typename In, typename Acc>
struct Emissions {
  const In* data;
  int K;
  Acc operator()(int t, int k) const { return Load<Acc>(data[static_cast<int64_t>(t) * K + k]); }
};

// The transition tables, built once per call and shared read-only by every thread.
template <typename Acc>
struct HostTables {
  std::vector<Acc> block;
  seq::Tables<Acc> view;

  HostTables(const torch::Tensor& transitions, const torch::Tensor& start,
             const torch::Tensor& end) {
    const int K = static_cast<int>(transitions.size(0));
    block.resize(seq::TableWords(K, K));
    seq::BuildTables(SerialLanes{}, K, K, transitions.data_ptr<Acc>(), start.data_ptr<Acc>(),
                     end.data_ptr<Acc>(), block.data());
    view = seq::CarveTables<Acc>(block.data(), K, K);
  }
};

// Gradients of g * nll for one sequence. The transition gradient is kept transposed
// (gradTransT[j * K + i]) so that the lane owning column j writes contiguously.
template <typename Acc, typename Out>
struct GradSink {
  static constexpr bool kPairs = true;
  Acc g;
  const int64_t* tags;
  int K, length;
  Out* gradEmissions;  // [T, K]
  Acc* gradTransT;     // [K, K], transposed
  Acc* gradStart;      // [K]
  Acc* gradEnd;        // [K]

  void Marginal(int t, int k, Acc p) {
    const int64_t y = tags[t];
    const Acc d = g * (p - (y == k ? Acc(1) : Acc(0)));
    gradEmissions[static_cast<int64_t>(t) * K + k] = static_cast<Out>(d);
    if (t == 0) gradStart[k] = d;
    if (t == length - 1) gradEnd[k] = d;
    if (t > 0 && y == k) {
      const int64_t from = tags[t - 1];
      if (from >= 0 && from < K) gradTransT[static_cast<int64_t>(k) * K + from] -= g;
    }
  }
  void Pair(int i, int j, Acc p) { gradTransT[static_cast<int64_t>(j) * K + i] += g * p; }
};

template <typename Acc>
struct MarginalSink {
  static constexpr bool kPairs = false;
  float* out;  // [T, K]
  int K;
  void Marginal(int t, int k, Acc p) {
    out[static_cast<int64_t>(t) * K + k] = static_cast<float>(p);
  }
  void Pair(int, int, Acc) {}
};

struct Dims {
  int64_t B;
  int T, K;
  explicit Dims(const torch::Tensor& emissions)
      : B(emissions.size(0)),
        T(static_cast<int>(emissions.size(1))),
        K(static_cast<int>(emissions.size(2))) {}
  int64_t Sequence() const { return static_cast<int64_t>(T) * K; }
};

}  // namespace

detail::ForwardResult NllForward(const torch::Tensor& emissions, const torch::Tensor& tags,
                                 const torch::Tensor& lengths, const torch::Tensor& transitions,
                                 const torch::Tensor& start, const torch::Tensor& end) {
  const Dims d(emissions);
  const auto opts = emissions.options().dtype(transitions.scalar_type());
  detail::ForwardResult r{torch::zeros({d.B}, opts), torch::empty({d.B, d.T, d.K}, opts),
                          torch::zeros({d.B}, opts)};
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, emissions.scalar_type(), "crf_nll_forward_cpu", [&] {
        using Acc = AccOf<scalar_t>;
        const HostTables<Acc> tables(transitions, start, end);
        const scalar_t* em = emissions.data_ptr<scalar_t>();
        const int64_t* tg = tags.data_ptr<int64_t>();
        const int64_t* len = lengths.data_ptr<int64_t>();
        Acc* nll = r.nll.data_ptr<Acc>();
        Acc* logZ = r.logZ.data_ptr<Acc>();
        Acc* alphas = r.alphas.data_ptr<Acc>();
        at::parallel_for(0, d.B, 1, [&](int64_t b0, int64_t b1) {
          std::vector<Acc> scratch(d.K);
          for (int64_t b = b0; b < b1; ++b) {
            const int L = static_cast<int>(len[b]);
            if (L == 0) continue;
            const Emissions<scalar_t, Acc> e{em + b * d.Sequence(), d.K};
            // Both terms in double: they grow with the length, their difference need not.
            const double z = seq::Forward(SerialLanes{}, tables.view, e, L,
                                          alphas + b * d.Sequence(), scratch.data());
            logZ[b] = static_cast<Acc>(z);
            nll[b] = static_cast<Acc>(z - seq::PathScore(tables.view, e, L, tg + b * d.T));
          }
        });
      });
  return r;
}

detail::GradResult NllBackward(const torch::Tensor& emissions, const torch::Tensor& tags,
                               const torch::Tensor& lengths, const torch::Tensor& transitions,
                               const torch::Tensor& start, const torch::Tensor& end,
                               const detail::ForwardResult& forward, const torch::Tensor& weights) {
  const Dims d(emissions);
  const auto acc = emissions.options().dtype(transitions.scalar_type());
  auto gradEmissions = torch::zeros_like(emissions);
  // Per sequence, so that threads never share an accumulator; summed below.
  auto gradTransT = torch::zeros({d.B, d.K, d.K}, acc);
  auto gradStart = torch::zeros({d.B, d.K}, acc);
  auto gradEnd = torch::zeros({d.B, d.K}, acc);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, emissions.scalar_type(), "crf_nll_backward_cpu", [&] {
        using Acc = AccOf<scalar_t>;
        const HostTables<Acc> tables(transitions, start, end);
        const scalar_t* em = emissions.data_ptr<scalar_t>();
        scalar_t* gem = gradEmissions.data_ptr<scalar_t>();
        const int64_t* tg = tags.data_ptr<int64_t>();
        const int64_t* len = lengths.data_ptr<int64_t>();
        const Acc* alphas = forward.alphas.data_ptr<Acc>();
        const Acc* logZ = forward.logZ.data_ptr<Acc>();
        const Acc* w = weights.data_ptr<Acc>();
        Acc* gT = gradTransT.data_ptr<Acc>();
        Acc* gS = gradStart.data_ptr<Acc>();
        Acc* gE = gradEnd.data_ptr<Acc>();
        at::parallel_for(0, d.B, 1, [&](int64_t b0, int64_t b1) {
          std::vector<Acc> scratch(5 * d.K);
          for (int64_t b = b0; b < b1; ++b) {
            const int L = static_cast<int>(len[b]);
            if (L == 0) continue;
            const Emissions<scalar_t, Acc> e{em + b * d.Sequence(), d.K};
            GradSink<Acc, scalar_t> sink{
                w[b],         tg + b * d.T, d.K, L, gem + b * d.Sequence(), gT + b * d.K * d.K,
                gS + b * d.K, gE + b * d.K};
            seq::Backward(SerialLanes{}, tables.view, e, L, alphas + b * d.Sequence(),
                          logZ[b] > seq::Num<Acc>::NegInf(), scratch.data(), sink);
          }
        });
      });
  return {gradEmissions, gradTransT.sum(0).t().contiguous(), gradStart.sum(0), gradEnd.sum(0)};
}

torch::Tensor Marginals(const torch::Tensor& emissions, const torch::Tensor& lengths,
                        const torch::Tensor& transitions, const torch::Tensor& start,
                        const torch::Tensor& end) {
  const Dims d(emissions);
  auto out = torch::zeros({d.B, d.T, d.K}, emissions.options().dtype(torch::kFloat32));
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, emissions.scalar_type(), "crf_marginals_cpu", [&] {
        using Acc = AccOf<scalar_t>;
        const HostTables<Acc> tables(transitions, start, end);
        const scalar_t* em = emissions.data_ptr<scalar_t>();
        const int64_t* len = lengths.data_ptr<int64_t>();
        float* o = out.data_ptr<float>();
        at::parallel_for(0, d.B, 1, [&](int64_t b0, int64_t b1) {
          std::vector<Acc> alpha(d.Sequence());
          std::vector<Acc> scratch(5 * d.K);
          for (int64_t b = b0; b < b1; ++b) {
            const int L = static_cast<int>(len[b]);
            if (L == 0) continue;
            const Emissions<scalar_t, Acc> e{em + b * d.Sequence(), d.K};
            const double z =
                seq::Forward(SerialLanes{}, tables.view, e, L, alpha.data(), scratch.data());
            MarginalSink<Acc> sink{o + b * d.Sequence(), d.K};
            seq::Backward(SerialLanes{}, tables.view, e, L, alpha.data(),
                          z > seq::Num<double>::NegInf(), scratch.data(), sink);
          }
        });
      });
  return out;
}

detail::Decoded Viterbi(const torch::Tensor& emissions, const torch::Tensor& lengths,
                        const torch::Tensor& transitions, const torch::Tensor& start,
                        const torch::Tensor& end, int64_t nBest) {
  const Dims d(emissions);
  const int N = static_cast<int>(nBest);
  detail::Decoded r{torch::empty({d.B, N, d.T}, emissions.options().dtype(torch::kInt64)),
                    torch::empty({d.B, N}, emissions.options().dtype(torch::kFloat32))};
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, emissions.scalar_type(), "crf_viterbi_cpu", [&] {
        using Acc = AccOf<scalar_t>;
        const HostTables<Acc> tables(transitions, start, end);
        const scalar_t* em = emissions.data_ptr<scalar_t>();
        const int64_t* len = lengths.data_ptr<int64_t>();
        int64_t* outTags = r.tags.data_ptr<int64_t>();
        float* outScores = r.scores.data_ptr<float>();
        at::parallel_for(0, d.B, 1, [&](int64_t b0, int64_t b1) {
          std::vector<Acc> lists(2 * static_cast<int64_t>(d.K) * N + N);
          std::vector<int32_t> back(d.Sequence() * N + N);
          Acc* listA = lists.data();
          Acc* listB = listA + static_cast<int64_t>(d.K) * N;
          Acc* bestScore = listB + static_cast<int64_t>(d.K) * N;
          int32_t* bestIndex = back.data() + d.Sequence() * N;
          for (int64_t b = b0; b < b1; ++b) {
            const Emissions<scalar_t, Acc> e{em + b * d.Sequence(), d.K};
            seq::Viterbi(SerialLanes{}, tables.view, e, static_cast<int>(len[b]), d.T, N, listA,
                         listB, back.data(), bestScore, bestIndex, outTags + b * N * d.T,
                         outScores + b * N);
          }
        });
      });
  return r;
}

}  // namespace koner::crf::cpu
