import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

import { decode, marginals, nll, type CrfReduction } from '../lib/crf/index.js';
import { native } from '../lib/native.js';
import {
  at,
  bruteDecode,
  bruteMarginals,
  bruteNll,
  type Case,
  closeMismatch,
  constraintsOf,
  enumerate,
  inputOf,
  isAllowed,
  LONG_K,
  LONG_LENGTHS,
  longCase,
  logSumExp,
  nativeDecode,
  nativeMarginals,
  nativeNll,
  pathScore,
  randomCase,
  REDUCTIONS,
  SMALL,
} from './fixtures/crf-cases.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const GENERATED = join(ROOT, 'test', 'fixtures', 'generated');
const PYTHON = '/usr/bin/python3'; // Debian's python3-torch; the first python3 on PATH may lack it

// ---------------------------------------------------------------------------------------------
// Comparisons

function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
  floor = 1,
): void {
  const problem = closeMismatch(actual, expected, tol, what, floor);
  if (problem) expect.fail(problem);
}

/**
 * Decoded paths against enumeration: the same number of paths, the same scores in order, each
 * path scoring what it claims, all distinct; paths must match exactly where scores are not
 * within float32 rounding of a neighbour (ties may come out in either order).
 */
function expectDecodeMatches(
  c: Case,
  got: { paths: number[][][]; scores: number[][] },
  want: { paths: number[][][]; scores: number[][] },
  tol: number,
): void {
  for (let b = 0; b < c.B; b++) {
    expect(got.paths[b].length, `sequence ${b}: number of paths`).toBe(want.paths[b].length);
    expectClose(got.scores[b], want.scores[b], tol, `sequence ${b} scores`);
    const seen = new Set<string>();
    got.paths[b].forEach((path, n) => {
      expect(path.length).toBe(c.lengths[b]);
      expect(isAllowed(c, path), `sequence ${b} path ${n} allowed`).toBe(true);
      expectClose([pathScore(c, b, path)], [got.scores[b][n]], tol, `sequence ${b} path ${n}`);
      seen.add(path.join(','));
      const s = want.scores[b];
      const isolated =
        (n === 0 || s[n - 1] - s[n] > 1e-3 * Math.max(1, Math.abs(s[n]))) &&
        (n === s.length - 1 || s[n] - s[n + 1] > 1e-3 * Math.max(1, Math.abs(s[n])));
      if (isolated) expect(path, `sequence ${b} path ${n}`).toEqual(want.paths[b][n]);
    });
    expect(seen.size, `sequence ${b}: distinct paths`).toBe(got.paths[b].length);
  }
}

function decodeNBest(c: Case, nBest: number, constrained: boolean) {
  return nativeDecode(c, { nBest, ...(constrained ? constraintsOf(c) : {}) });
}

// ---------------------------------------------------------------------------------------------

