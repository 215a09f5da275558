// The CRF's per-sequence algorithms, written once for the host (crf_cpu.cc, a plain loop over
// tags) and the device (crf_cuda.cu, one CUDA block per sequence with tags across threads), so
// that the CPU tests exercise the very logic the kernels run.
//
// Parallelism is abstracted by a `Lanes` type: a routine runs on Width() workers, worker Lane()
// takes tags Lane(), Lane() + Width(), ..., and Sync() separates phases that read what other
// lanes wrote. SerialLanes (one worker, no-op Sync) is the host's; the device's wraps threadIdx
// and __syncthreads(). Every lane calls every routine; values a routine returns are the same in
// all lanes. Element access is templated too: `Em` reads emission (t, k) in any input type and
// converts it to the accumulation type `Acc` (float, or double for gradcheck), and a `Sink`
// receives the backward pass's marginals in the layout its backend prefers.
//
// Sums run in exp space against tables of exp(transitions) prepared once per call: a step costs
// K exps and K^2 multiply-adds instead of K^2 exps. Each sum is scaled by its largest terms, so
// it is exact log-sum-exp up to rounding; when a sum comes out so small that underflow may have
// eaten its precision (scaled terms whose maxima are not attained together), that entry is
// recomputed by direct log-sum-exp. Scores of -inf (disallowed transitions) are handled.
//
// Scaling. Path scores grow linearly with the length (1e5 and more for long texts), where a
// float32 keeps only ~0.01 absolutely: exp(alpha + beta - log Z) of such numbers cancels
// catastrophically (marginals far above 1) and log Z drifts. So the recursions never hold a
// running total in Acc: each forward/backward/Viterbi step is computed relative to the previous
// position's maximum, which keeps the stored values within one step's range of scores (emission
// plus transition plus log K), and the maxima are summed in a double per sequence (cheap on both
// backends, and exact enough for any length). log Z and path scores come out as doubles;
// marginals are normalised over the tags at each position, so the offsets cancel out of them.
#pragma once
#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define KONER_HD __host__ __device__
#else
#define KONER_HD
#endif

namespace koner::crf::seq {

template <typename Acc>
struct Num;

template <>
struct Num<float> {
  KONER_HD static float NegInf() { return -HUGE_VALF; }
  // A scaled sum below this may have lost precision to underflow: recompute it exactly.
  KONER_HD static float Tiny() { return 1e-25f; }
  // Largest scale factor exp(x) applied to products that may be denormal (error <= 1e-38 e^x).
  KONER_HD static float MaxScale() { return 60.f; }
  KONER_HD static float Exp(float x) { return expf(x); }
  KONER_HD static float Log(float x) { return logf(x); }
};

template <>
struct Num<double> {
  KONER_HD static double NegInf() { return -HUGE_VAL; }
  KONER_HD static double Tiny() { return 1e-250; }
  KONER_HD static double MaxScale() { return 600.; }
  KONER_HD static double Exp(double x) { return exp(x); }
  KONER_HD static double Log(double x) { return log(x); }
};

template <typename Acc>
KONER_HD inline Acc Max(Acc a, Acc b) {
  return b > a ? b : a;
}

// One worker doing every tag: the host's lanes.
struct SerialLanes {
  KONER_HD int Lane() const { return 0; }
  KONER_HD int Width() const { return 1; }
  KONER_HD void Sync() const {}
};

// Four partial sums: breaks the add latency chain on the host, harmless on the device.
template <typename Acc>
KONER_HD inline Acc Dot(const Acc* a, const Acc* b, int n) {
  Acc s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

// max_i x[i * stride]; four partial maxima, as Dot: one chain of dependent maxima costs about as
// much as a plain Viterbi step's K^2 candidates.
template <typename Acc>
KONER_HD inline Acc MaxOf(const Acc* x, int n, int stride = 1) {
  Acc m0 = Num<Acc>::NegInf(), m1 = m0, m2 = m0, m3 = m0;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    m0 = Max(m0, x[i * stride]);
    m1 = Max(m1, x[(i + 1) * stride]);
    m2 = Max(m2, x[(i + 2) * stride]);
    m3 = Max(m3, x[(i + 3) * stride]);
  }
  for (; i < n; ++i) m0 = Max(m0, x[i * stride]);
  return Max(Max(m0, m1), Max(m2, m3));
}

// Four partial sums, as Dot. Every lane that calls it on the same data gets the same value.
template <typename Acc>
KONER_HD inline Acc Sum(const Acc* x, int n) {
  Acc s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += x[i];
    s1 += x[i + 1];
    s2 += x[i + 2];
    s3 += x[i + 3];
  }
  for (; i < n; ++i) s0 += x[i];
  return (s0 + s1) + (s2 + s3);
}

