// The public CRF entry points: validate every argument (messages name it and both shapes),
// bring the inputs to the form the backends take (crf_dispatch.h) and call them.
#include "crf/crf.h"

#include <torch/torch.h>

#include <limits>

#include "crf/crf_autograd.h"
#include "crf/crf_dispatch.h"

namespace koner::crf {
namespace {

bool IsFloating(const torch::Tensor& t) {
  const auto s = t.scalar_type();
  return s == torch::kFloat32 || s == torch::kFloat64 || s == torch::kFloat16 ||
         s == torch::kBFloat16;
}

bool IsBoolLike(const torch::Tensor& t) {
  return t.scalar_type() == torch::kBool || t.scalar_type() == torch::kUInt8;
}

// [B, T, K] of the emissions, checked.
struct Dims {
  int64_t B, T, K;
};

Dims CheckEmissions(const torch::Tensor& emissions) {
  TORCH_CHECK(emissions.defined(), "crf: emissions is undefined");
  TORCH_CHECK(emissions.dim() == 3, "crf: emissions must have shape [B, T, K], got ",
              emissions.sizes());
  TORCH_CHECK(IsFloating(emissions),
              "crf: emissions must be float32, float64, float16 or bfloat16, got ",
              emissions.scalar_type());
  const Dims d{emissions.size(0), emissions.size(1), emissions.size(2)};
  TORCH_CHECK(d.K >= 1, "crf: emissions [B, T, K] = ", emissions.sizes(),
              " must have at least one tag");
  TORCH_CHECK(d.T * d.K <= std::numeric_limits<int32_t>::max(),
              "crf: emissions [B, T, K] = ", emissions.sizes(),
              " has too many positions per sequence");
  return d;
}

void CheckSameDevice(const torch::Tensor& emissions, const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device() == emissions.device(), "crf: ", name, " is on ", t.device(),
              " but emissions are on ", emissions.device());
}

void CheckShape(const torch::Tensor& emissions, const torch::Tensor& t, const char* name,
                torch::IntArrayRef expected, const char* symbolic) {
  TORCH_CHECK(t.defined(), "crf: ", name, " is undefined");
  TORCH_CHECK(t.sizes() == expected, "crf: ", name, " must have shape ", symbolic, " = ", expected,
              " for emissions [B, T, K] = ", emissions.sizes(), ", got ", t.sizes());
  CheckSameDevice(emissions, t, name);
}

void CheckParams(const torch::Tensor& emissions, const Dims& d, const torch::Tensor& transitions,
                 const torch::Tensor& start, const torch::Tensor& end) {
  CheckShape(emissions, transitions, "transitions", {d.K, d.K}, "[K, K]");
  CheckShape(emissions, start, "start_transitions", {d.K}, "[K]");
  CheckShape(emissions, end, "end_transitions", {d.K}, "[K]");
  TORCH_CHECK(IsFloating(transitions), "crf: transitions must be floating point, got ",
              transitions.scalar_type());
  TORCH_CHECK(IsFloating(start), "crf: start_transitions must be floating point, got ",
              start.scalar_type());
  TORCH_CHECK(IsFloating(end), "crf: end_transitions must be floating point, got ",
              end.scalar_type());
}

// The mask's per-sequence lengths [B] int64. A CPU mask must be a prefix mask; checking a
// device mask would synchronise, so there the count of set positions is the length.
torch::Tensor LengthsOf(const torch::Tensor& emissions, const Dims& d, const torch::Tensor& mask) {
  CheckShape(emissions, mask, "mask", {d.B, d.T}, "[B, T]");
  TORCH_CHECK(IsBoolLike(mask), "crf: mask must be bool or uint8, got ", mask.scalar_type());
  const auto set = mask.to(torch::kBool);
  auto lengths = set.sum(1).to(torch::kInt64).contiguous();
  if (mask.is_cpu() && d.B * d.T > 0) {
    const auto prefix = torch::arange(d.T, lengths.options()).unsqueeze(0) < lengths.unsqueeze(1);
    if (!torch::equal(prefix, set)) {
      const int64_t b = (prefix != set).any(1).nonzero()[0][0].item<int64_t>();
      TORCH_CHECK(false, "crf: mask must be a prefix mask (ones, then zeros) per sequence; row ", b,
                  " is not");
    }
  }
  return lengths;
}

torch::Tensor CheckTags(const torch::Tensor& emissions, const Dims& d, const torch::Tensor& tags,
                        const torch::Tensor& lengths) {
  CheckShape(emissions, tags, "tags", {d.B, d.T}, "[B, T]");
  TORCH_CHECK(tags.scalar_type() == torch::kInt64 || tags.scalar_type() == torch::kInt32,
              "crf: tags must be int64 (or int32), got ", tags.scalar_type());
  auto t = tags.to(torch::kInt64).contiguous();
  if (t.is_cpu() && d.B * d.T > 0) {
    const auto inside = torch::arange(d.T, lengths.options()).unsqueeze(0) < lengths.unsqueeze(1);
    const auto bad = inside & ((t < 0) | (t >= d.K));
    if (bad.any().item<bool>()) {
      const auto at = bad.nonzero()[0];
      const int64_t b = at[0].item<int64_t>(), i = at[1].item<int64_t>();
      TORCH_CHECK(false, "crf: tags[", b, "][", i, "] = ", t[b][i].item<int64_t>(),
                  " is outside [0, K) for K = ", d.K);
    }
  }
  return t;
}

// Scores in the accumulation dtype with -inf where `allowed` is false.
torch::Tensor Constrained(const torch::Tensor& emissions, const torch::Tensor& scores,
                          const torch::Tensor& allowed, const char* name, const char* symbolic) {
  const auto acc = detail::AccType(emissions.scalar_type());
  auto s = scores.detach().to(acc).contiguous();
  if (!allowed.defined()) return s;
  CheckShape(emissions, allowed, name, scores.sizes(), symbolic);
  TORCH_CHECK(IsBoolLike(allowed), "crf: ", name, " must be bool or uint8, got ",
              allowed.scalar_type());
  return s.masked_fill(allowed.to(torch::kBool).logical_not(),
                       -std::numeric_limits<double>::infinity());
}

struct Prepared {
  torch::Tensor emissions, lengths, transitions, start, end;
};

Prepared Prepare(const torch::Tensor& emissions, const torch::Tensor& mask,
                 const torch::Tensor& transitions, const torch::Tensor& start,
                 const torch::Tensor& end, const Constraints& c) {
  const Dims d = CheckEmissions(emissions);
  CheckParams(emissions, d, transitions, start, end);
  return {emissions.detach().contiguous(), LengthsOf(emissions, d, mask),
          Constrained(emissions, transitions, c.allowed, "allowed", "[K, K]"),
          Constrained(emissions, start, c.allowedStart, "allowedStart", "[K]"),
          Constrained(emissions, end, c.allowedEnd, "allowedEnd", "[K]")};
}

}  // namespace