describe('crf against brute-force enumeration', () => {
  it.each(SMALL.map((o, i) => [i, o] as const))('case %i: NLL and all four gradients', (i, o) => {
    const c = randomCase(100 + i, o);
    for (const reduction of REDUCTIONS) {
      const want = bruteNll(c, reduction);
      const got = nativeNll(c, reduction);
      expectClose(got.nll, want.nll, 2e-5, `${reduction} nll`);
      expectClose(got.gradEmissions, want.grad.emissions, 2e-5, `${reduction} d/emissions`);
      expectClose(got.gradTransitions, want.grad.transitions, 2e-5, `${reduction} d/transitions`);
      expectClose(got.gradStart, want.grad.start, 2e-5, `${reduction} d/start`);
      expectClose(got.gradEnd, want.grad.end, 2e-5, `${reduction} d/end`);
    }
  });

  it.each(SMALL.map((o, i) => [i, o] as const))('case %i: Viterbi and n-best', (i, o) => {
    const c = randomCase(100 + i, o);
    const constrained = !!o.constrained;
    // 1, a few, and more than the K^T paths that exist (the rest must come back missing).
    for (const nBest of [1, 3, c.K ** c.T + 2]) {
      const want = bruteDecode(c, nBest, constrained);
      const raw = decodeNBest(c, nBest, constrained);
      expect(raw.tags.length).toBe(c.B * nBest * c.T);
      expect(raw.scores.length).toBe(c.B * nBest);
      for (let b = 0; b < c.B; b++) {
        for (let n = 0; n < nBest; n++) {
          const missing = n >= want.paths[b].length;
          expect(raw.scores[b * nBest + n] === -Infinity, `b ${b} n ${n} missing`).toBe(missing);
          for (let t = 0; t < c.T; t++) {
            const y = raw.tags[(b * nBest + n) * c.T + t];
            if (missing || t >= c.lengths[b]) expect(y).toBe(-1);
            else expect(y >= 0 && y < c.K).toBe(true);
          }
        }
      }
      const got = decode({
        ...inputOf(c),
        nBest,
        constraints: constrained ? constraintsOf(c) : undefined,
      });
      expectDecodeMatches(c, got, want, 2e-5);
    }
  });

  it.each(SMALL.map((o, i) => [i, o] as const))('case %i: posterior marginals', (i, o) => {
    const c = randomCase(100 + i, o);
    const constrained = !!o.constrained;
    const want = bruteMarginals(c, constrained);
    const raw = nativeMarginals(c, constrained ? constraintsOf(c) : {});
    expectClose(raw, want, 2e-5, 'marginals');
    const rows = marginals({
      ...inputOf(c),
      constraints: constrained ? constraintsOf(c) : undefined,
    });
    rows.forEach((seq, b) => {
      expect(seq.length).toBe(c.lengths[b]);
      const hasPath = enumerate(c, b, constrained).paths.length > 0;
      for (const row of seq) {
        const total = row.reduce((s, p) => s + p, 0);
        expect(total).toBeCloseTo(hasPath ? 1 : 0, 5);
      }
    });
  });

  it('handles extreme scores exactly (the kernels’ underflow fallbacks)', () => {
    for (let seed = 0; seed < 6; seed++) {
      const c = randomCase(900 + seed, {
        B: 4,
        T: 5,
        K: 4,
        scale: 60,
        constrained: seed % 2 === 1,
      });
      const want = bruteNll(c, 'none');
      const got = nll({ ...inputOf(c), tags: c.tags, reduction: 'none' });
      // float32 scores of several hundred: errors of a few ulp of the largest term.
      expectClose(got.losses!, want.nll, 2e-6, 'nll', 500);
      expectClose(got.grad.emissions, want.grad.emissions, 1e-4, 'd/emissions');
      expectClose(got.grad.transitions, want.grad.transitions, 1e-4, 'd/transitions');
      expectClose(got.grad.start, want.grad.start, 1e-4, 'd/start');
      expectClose(got.grad.end, want.grad.end, 1e-4, 'd/end');
      const constrained = seed % 2 === 1;
      const m = nativeMarginals(c, constrained ? constraintsOf(c) : {});
      expectClose(m, bruteMarginals(c, constrained), 1e-4, 'marginals');
    }
  });

  it('handles tags that nothing may precede or follow', () => {
    const c = randomCase(31, { B: 5, T: 5, K: 4 });
    // Tag 1 has no allowed predecessor (column of false), tag 2 no allowed successor.
    c.allowed = Uint8Array.from({ length: 16 }, (_, x) => {
      const i = Math.floor(x / 4);
      const j = x % 4;
      return j === 1 || i === 2 ? 0 : 1;
    });
    c.allowedStart = Uint8Array.of(1, 1, 0, 1);
    c.allowedEnd = Uint8Array.of(1, 1, 1, 0);
    expectClose(nativeMarginals(c, constraintsOf(c)), bruteMarginals(c, true), 2e-5, 'marginals');
    expectDecodeMatches(
      c,
      decode({ ...inputOf(c), nBest: 4, constraints: constraintsOf(c) }),
      bruteDecode(c, 4, true),
      2e-5,
    );
  });

  it('reports sequences without any allowed path as missing, with zero marginals', () => {
    const c = randomCase(5, { B: 3, T: 4, K: 3 });
    const constraints = { allowedStart: [false, false, false] };
    const got = decode({ ...inputOf(c), nBest: 2, constraints });
    expect(got.paths).toEqual([[], [[]], []]); // the length-0 sequence keeps its empty path
    expect(got.scores).toEqual([[], [0], []]);
    const m = marginals({ ...inputOf(c), constraints });
    expect(m.flat(2).every((p) => p === 0)).toBe(true);
  });

  it('orders equal scores deterministically', () => {
    const c = randomCase(3, { B: 2, T: 3, K: 3 });
    c.emissions.fill(0);
    c.transitions.fill(0);
    c.start.fill(0);
    c.end.fill(0);
    const first = decode({ ...inputOf(c), nBest: 5 });
    expect(first.scores[0]).toEqual([0, 0, 0, 0, 0]);
    expect(new Set(first.paths[0].map((p) => p.join())).size).toBe(5);
    for (let i = 0; i < 3; i++) expect(decode({ ...inputOf(c), nBest: 5 })).toEqual(first);
  });
});