// log sum_i exp(x[i] + y[i]), exactly, -inf when every term is -inf; computed in R (the final
// log Z takes it in double, the underflow fallbacks in Acc).
template <typename Acc, typename R = Acc>
KONER_HD inline R LogSumExpOfSum(const Acc* x, const Acc* y, int n) {
  R m = Num<R>::NegInf();
  for (int i = 0; i < n; ++i) m = Max(m, static_cast<R>(x[i]) + static_cast<R>(y[i]));
  if (!(m > Num<R>::NegInf())) return m;
  R s = 0;
  for (int i = 0; i < n; ++i) s += Num<R>::Exp(static_cast<R>(x[i]) + static_cast<R>(y[i]) - m);
  return m + Num<R>::Log(s);
}

// The transition scores in the forms the routines read, for K tags with row stride `ld` (the
// device pads it to avoid shared-memory bank conflicts). Laid out in one block of
// TableWords(K, ld) values so that a backend can build it once and copy it anywhere.
template <typename Acc>
struct Tables {
  int K, ld;
  const Acc* trans;   // trans[i * ld + j]: tag i followed by tag j
  const Acc* transT;  // transT[j * ld + i] = trans[i][j]: columns contiguous
  const Acc* expCol;  // expCol[j * ld + i] = exp(trans[i][j] - colMax[j]); 0 when colMax = -inf
  const Acc* colMax;  // colMax[j] = max_i trans[i][j]
  const Acc* expRow;  // expRow[i * ld + j] = exp(trans[i][j] - rowMax[i]); 0 when rowMax = -inf
  const Acc* rowMax;  // rowMax[i] = max_j trans[i][j]
  const Acc* start;   // start[j]: score of beginning with j
  const Acc* end;     // end[i]: score of ending with i
};

KONER_HD inline int64_t TableWords(int K, int ld) {
  return 4 * static_cast<int64_t>(K) * ld + 4 * static_cast<int64_t>(K);
}

template <typename Acc>
KONER_HD inline Tables<Acc> CarveTables(const Acc* base, int K, int ld) {
  const int64_t sq = static_cast<int64_t>(K) * ld;
  Tables<Acc> t;
  t.K = K;
  t.ld = ld;
  t.trans = base;
  t.transT = base + sq;
  t.expCol = base + 2 * sq;
  t.expRow = base + 3 * sq;
  t.colMax = base + 4 * sq;
  t.rowMax = base + 4 * sq + K;
  t.start = base + 4 * sq + 2 * K;
  t.end = base + 4 * sq + 3 * K;
  return t;
}