torch::Tensor Nll(const torch::Tensor& emissions, const torch::Tensor& tags,
                  const torch::Tensor& mask, const torch::Tensor& transitions,
                  const torch::Tensor& start, const torch::Tensor& end, Reduction reduction) {
  const Dims d = CheckEmissions(emissions);
  CheckParams(emissions, d, transitions, start, end);
  const auto lengths = LengthsOf(emissions, d, mask);
  const auto t = CheckTags(emissions, d, tags, lengths);
  TORCH_CHECK(reduction == Reduction::Sum || reduction == Reduction::Mean ||
                  reduction == Reduction::None || reduction == Reduction::TokenMean,
              "crf: unknown reduction");
  return NllFunction::apply(emissions, transitions, start, end, t, lengths,
                            static_cast<int64_t>(reduction));
}

Paths Decode(const torch::Tensor& emissions, const torch::Tensor& mask,
             const torch::Tensor& transitions, const torch::Tensor& start, const torch::Tensor& end,
             int64_t nBest, const Constraints& constraints) {
  const torch::NoGradGuard noGrad;
  TORCH_CHECK(nBest >= 1, "crf: nBest must be at least 1, got ", nBest);
  const auto p = Prepare(emissions, mask, transitions, start, end, constraints);
  TORCH_CHECK(
      p.emissions.size(1) * p.emissions.size(2) * nBest <= std::numeric_limits<int32_t>::max(),
      "crf: nBest = ", nBest, " is too large for emissions ", emissions.sizes());
  auto r = detail::Viterbi(p.emissions, p.lengths, p.transitions, p.start, p.end, nBest);
  return {r.tags, r.scores};
}

torch::Tensor Marginals(const torch::Tensor& emissions, const torch::Tensor& mask,
                        const torch::Tensor& transitions, const torch::Tensor& start,
                        const torch::Tensor& end, const Constraints& constraints) {
  const torch::NoGradGuard noGrad;
  const auto p = Prepare(emissions, mask, transitions, start, end, constraints);
  return detail::Marginals(p.emissions, p.lengths, p.transitions, p.start, p.end);
}

}  // namespace koner::crf