describe('crf BIO constraints', () => {
  const labels = ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC'];
  const K = labels.length;
  const type = (l: string) => l.slice(2);
  // Built here by the caller, as the spec asks: no O → I-X, no B-X/I-X → I-Y, no start with I-.
  const allowed = labels.map((from) =>
    labels.map((to) => !to.startsWith('I-') || (from !== 'O' && type(from) === type(to))),
  );
  const allowedStart = labels.map((l) => !l.startsWith('I-'));

  function valid(path: number[]): boolean {
    return path.every((y, t) => (t === 0 ? allowedStart[y] : allowed[path[t - 1]][y]));
  }

  it('never decodes an invalid BIO sequence, even when the emissions favour one', () => {
    const c = randomCase(77, { B: 8, T: 6, K, scale: 2 });
    // Push the I- tags up so that the unconstrained decoder produces invalid sequences.
    for (let i = 0; i < c.emissions.length; i++)
      if (i % K === 2 || i % K === 4) c.emissions[i] += 3;
    const free = decode({ ...inputOf(c), nBest: 3 });
    expect(free.paths.flat().some((p) => !valid(p))).toBe(true);
    const constrained = decode({ ...inputOf(c), nBest: 3, constraints: { allowed, allowedStart } });
    for (const p of constrained.paths.flat()) expect(valid(p), p.join()).toBe(true);
    c.allowed = Uint8Array.from(allowed.flat(), Number);
    c.allowedStart = Uint8Array.from(allowedStart, Number);
    expectDecodeMatches(c, constrained, bruteDecode(c, 3, true), 2e-5);
  });
});