// Fills the table block at `out` from contiguous trans [K][K], start [K], end [K] (already
// holding -inf where constraints forbid a transition).
template <typename Acc, typename Lanes>
KONER_HD void BuildTables(const Lanes& lanes, int K, int ld, const Acc* trans, const Acc* start,
                          const Acc* end, Acc* out) {
  const int64_t sq = static_cast<int64_t>(K) * ld;
  Acc* tr = out;
  Acc* trT = out + sq;
  Acc* expCol = out + 2 * sq;
  Acc* expRow = out + 3 * sq;
  Acc* colMax = out + 4 * sq;
  Acc* rowMax = colMax + K;
  Acc* startOut = colMax + 2 * K;
  Acc* endOut = colMax + 3 * K;
  for (int k = lanes.Lane(); k < K; k += lanes.Width()) {
    Acc cm = Num<Acc>::NegInf(), rm = Num<Acc>::NegInf();
    for (int x = 0; x < K; ++x) {
      cm = Max(cm, trans[x * K + k]);
      rm = Max(rm, trans[k * K + x]);
    }
    colMax[k] = cm;
    rowMax[k] = rm;
    for (int x = 0; x < K; ++x) {
      const Acc c = trans[x * K + k];  // trans[x][k]: column k
      const Acc r = trans[k * K + x];  // trans[k][x]: row k
      tr[k * ld + x] = r;
      trT[k * ld + x] = c;
      expCol[k * ld + x] = cm > Num<Acc>::NegInf() ? Num<Acc>::Exp(c - cm) : Acc(0);
      expRow[k * ld + x] = rm > Num<Acc>::NegInf() ? Num<Acc>::Exp(r - rm) : Acc(0);
    }
    startOut[k] = start[k];
    endOut[k] = end[k];
  }
  lanes.Sync();
}

// Forward algorithm over the first `length` >= 1 positions; returns log Z in double. Writes
// alpha[t * K + k] = alpha_t(k) - O_t, the log score of all prefixes ending in k at t less an
// offset common to the position: O_0 = 0 and O_t = O_{t-1} + max_k alpha[(t-1) * K + k]. The
// stored values stay within one step's range of scores whatever the length (see Scaling above);
// Backward recomputes the same maxima from them. `scratch` holds K values.
template <typename Acc, typename Lanes, typename Em>
KONER_HD double Forward(const Lanes& lanes, const Tables<Acc>& tab, const Em& em, int length,
                        Acc* alpha, Acc* scratch) {
  const int K = tab.K;
  const Acc negInf = Num<Acc>::NegInf();
  for (int j = lanes.Lane(); j < K; j += lanes.Width()) alpha[j] = tab.start[j] + em(0, j);
  lanes.Sync();
  double offset = 0;  // O_t, kept by every lane alike
  for (int t = 1; t < length; ++t) {
    const Acc* prev = alpha + static_cast<int64_t>(t - 1) * K;
    Acc* cur = alpha + static_cast<int64_t>(t) * K;
    const Acc a = MaxOf(prev, K);  // the same in every lane
    if (!(a > negInf)) {           // no allowed prefix: nothing can follow
      for (int j = lanes.Lane(); j < K; j += lanes.Width()) cur[j] = negInf;
      lanes.Sync();
      continue;
    }
    offset += a;
    for (int i = lanes.Lane(); i < K; i += lanes.Width()) scratch[i] = Num<Acc>::Exp(prev[i] - a);
    lanes.Sync();
    for (int j = lanes.Lane(); j < K; j += lanes.Width()) {
      const Acc s = Dot(tab.expCol + static_cast<int64_t>(j) * tab.ld, scratch, K);
      const Acc v =
          s >= Num<Acc>::Tiny()
              ? tab.colMax[j] + Num<Acc>::Log(s)
              : LogSumExpOfSum(prev, tab.transT + static_cast<int64_t>(j) * tab.ld, K) - a;
      cur[j] = v + em(t, j);
    }
    lanes.Sync();
  }
  const double rest =
      LogSumExpOfSum<Acc, double>(alpha + static_cast<int64_t>(length - 1) * K, tab.end, K);
  return rest > Num<double>::NegInf() ? offset + rest : rest;
}