describe('crf on long sequences (scaled forward–backward)', () => {
  // Log scores grow by ~15 per position here (a bias of 12 on every emission, as a confident
  // encoder's logits have), to ~3e5 at 20 000 positions, where a float32 total keeps only ~0.03:
  // running float32 totals gave marginals off by 5e-3 at 800 positions, above 1 from a few
  // thousand (2e3 at 16 000), NLL errors of 1e-4 and Viterbi paths 0.4-0.9 below the optimum.
  const K = LONG_K;
  const LENGTHS = LONG_LENGTHS;
  const T = LENGTHS[0];

  /**
   * Textbook forward–backward and Viterbi in float64 without any scaling, for sequence b:
   * float64 holds scores of 3e5 to ~1e-10, so this is exact to far below what is checked.
   * The gradient of the NLL w.r.t. transitions comes as expected minus gold transition counts.
   */
  function reference64(c: Case, b: number, constrained: boolean) {
    const L = c.lengths[b];
    const ninf = (ok: Uint8Array | undefined, x: number, v: number) =>
      constrained && ok && !ok[x] ? -Infinity : v;
    const tr = Float64Array.from(c.transitions, (v, x) => ninf(c.allowed, x, v));
    const st = Float64Array.from(c.start, (v, k) => ninf(c.allowedStart, k, v));
    const en = Float64Array.from(c.end, (v, k) => ninf(c.allowedEnd, k, v));
    const e = (t: number, k: number) => at(c, b, t, k);
    const lse = (xs: Float64Array) => logSumExp(Array.from(xs));
    const alpha = new Float64Array(L * K);
    const terms = new Float64Array(K);
    for (let k = 0; k < K; k++) alpha[k] = st[k] + e(0, k);
    for (let t = 1; t < L; t++) {
      for (let j = 0; j < K; j++) {
        for (let i = 0; i < K; i++) terms[i] = alpha[(t - 1) * K + i] + tr[i * K + j];
        alpha[t * K + j] = lse(terms) + e(t, j);
      }
    }
    for (let k = 0; k < K; k++) terms[k] = alpha[(L - 1) * K + k] + en[k];
    const logZ = lse(terms);
    const marginals = new Float64Array(L * K);
    const gradTransitions = new Float64Array(K * K);
    let beta = Float64Array.from(en);
    for (let t = L - 1; t >= 0; t--) {
      for (let k = 0; k < K; k++) {
        marginals[t * K + k] = Math.exp(alpha[t * K + k] + beta[k] - logZ);
      }
      if (t === 0) break;
      const next = new Float64Array(K);
      for (let i = 0; i < K; i++) {
        for (let j = 0; j < K; j++) {
          const x = tr[i * K + j] + e(t, j) + beta[j];
          terms[j] = x;
          gradTransitions[i * K + j] += Math.exp(alpha[(t - 1) * K + i] + x - logZ);
        }
        next[i] = lse(terms);
      }
      beta = next;
    }
    const gold = c.tags.subarray(b * T, b * T + L);
    let score = st[gold[0]] + e(0, gold[0]) + en[gold[L - 1]];
    for (let t = 1; t < L; t++) {
      score += tr[gold[t - 1] * K + gold[t]] + e(t, gold[t]);
      gradTransitions[gold[t - 1] * K + gold[t]] -= 1;
    }
    let v = Float64Array.from({ length: K }, (_, k) => st[k] + e(0, k));
    for (let t = 1; t < L; t++) {
      v = Float64Array.from({ length: K }, (_, j) => {
        let best = -Infinity;
        for (let i = 0; i < K; i++) best = Math.max(best, v[i] + tr[i * K + j]);
        return best + e(t, j);
      });
    }
    const viterbi = Math.max(...v.map((x, k) => x + en[k]));
    return { marginals, nll: logZ - score, gradTransitions, viterbi };
  }

  /** A path's score in float64 (the inputs are float32, so this is exact to ~1e-10). */
  function score64(c: Case, b: number, path: readonly number[]): number {
    return pathScore(c, b, path);
  }

  type LongCase = { c: Case; constrained: boolean; refs: ReturnType<typeof reference64>[] };
  const cases: LongCase[] = [];
  beforeAll(() => {
    for (const constrained of [false, true]) {
      const c = longCase(constrained ? 4242 : 2121, constrained);
      cases.push({ c, constrained, refs: LENGTHS.map((_, b) => reference64(c, b, constrained)) });
    }
  });

  it.each([0, 1])('marginals are probabilities equal to float64 (case %i)', (i) => {
    const { c, constrained, refs } = cases[i];
    const m = nativeMarginals(c, constrained ? constraintsOf(c) : {});
    LENGTHS.forEach((L, b) => {
      let worst = 0;
      for (let t = 0; t < T; t++) {
        let total = 0;
        for (let k = 0; k < K; k++) {
          const p = m[(b * T + t) * K + k];
          total += p;
          if (t >= L) {
            if (p !== 0) expect.fail(`length ${L}: marginal beyond the length at ${t}, ${k}: ${p}`);
            continue;
          }
          if (!(p >= 0 && p <= 1)) expect.fail(`length ${L}: marginal (${t}, ${k}) = ${p}`);
          worst = Math.max(worst, Math.abs(p - refs[b].marginals[t * K + k]));
        }
        if (t < L && !(Math.abs(total - 1) <= 1e-5)) {
          expect.fail(`length ${L}: marginals at ${t} sum to ${total}`);
        }
      }
      expect(worst, `length ${L}: largest difference from float64`).toBeLessThanOrEqual(1e-4);
    });
  });

  it.each([0, 1])('NLL and gradients match float64 (case %i)', (i) => {
    const { c, refs } = cases[i];
    // Nll takes no constraints: case 1 is the same CRF as case 0 on other inputs.
    const unconstrained = i === 0 ? refs : LENGTHS.map((_, b) => reference64(c, b, false));
    const got = nll({ ...inputOf(c), tags: c.tags, reduction: 'none' });
    LENGTHS.forEach((L, b) => {
      const want = unconstrained[b];
      const rel = Math.abs(got.losses![b] - want.nll) / Math.abs(want.nll);
      expect(rel, `length ${L}: NLL ${got.losses![b]} vs ${want.nll}`).toBeLessThanOrEqual(1e-6);
      for (let t = 0; t < L; t++) {
        for (let k = 0; k < K; k++) {
          const g = got.grad.emissions[(b * T + t) * K + k];
          const p = want.marginals[t * K + k] - (c.tags[b * T + t] === k ? 1 : 0);
          if (!(Math.abs(g - p) <= 1e-4)) {
            expect.fail(`length ${L}: d/emissions (${t}, ${k}) = ${g}, expected ${p}`);
          }
        }
      }
    });
    // Summed over the batch; float32 sums of ~25 000 terms per entry.
    const gradTransitions = new Float64Array(K * K);
    for (const r of unconstrained) r.gradTransitions.forEach((g, x) => (gradTransitions[x] += g));
    expectClose(got.grad.transitions, gradTransitions, 2e-4, 'd/transitions');
  });

  it.each([0, 1])('Viterbi finds the float64 optimum (case %i)', (i) => {
    const { c, constrained, refs } = cases[i];
    const got = decode({ ...inputOf(c), constraints: constrained ? constraintsOf(c) : undefined });
    LENGTHS.forEach((L, b) => {
      const best = refs[b].viterbi;
      const path = got.paths[b][0];
      expect(path.length).toBe(L);
      if (constrained) expect(isAllowed(c, path), `length ${L}: path allowed`).toBe(true);
      // Optimal up to float32 rounding of one step's scores; running float32 totals lost ~0.7.
      expect(best - score64(c, b, path), `length ${L}: optimality gap`).toBeLessThanOrEqual(1e-3);
      // The reported score is float32: within its rounding (3e-8 relative), not the 1e-5 drift.
      expect(Math.abs(got.scores[b][0] - best) / Math.abs(best)).toBeLessThanOrEqual(1e-7);
    });
  });
});