// Score of one tag sequence (serial: the caller runs it in one lane), summed in double so that
// log Z - score keeps the precision of both terms. NaN when a tag is outside [0, K): the device
// path does not validate tags up front.
template <typename Acc, typename Em>
KONER_HD double PathScore(const Tables<Acc>& tab, const Em& em, int length, const int64_t* tags) {
  const int K = tab.K;
  double s = 0;
  int64_t prev = -1;
  for (int t = 0; t < length; ++t) {
    const int64_t y = tags[t];
    if (y < 0 || y >= K) return Num<double>::NegInf() - Num<double>::NegInf();  // NaN
    s += static_cast<double>(t == 0 ? tab.start[y] : tab.trans[prev * tab.ld + y]);
    s += static_cast<double>(em(t, static_cast<int>(y)));
    prev = y;
  }
  return length > 0 ? s + static_cast<double>(tab.end[prev]) : 0.;
}

// Backward algorithm fused with the marginals, from the forward pass's (offset) alpha, for
// `length` >= 1. For every t < length and tag k it calls sink.Marginal(t, k, P(y_t = k)) from
// the lane owning k; when Sink::kPairs, also sink.Pair(i, j, P(y_{t-1} = i, y_t = j)) for
// t >= 1 from the lane owning j (so a lane only ever touches its own column). `scratch` holds
// 5K values. With !hasPath (log Z = -inf: no allowed path) every marginal is 0.
//
// beta is kept relative too (each step drops the max of e_t + beta_t), and log Z is never used:
// with n_t = log sum_k exp(alpha_t(k) + beta_t(k)) over the stored values, P(y_t = k) =
// exp(alpha_t(k) + beta_t(k) - n_t) and P(i, j) = exp(alpha_{t-1}(i) - a + trans[i][j] + e_t(j)
// + beta_t(j) - n_t), a = max alpha_{t-1}, since the stored alpha_t was formed relative to a. The
// per-position normaliser makes each row sum to 1 up to rounding however long the sequence is.
template <typename Acc, typename Lanes, typename Em, typename Sink>
KONER_HD void Backward(const Lanes& lanes, const Tables<Acc>& tab, const Em& em, int length,
                       const Acc* alpha, bool hasPath, Acc* scratch, Sink& sink) {
  const int K = tab.K;
  const Acc negInf = Num<Acc>::NegInf();
  if (!hasPath) {
    for (int t = 0; t < length; ++t) {
      for (int k = lanes.Lane(); k < K; k += lanes.Width()) sink.Marginal(t, k, Acc(0));
    }
    return;
  }
  // Five slots of K, two of them doing double duty to stay within 5K: `v` (alpha_t + beta_t) is
  // written into betaPrev's slot, which is rewritten only after every lane has read it, and its
  // exps `ev` into beta's, dead once v and w are formed.
  Acc* beta = scratch;          // beta_t: log score of all suffixes after (t, k), offset
  Acc* betaPrev = scratch + K;  // beta_{t-1}
  Acc* w = scratch + 2 * K;     // w_j = e_t(j) + beta_t(j)
  Acc* wexp = scratch + 3 * K;  // exp(w_j - max w)
  Acc* u = scratch + 4 * K;     // exp(alpha_{t-1}(i) - max alpha_{t-1})
  for (int k = lanes.Lane(); k < K; k += lanes.Width()) beta[k] = tab.end[k];
  lanes.Sync();
  for (int t = length - 1;; --t) {
    const Acc* al = alpha + static_cast<int64_t>(t) * K;
    const Acc* alPrev = al - K;  // read only when t > 0
    Acc* v = betaPrev;
    Acc* ev = beta;
    for (int k = lanes.Lane(); k < K; k += lanes.Width()) {
      v[k] = al[k] + beta[k];
      if (t > 0) w[k] = em(t, k) + beta[k];
    }
    lanes.Sync();
    const Acc vmax = MaxOf(v, K);
    const Acc wmax = t > 0 ? MaxOf(w, K) : negInf;
    const Acc a = t > 0 ? MaxOf(alPrev, K) : negInf;
    for (int j = lanes.Lane(); j < K; j += lanes.Width()) {
      ev[j] = vmax > negInf ? Num<Acc>::Exp(v[j] - vmax) : Acc(0);
      if (t > 0) {
        wexp[j] = wmax > negInf ? Num<Acc>::Exp(w[j] - wmax) : Acc(0);
        u[j] = a > negInf ? Num<Acc>::Exp(alPrev[j] - a) : Acc(0);
      }
    }
    lanes.Sync();
    const Acc total = Sum(ev, K);  // >= 1 (its largest term is exp(0)) unless vmax = -inf
    for (int k = lanes.Lane(); k < K; k += lanes.Width()) {
      sink.Marginal(t, k, total > 0 ? ev[k] / total : Acc(0));
    }
    if (t == 0) break;
    const Acc norm = vmax + Num<Acc>::Log(total);  // n_t
    for (int i = lanes.Lane(); i < K; i += lanes.Width()) {
      const Acc s = Dot(tab.expRow + static_cast<int64_t>(i) * tab.ld, wexp, K);
      betaPrev[i] = s >= Num<Acc>::Tiny() ? tab.rowMax[i] + Num<Acc>::Log(s)
                    : wmax > negInf
                        ? LogSumExpOfSum(w, tab.trans + static_cast<int64_t>(i) * tab.ld, K) - wmax
                        : negInf;
    }
    if (Sink::kPairs && norm > negInf) {
      // P(i, j) = u_i expCol[j][i] exp(c_j), c_j = colMax[j] + w_j - n_t.
      for (int j = lanes.Lane(); j < K; j += lanes.Width()) {
        const Acc c = tab.colMax[j] + w[j] - norm;
        const Acc* col = tab.expCol + static_cast<int64_t>(j) * tab.ld;
        if (c <= Num<Acc>::MaxScale()) {
          const Acc scale = Num<Acc>::Exp(c);
          for (int i = 0; i < K; ++i) sink.Pair(i, j, u[i] * col[i] * scale);
        } else {  // the maxima are far apart: the scaled product could overflow or lose bits
          const Acc* colLog = tab.transT + static_cast<int64_t>(j) * tab.ld;
          for (int i = 0; i < K; ++i) {
            sink.Pair(i, j, Num<Acc>::Exp(alPrev[i] - a + colLog[i] + w[j] - norm));
          }
        }
      }
    }
    lanes.Sync();
    Acc* tmp = beta;
    beta = betaPrev;
    betaPrev = tmp;
  }
}