describe('crf gradcheck (float64, finite differences)', () => {
  it.each(REDUCTIONS)('%s', (reduction) => {
    for (const [seed, batch, time, tags] of [
      [1, 4, 5, 3],
      [2, 5, 3, 4],
      [3, 3, 1, 2],
    ]) {
      const r = native().testing.crfGradcheck({ batch, time, tags, seed, reduction });
      expect(r.analytic.length).toBe(batch * time * tags + tags * tags + 2 * tags);
      expectClose(r.analytic, r.numeric, 1e-6, `${reduction} seed ${seed}`);
    }
  });

  it('returns float16 and bfloat16 gradients for float16 and bfloat16 emissions', () => {
    expect(native().testing.crfGradcheck({}).gradDtypes).toEqual({
      float16: 'Half',
      bfloat16: 'BFloat16',
    });
  });
});

describe('crf with float16 / bfloat16 emissions on the CPU', () => {
  // Emissions on a 1/64 grid are exact in both formats: any difference from float32 would come
  // from computing in half precision, which must not happen.
  const c = randomCase(2024, { B: 6, T: 9, K: 7, halfExact: true });
  const base = { ...inputOf(c), tags: c.tags, reduction: 'sum' as const };
  const ref = nll(base);

  it.each(['float16', 'bfloat16'] as const)('%s computes in float32', (dtype) => {
    const got = nll({ ...base, dtype });
    expect(Math.abs(got.loss - ref.loss)).toBeLessThanOrEqual(1e-6 * Math.abs(ref.loss));
    expectClose(got.grad.transitions, ref.grad.transitions, 1e-6, 'd/transitions');
    expectClose(got.grad.start, ref.grad.start, 1e-6, 'd/start');
    expectClose(got.grad.end, ref.grad.end, 1e-6, 'd/end');
    // Emission gradients come back in the emissions' dtype: rounded to 11 or 8 bits.
    const tol = dtype === 'float16' ? 1e-3 : 8e-3;
    for (let i = 0; i < ref.grad.emissions.length; i++) {
      expect(Math.abs(got.grad.emissions[i] - ref.grad.emissions[i])).toBeLessThanOrEqual(
        tol * Math.max(Math.abs(ref.grad.emissions[i]), 1e-2),
      );
    }
    expect(decode({ ...inputOf(c), dtype, nBest: 4 })).toEqual(decode({ ...inputOf(c), nBest: 4 }));
    expectClose(
      marginals({ ...inputOf(c), dtype }).flat(2),
      marginals(inputOf(c)).flat(2),
      1e-6,
      'marginals',
    );
  });
});