// n-best Viterbi over the first `length` positions (0 allowed). Writes outTags[n * T + t]
// (-1 beyond length and for missing paths) and outScores[n] (-inf when missing) for n < N.
// Each (t, k) keeps its N best distinct prefixes, sorted; candidates arrive ordered by
// (previous tag, rank) and only a strictly better one displaces, so equal scores are ordered
// the same way on every backend. Scratch: listA, listB of K * N scores, back of
// length * K * N entries (previous tag * N + rank), bestScore [N], bestIndex [N].
//
// The lists hold scores less a per-position offset, as Forward's alpha: each step subtracts the
// previous position's best score and adds it to a double. Running totals in Acc would compare
// candidates at the precision of the total (about 0.02 at 3e5 in float32), picking visibly
// suboptimal paths on long sequences; relative scores are compared at one step's precision.
template <typename Acc, typename Lanes, typename Em, typename OutScore>
KONER_HD void Viterbi(const Lanes& lanes, const Tables<Acc>& tab, const Em& em, int length, int T,
                      int N, Acc* listA, Acc* listB, int32_t* back, Acc* bestScore,
                      int32_t* bestIndex, int64_t* outTags, OutScore* outScores) {
  const int K = tab.K;
  const Acc negInf = Num<Acc>::NegInf();
  for (int64_t x = lanes.Lane(); x < static_cast<int64_t>(N) * T; x += lanes.Width()) {
    outTags[x] = -1;
  }
  if (length == 0) {  // one path, the empty one
    for (int n = lanes.Lane(); n < N; n += lanes.Width()) {
      outScores[n] = static_cast<OutScore>(n == 0 ? Acc(0) : negInf);
    }
    return;
  }
  Acc* prev = listA;
  Acc* cur = listB;
  for (int j = lanes.Lane(); j < K; j += lanes.Width()) {
    prev[j * N] = tab.start[j] + em(0, j);
    for (int r = 1; r < N; ++r) prev[j * N + r] = negInf;
  }
  lanes.Sync();
  double offset = 0;  // what the scores in prev are relative to, the same in every lane
  for (int t = 1; t < length; ++t) {
    // The best score at t - 1: the head of some list (the lists are sorted).
    const Acc a = MaxOf(prev, K, N);
    if (a > negInf) offset += a;
    const Acc shift = a > negInf ? a : Acc(0);  // nothing allowed yet: every list is -inf
    for (int j = lanes.Lane(); j < K; j += lanes.Width()) {
      Acc* top = cur + j * N;
      int32_t* bp = back + (static_cast<int64_t>(t) * K + j) * N;
      const Acc e = em(t, j) - shift;
      if (N == 1) {  // plain Viterbi: a running maximum, same result as the list below
        const Acc* col = tab.transT + static_cast<int64_t>(j) * tab.ld;
        Acc best = negInf;
        int32_t arg = -1;
        for (int i = 0; i < K; ++i) {
          const Acc v = prev[i] + col[i];
          if (v > best) {
            best = v;
            arg = i;
          }
        }
        top[0] = best > negInf ? best + e : negInf;
        bp[0] = arg;
        continue;
      }
      for (int r = 0; r < N; ++r) {
        top[r] = negInf;
        bp[r] = -1;
      }
      const Acc* col = tab.transT + static_cast<int64_t>(j) * tab.ld;
      for (int i = 0; i < K; ++i) {
        const Acc tr = col[i];
        if (!(tr > negInf)) continue;
        for (int r = 0; r < N; ++r) {
          const Acc p = prev[i * N + r];
          if (!(p > negInf)) break;
          const Acc v = p + tr;
          if (!(v > top[N - 1])) break;  // this list is sorted: the rest are no better
          int pos = N - 1;
          while (pos > 0 && top[pos - 1] < v) {
            top[pos] = top[pos - 1];
            bp[pos] = bp[pos - 1];
            --pos;
          }
          top[pos] = v;
          bp[pos] = i * N + r;
        }
      }
      for (int r = 0; r < N && top[r] > negInf; ++r) top[r] += e;
    }
    lanes.Sync();
    Acc* tmp = prev;
    prev = cur;
    cur = tmp;
  }
  if (lanes.Lane() == 0) {  // the N best over (last tag, rank)
    for (int n = 0; n < N; ++n) {
      bestScore[n] = negInf;
      bestIndex[n] = -1;
    }
    for (int j = 0; j < K; ++j) {
      for (int r = 0; r < N; ++r) {
        const Acc p = prev[j * N + r];
        if (!(p > negInf)) break;
        const Acc v = p + tab.end[j];
        if (!(v > bestScore[N - 1])) break;  // sorted list (and end[j] = -inf: disallowed)
        int pos = N - 1;
        while (pos > 0 && bestScore[pos - 1] < v) {
          bestScore[pos] = bestScore[pos - 1];
          bestIndex[pos] = bestIndex[pos - 1];
          --pos;
        }
        bestScore[pos] = v;
        bestIndex[pos] = j * N + r;
      }
    }
  }
  lanes.Sync();
  for (int n = lanes.Lane(); n < N; n += lanes.Width()) {  // one lane backtracks each path
    int32_t idx = bestIndex[n];
    outScores[n] = static_cast<OutScore>(idx >= 0 ? offset + static_cast<double>(bestScore[n])
                                                  : static_cast<double>(negInf));
    if (idx < 0) continue;
    for (int t = length - 1; t >= 0; --t) {
      outTags[static_cast<int64_t>(n) * T + t] = idx / N;
      if (t > 0) idx = back[(static_cast<int64_t>(t) * K) * N + idx];
    }
  }
}

}  // namespace koner::crf::seq