describe('crf against an independent PyTorch CRF', () => {
  interface Reference {
    nll: number[];
    gradEmissions: number[];
    gradTransitions: number[];
    gradStart: number[];
    gradEnd: number[];
  }
  interface PyCase {
    shape: [number, number, number];
    emissions: number[];
    transitions: number[];
    start: number[];
    end: number[];
    lengths: number[];
    tags: number[];
    allowed?: number[];
    allowedStart?: number[];
    allowedEnd?: number[];
    reference: Record<CrfReduction, Reference> & {
      viterbi: { paths: number[][]; scores: (number | null)[] };
      marginals: number[];
    };
  }
  let cases: PyCase[] = [];
  let skip = '';

  beforeAll(() => {
    if (!existsSync(PYTHON)) {
      skip = `${PYTHON} is missing`;
      return;
    }
    mkdirSync(GENERATED, { recursive: true });
    const out = join(GENERATED, 'crf_reference.json');
    const script = join(ROOT, 'scripts', 'fixtures', 'crf_reference.py');
    const r = spawnSync(PYTHON, [script, 'fixtures', out], { encoding: 'utf8', timeout: 300_000 });
    if (r.status === 3) {
      skip = r.stderr.trim();
      return;
    }
    if (r.status !== 0) throw new Error(`crf_reference.py failed: ${r.stderr}`);
    cases = (JSON.parse(readFileSync(out, 'utf8')) as { cases: PyCase[] }).cases;
  });

  it('agrees on NLL, gradients, Viterbi and marginals', (ctx) => {
    if (skip) ctx.skip(skip);
    expect(cases.length).toBeGreaterThan(0);
    for (const [i, p] of cases.entries()) {
      const [B, T, K] = p.shape;
      const c: Case = {
        B,
        T,
        K,
        emissions: Float32Array.from(p.emissions),
        transitions: Float32Array.from(p.transitions),
        start: Float32Array.from(p.start),
        end: Float32Array.from(p.end),
        lengths: Int32Array.from(p.lengths),
        tags: Int32Array.from(p.tags),
        ...(p.allowed
          ? {
              allowed: Uint8Array.from(p.allowed),
              allowedStart: Uint8Array.from(p.allowedStart!),
              allowedEnd: Uint8Array.from(p.allowedEnd!),
            }
          : {}),
      };
      // Scores grow with the scale of the inputs (one case is scaled by 30).
      const scale = Math.max(...p.emissions.map(Math.abs));
      const tol = scale > 20 ? 2e-4 : 5e-5;
      for (const reduction of REDUCTIONS) {
        const want = p.reference[reduction];
        const got = nativeNll(c, reduction);
        const what = `case ${i} ${reduction}`;
        expectClose(got.nll, want.nll, tol, `${what} nll`);
        expectClose(got.gradEmissions, want.gradEmissions, tol, `${what} d/emissions`);
        expectClose(got.gradTransitions, want.gradTransitions, tol, `${what} d/transitions`);
        expectClose(got.gradStart, want.gradStart, tol, `${what} d/start`);
        expectClose(got.gradEnd, want.gradEnd, tol, `${what} d/end`);
      }
      const constraints = p.allowed ? constraintsOf(c) : undefined;
      const got = decode({ ...inputOf(c), constraints });
      const v = p.reference.viterbi;
      for (let b = 0; b < B; b++) {
        const score = v.scores[b];
        if (score === null) {
          expect(got.paths[b], `case ${i} sequence ${b}: no allowed path`).toEqual([]);
          continue;
        }
        expectClose(got.scores[b], [score], tol, `case ${i} sequence ${b} score`);
        expect(got.paths[b][0], `case ${i} sequence ${b} path`).toEqual(v.paths[b]);
      }
      const m = nativeMarginals(c, constraints ?? {});
      expectClose(m, p.reference.marginals, tol, `case ${i} marginals`);
    }
  });
});

describe('crf input validation', () => {
  const c = randomCase(11, { B: 2, T: 3, K: 4 });
  const good = { ...inputOf(c), tags: c.tags };

  it.each([
    [
      'emissions length',
      { emissions: new Float32Array(5) },
      /emissions: shape \[B, T, K\] = \[2, 3, 4\] needs 24 values, got 5/,
    ],
    [
      'emissions type',
      { emissions: new Float64Array(24) },
      /emissions: expected a Float32Array, got a Float64Array/,
    ],
    [
      'non-finite emission',
      { emissions: Float32Array.from(c.emissions).fill(NaN, 3, 4) },
      /emissions\[3\] = NaN is not finite/,
    ],
    [
      'transitions shape',
      { transitions: new Float32Array(12) },
      /transitions: shape \[K, K\] = \[4, 4\] needs 16 values, got 12/,
    ],
    [
      'transitions type',
      { transitions: new Int32Array(16) },
      /transitions: expected a Float32Array, got a Int32Array/,
    ],
    [
      'start shape',
      { start: new Float32Array(3) },
      /start: shape \[K\] = \[4\] needs 4 values, got 3/,
    ],
    [
      'infinite end',
      { end: Float32Array.of(0, Infinity, 0, 0) },
      /end\[1\] = Infinity is not finite/,
    ],
    ['shape', { shape: [2, 3] }, /shape: expected \[B, T, K\]/],
    [
      'zero tags',
      { shape: [2, 3, 0], emissions: new Float32Array(0) },
      /shape: K \(the number of tags\) must be at least 1/,
    ],
    ['lengths > T', { lengths: [3, 4] }, /lengths\[1\] = 4 is outside \[0, T\] for T = 3/],
    ['negative length', { lengths: Int32Array.of(-1, 2) }, /lengths\[0\] = -1 is outside/],
    ['lengths count', { lengths: [3] }, /lengths: expected 2 values, got 1/],
    [
      'lengths type',
      { lengths: new Float32Array(2) },
      /lengths: expected an Int32Array or an array of integers/,
    ],
    [
      'tag >= K',
      { tags: Int32Array.of(0, 1, 4, 0, 0, 0) },
      /tags\[2\] \(sequence 0, position 2\) = 4 is outside \[0, 4\)/,
    ],
    [
      'negative tag',
      { tags: [0, -1, 0, 0, 0, 0] },
      /tags\[1\] \(sequence 0, position 1\) = -1 is outside/,
    ],
    ['tags count', { tags: new Int32Array(5) }, /tags: expected 6 values, got 5/],
    [
      'tags type',
      { tags: new Uint8Array(6) },
      /tags: expected an Int32Array or an array of integers/,
    ],
    [
      'reduction',
      { reduction: 'avg' },
      /reduction: expected one of 'sum', 'mean', 'none', 'token_mean', got 'avg'/,
    ],
    ['device', { device: 'gpu' }, /device: expected 'cpu', 'cuda' or 'cuda:N', got 'gpu'/],
    ['dtype', { dtype: 'int8' }, /dtype: expected one of/],
  ])('nll rejects a bad %s', (_name, patch, message) => {
    expect(() => nll({ ...good, ...(patch as object) })).toThrow(message);
  });

  it('ignores tags beyond each length', () => {
    const tags = Int32Array.from(c.tags);
    const lengths = [3, 1];
    tags[4] = 99;
    tags[5] = -7;
    expect(() => nll({ ...good, tags, lengths })).not.toThrow();
  });

  it.each([
    ['nBest 0', { nBest: 0 }, /nBest: expected an integer from 1 to 65536, got 0/],
    ['nBest 1.5', { nBest: 1.5 }, /nBest: expected an integer/],
    [
      'allowed shape',
      { constraints: { allowed: new Uint8Array(15) } },
      /allowed: shape \[K, K\] = \[4, 4\] needs 16 values, got 15/,
    ],
    [
      'allowed rows',
      { constraints: { allowed: [[true, false]] } },
      /allowed: expected 4 rows of 4 booleans/,
    ],
    [
      'allowedStart values',
      { constraints: { allowedStart: [true, 'no', true, true] } },
      /allowedStart\[1\]: expected a boolean/,
    ],
    [
      'allowedEnd type',
      { constraints: { allowedEnd: new Float32Array(4) } },
      /allowedEnd: expected a Uint8Array or an array of booleans/,
    ],
  ])('decode rejects a bad %s', (_name, patch, message) => {
    expect(() => decode({ ...inputOf(c), ...(patch as object) })).toThrow(message);
  });

  it('the native functions name the bad argument too', () => {
    const a = native();
    type Args = [
      Float32Array,
      number[],
      Int32Array,
      Int32Array,
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    const args: Args = [c.emissions, [2, 3, 4], c.tags, c.lengths, c.transitions, c.start, c.end];
    expect(() =>
      a.crfNll(args[0], [2, 3, 5], c.tags, c.lengths, c.transitions, c.start, c.end, 'sum'),
    ).toThrow(/emissions: shape \[2, 3, 5\] needs 30 values, got 24/);
    expect(() => a.crfNll(...args, 'avg' as 'sum')).toThrow(/reduction: expected/);
    expect(() =>
      a.crfNll(
        args[0],
        args[1],
        Int32Array.of(0, 0, 9, 0, 0, 0),
        c.lengths,
        c.transitions,
        c.start,
        c.end,
        'sum',
      ),
    ).toThrow(/crf: tags\[0\]\[2\] = 9 is outside \[0, K\) for K = 4/);
    expect(() =>
      a.crfNll(args[0], args[1], c.tags, Int32Array.of(3, 5), c.transitions, c.start, c.end, 'sum'),
    ).toThrow(/lengths\[1\] = 5 is outside \[0, T\] for T = 3/);
    expect(() =>
      a.crfDecode(
        c.emissions,
        [2, 3, 4],
        new Float32Array(2) as unknown as Int32Array,
        c.transitions,
        c.start,
        c.end,
      ),
    ).toThrow(/lengths: expected a Int32Array/);
    expect(() =>
      a.crfDecode(c.emissions, [2, 3, 4], c.lengths, c.transitions, c.start, c.end, {
        allowed: new Uint8Array(3),
      }),
    ).toThrow(/allowed: shape \[4, 4\] needs 16 values, got 3/);
    expect(() =>
      a.crfMarginals(
        c.emissions,
        [2, 3, 4],
        c.lengths,
        c.transitions,
        c.start,
        new Float32Array(4).subarray(1),
        {},
      ),
    ).toThrow(/end: shape \[4\] needs 4 values, got 3/);
    expect(() =>
      a.crfDecode(c.emissions, [2, 3, 4], c.lengths, c.transitions, c.start, c.end, { nBest: 0 }),
    ).toThrow(/nBest: expected an integer from 1/);
  });

  it('asks for a CUDA build when given a CUDA device on a CPU-only build', (ctx) => {
    if (native().compiledWithCuda()) ctx.skip('this build has CUDA');
    expect(() => decode({ ...inputOf(c), device: 'cuda' })).toThrow(/built without CUDA/);
    expect(() => nll({ ...good, device: 'cuda:1' })).toThrow(/built without CUDA/);
  });
});
