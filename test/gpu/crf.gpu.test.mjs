// The CRF's CUDA kernels, run by scripts/gpu-test.sh on a CUDA machine (node:test: no npm
// packages there). Brute-force enumeration on small cases with the emissions on `cuda`, then
// CPU-vs-CUDA agreement on larger random batches in every emissions dtype. The brute force is
// a plain-JS twin of test/crf.test.ts's (this file cannot import TypeScript).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { decode, marginals, nll } from '../../dist/crf/index.js';
import { native } from '../../dist/native.js';
import { Rng } from '../../dist/train/rng.js';

const REDUCTIONS = ['sum', 'mean', 'none', 'token_mean'];

function seededFloats(seed) {
  const rng = Rng.fromSeed(seed);
  return () => rng.nextFloat();
}

function randomCase(seed, { B, T, K, scale = 1, constrained = false }) {
  const rand = seededFloats(seed);
  const normal = () =>
    Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()) * scale;
  const floats = (n) => Float32Array.from({ length: n }, normal);
  const lengths = Int32Array.from({ length: B }, () => Math.floor(rand() * (T + 1)));
  if (B > 0) lengths[0] = T;
  if (B > 1) lengths[1] = 0;
  if (B > 2) lengths[2] = Math.min(1, T);
  const c = {
    B,
    T,
    K,
    emissions: floats(B * T * K),
    transitions: floats(K * K),
    start: floats(K),
    end: floats(K),
    lengths,
    tags: Int32Array.from({ length: B * T }, () => Math.floor(rand() * K)),
  };
  if (constrained) {
    c.allowed = Uint8Array.from({ length: K * K }, () => (rand() < 0.6 ? 1 : 0));
    c.allowedStart = Uint8Array.from({ length: K }, () => (rand() < 0.7 ? 1 : 0));
    c.allowedEnd = Uint8Array.from({ length: K }, () => (rand() < 0.7 ? 1 : 0));
  }
  return c;
}

const emissionAt = (c, b, t, k) => c.emissions[(b * c.T + t) * c.K + k];

function pathScore(c, b, path) {
  if (path.length === 0) return 0;
  let s = c.start[path[0]] + emissionAt(c, b, 0, path[0]);
  for (let t = 1; t < path.length; t++) {
    s += c.transitions[path[t - 1] * c.K + path[t]] + emissionAt(c, b, t, path[t]);
  }
  return s + c.end[path[path.length - 1]];
}

function isAllowed(c, path) {
  if (path.length === 0) return true;
  if (c.allowedStart && !c.allowedStart[path[0]]) return false;
  if (c.allowedEnd && !c.allowedEnd[path[path.length - 1]]) return false;
  for (let t = 1; t < path.length; t++) {
    if (c.allowed && !c.allowed[path[t - 1] * c.K + path[t]]) return false;
  }
  return true;
}

function enumerate(c, b, constrained) {
  const paths = [];
  const scores = [];
  const L = c.lengths[b];
  for (let x = 0; x < c.K ** L; x++) {
    const path = [];
    for (let t = 0, y = x; t < L; t++, y = Math.floor(y / c.K)) path.push(y % c.K);
    if (constrained && !isAllowed(c, path)) continue;
    paths.push(path);
    scores.push(pathScore(c, b, path));
  }
  return { paths, scores };
}

function logSumExp(xs) {
  const m = Math.max(...xs);
  if (m === -Infinity) return -Infinity;
  return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0));
}

function bruteNll(c, reduction) {
  const { B, T, K } = c;
  const tokens = c.lengths.reduce((s, n) => s + n, 0);
  const w = reduction === 'mean' ? 1 / B : reduction === 'token_mean' ? 1 / Math.max(tokens, 1) : 1;
  const losses = [];
  const grad = {
    emissions: new Float64Array(B * T * K),
    transitions: new Float64Array(K * K),
    start: new Float64Array(K),
    end: new Float64Array(K),
  };
  for (let b = 0; b < B; b++) {
    const L = c.lengths[b];
    if (L === 0) {
      losses.push(0);
      continue;
    }
    const { paths, scores } = enumerate(c, b, false);
    const logZ = logSumExp(scores);
    const gold = Array.from(c.tags.subarray(b * T, b * T + L));
    losses.push(logZ - pathScore(c, b, gold));
    const add = (path, p) => {
      grad.start[path[0]] += w * p;
      grad.end[path[L - 1]] += w * p;
      path.forEach((y, t) => {
        grad.emissions[(b * T + t) * K + y] += w * p;
        if (t > 0) grad.transitions[path[t - 1] * K + y] += w * p;
      });
    };
    paths.forEach((path, i) => add(path, Math.exp(scores[i] - logZ)));
    add(gold, -1);
  }
  const sum = losses.reduce((s, x) => s + x, 0);
  return { nll: reduction === 'none' ? losses : [sum * w], grad };
}

function bruteMarginals(c, constrained) {
  const out = new Float64Array(c.B * c.T * c.K);
  for (let b = 0; b < c.B; b++) {
    const { paths, scores } = enumerate(c, b, constrained);
    const logZ = paths.length ? logSumExp(scores) : -Infinity;
    if (logZ === -Infinity) continue;
    paths.forEach((path, i) => {
      const p = Math.exp(scores[i] - logZ);
      path.forEach((k, t) => (out[(b * c.T + t) * c.K + k] += p));
    });
  }
  return out;
}

function bruteDecode(c, nBest, constrained) {
  const scores = [];
  for (let b = 0; b < c.B; b++) {
    const all = enumerate(c, b, constrained);
    scores.push(all.scores.sort((x, y) => y - x).slice(0, nBest));
  }
  return scores;
}

function assertClose(actual, expected, tol, what) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (!Number.isFinite(e)) {
      assert.equal(a, e, `${what}[${i}]`);
      continue;
    }
    assert.ok(
      Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)),
      `${what}[${i}]: got ${a}, expected ${e} (tolerance ${tol})`,
    );
  }
}

const inputOf = (c, device) => ({
  emissions: c.emissions,
  shape: [c.B, c.T, c.K],
  lengths: c.lengths,
  transitions: c.transitions,
  start: c.start,
  end: c.end,
  device,
});
const constraintsOf = (c) =>
  c.allowed ? { allowed: c.allowed, allowedStart: c.allowedStart, allowedEnd: c.allowedEnd } : {};

test('the addon runs the CRF on CUDA', () => {
  assert.equal(native().compiledWithCuda(), true, 'built against a CUDA LibTorch');
  assert.equal(native().cudaAvailable(), true);
});

describe('CUDA CRF against brute-force enumeration', () => {
  const cases = [];
  const rand = seededFloats(7);
  for (let i = 0; i < 16; i++) {
    cases.push({
      B: 3 + Math.floor(rand() * 4),
      T: 1 + Math.floor(rand() * 6),
      K: 1 + Math.floor(rand() * 5),
      constrained: i % 2 === 1,
    });
  }
  cases.push(
    { B: 4, T: 6, K: 5 },
    { B: 4, T: 5, K: 4, scale: 60 },
    { B: 4, T: 5, K: 4, scale: 60, constrained: true },
  );

  for (const [i, o] of cases.entries()) {
    test(`case ${i} (B=${o.B} T=${o.T} K=${o.K}${o.constrained ? ' constrained' : ''}${o.scale ? ' x' + o.scale : ''})`, () => {
      const c = randomCase(100 + i, o);
      const tol = o.scale ? 3e-4 : 2e-5;
      for (const reduction of REDUCTIONS) {
        const want = bruteNll(c, reduction);
        const got = native().crfNll(
          c.emissions,
          [c.B, c.T, c.K],
          c.tags,
          c.lengths,
          c.transitions,
          c.start,
          c.end,
          reduction,
          { device: 'cuda' },
        );
        assertClose(got.nll, want.nll, o.scale ? 2e-6 * 500 : tol, `${reduction} nll`);
        assertClose(got.gradEmissions, want.grad.emissions, tol, `${reduction} d/emissions`);
        assertClose(got.gradTransitions, want.grad.transitions, tol, `${reduction} d/transitions`);
        assertClose(got.gradStart, want.grad.start, tol, `${reduction} d/start`);
        assertClose(got.gradEnd, want.grad.end, tol, `${reduction} d/end`);
      }
      const constrained = !!o.constrained;
      for (const nBest of [1, 3, c.K ** c.T + 2]) {
        const got = decode({ ...inputOf(c, 'cuda'), nBest, constraints: constraintsOf(c) });
        const want = bruteDecode(c, nBest, constrained);
        for (let b = 0; b < c.B; b++) {
          assertClose(got.scores[b], want[b], tol, `nBest ${nBest} sequence ${b} scores`);
          const seen = new Set();
          got.paths[b].forEach((path, n) => {
            assert.equal(path.length, c.lengths[b]);
            assert.ok(isAllowed(c, path));
            assertClose(
              [pathScore(c, b, path)],
              [got.scores[b][n]],
              tol,
              `sequence ${b} path ${n}`,
            );
            seen.add(path.join());
          });
          assert.equal(seen.size, got.paths[b].length, 'distinct paths');
        }
      }
      const m = native().crfMarginals(
        c.emissions,
        [c.B, c.T, c.K],
        c.lengths,
        c.transitions,
        c.start,
        c.end,
        { device: 'cuda:0', ...constraintsOf(c) },
      );
      assertClose(m, bruteMarginals(c, constrained), o.scale ? 3e-4 : 2e-5, 'marginals');
    });
  }
});

describe('CUDA CRF on long sequences (scaled forward–backward)', () => {
  // As test/crf.test.ts's long-sequence cases (which check the CPU against float64): scores grow
  // by ~15 per position to ~3e5 at 20 000, where float32 running totals broke the marginals
  // (sums far from 1), NLL and Viterbi. Here the kernels must give proper probabilities and
  // agree with the CPU, which runs the same routines with one lane.
  const LENGTHS = [20_000, 4000, 800];
  const K = 21;
  const T = LENGTHS[0];
  const rand = seededFloats(2121);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const B = LENGTHS.length;
  const c = {
    B,
    T,
    K,
    emissions: Float32Array.from({ length: B * T * K }, () => 12 + 2 * normal()),
    transitions: Float32Array.from({ length: K * K }, normal),
    start: Float32Array.from({ length: K }, normal),
    end: Float32Array.from({ length: K }, normal),
    lengths: Int32Array.from(LENGTHS),
    tags: Int32Array.from({ length: B * T }, () => Math.floor(rand() * K)),
  };
  const decodeArgs = [c.emissions, [B, T, K], c.lengths, c.transitions, c.start, c.end];

  test('marginals are probabilities and agree with the CPU', () => {
    const gpu = native().crfMarginals(...decodeArgs, { device: 'cuda' });
    const cpu = native().crfMarginals(...decodeArgs, {});
    LENGTHS.forEach((L, b) => {
      for (let t = 0; t < L; t++) {
        let total = 0;
        for (let k = 0; k < K; k++) {
          const p = gpu[(b * T + t) * K + k];
          assert.ok(p >= 0 && p <= 1, `length ${L}: marginal (${t}, ${k}) = ${p}`);
          total += p;
        }
        assert.ok(Math.abs(total - 1) <= 1e-5, `length ${L}: marginals at ${t} sum to ${total}`);
      }
    });
    assertClose(gpu, cpu, 1e-5, 'marginals');
  });

  test('NLL and gradients agree with the CPU', () => {
    const args = [c.emissions, [B, T, K], c.tags, c.lengths, c.transitions, c.start, c.end];
    const gpu = native().crfNll(...args, 'none', { device: 'cuda' });
    const cpu = native().crfNll(...args, 'none', {});
    // log Z and the path score are each ~3e5; their difference must keep 1e-6 relative.
    assertClose(gpu.nll, cpu.nll, 1e-6, 'nll');
    assertClose(gpu.gradEmissions, cpu.gradEmissions, 1e-5, 'd/emissions');
    assertClose(gpu.gradTransitions, cpu.gradTransitions, 2e-4, 'd/transitions');
    assertClose(gpu.gradStart, cpu.gradStart, 1e-5, 'd/start');
    assertClose(gpu.gradEnd, cpu.gradEnd, 1e-5, 'd/end');
  });

  test('Viterbi paths are as good as the CPU’s', () => {
    for (const nBest of [1, 3]) {
      const gpu = decode({ ...inputOf(c, 'cuda'), nBest });
      const cpu = decode({ ...inputOf(c, 'cpu'), nBest });
      LENGTHS.forEach((L, b) => {
        assert.equal(gpu.paths[b].length, nBest);
        gpu.paths[b].forEach((path, n) => {
          assert.equal(path.length, L);
          // float64 scores of the paths: optimal up to one step's float32 rounding.
          const mine = pathScore(c, b, path);
          const theirs = pathScore(c, b, cpu.paths[b][n]);
          assert.ok(
            Math.abs(mine - theirs) <= 1e-3,
            `length ${L} path ${n}: ${mine} vs the CPU's ${theirs}`,
          );
          assertClose([gpu.scores[b][n]], [mine], 1e-7, `length ${L} path ${n} score`);
        });
      });
    }
  });
});

describe('CUDA agrees with the CPU on larger batches', () => {
  const shapes = [
    { B: 64, T: 48, K: 21 },
    { B: 33, T: 70, K: 45, constrained: true }, // more tags than a warp
    { B: 8, T: 20, K: 130 }, // tables too large for shared memory: read from global
    { B: 17, T: 9, K: 1 },
  ];
  for (const dtype of ['float32', 'float16', 'bfloat16', 'float64']) {
    for (const [i, shape] of shapes.entries()) {
      test(`${dtype} B=${shape.B} T=${shape.T} K=${shape.K}`, () => {
        const c = randomCase(500 + i, { ...shape, scale: 2 });
        const args = [
          c.emissions,
          [c.B, c.T, c.K],
          c.tags,
          c.lengths,
          c.transitions,
          c.start,
          c.end,
        ];
        const tol = dtype === 'float64' ? 1e-9 : 2e-4;
        for (const reduction of REDUCTIONS) {
          const cpu = native().crfNll(...args, reduction, { dtype });
          const gpu = native().crfNll(...args, reduction, { dtype, device: 'cuda' });
          assertClose(gpu.nll, cpu.nll, tol, `${reduction} nll`);
          // Emission gradients come back in the emissions' dtype (half precision rounds them).
          const gtol = dtype === 'float16' ? 2e-3 : dtype === 'bfloat16' ? 1e-2 : tol;
          assertClose(gpu.gradEmissions, cpu.gradEmissions, gtol, `${reduction} d/emissions`);
          assertClose(gpu.gradTransitions, cpu.gradTransitions, tol, `${reduction} d/transitions`);
          assertClose(gpu.gradStart, cpu.gradStart, tol, `${reduction} d/start`);
          assertClose(gpu.gradEnd, cpu.gradEnd, tol, `${reduction} d/end`);
        }
        const decodeArgs = [c.emissions, [c.B, c.T, c.K], c.lengths, c.transitions, c.start, c.end];
        for (const nBest of [1, 4]) {
          const options = { dtype, nBest, ...constraintsOf(c) };
          const cpu = native().crfDecode(...decodeArgs, options);
          const gpu = native().crfDecode(...decodeArgs, { ...options, device: 'cuda' });
          assertClose(gpu.scores, cpu.scores, tol, `nBest ${nBest} scores`);
          // Paths agree except where two scores are within rounding of each other.
          let differing = 0;
          for (let x = 0; x < cpu.tags.length; x++) if (cpu.tags[x] !== gpu.tags[x]) differing++;
          assert.ok(
            differing <= cpu.tags.length * 0.01,
            `nBest ${nBest}: ${differing} tags differ`,
          );
        }
        const cpuM = native().crfMarginals(...decodeArgs, { dtype, ...constraintsOf(c) });
        const gpuM = native().crfMarginals(...decodeArgs, {
          dtype,
          device: 'cuda',
          ...constraintsOf(c),
        });
        assertClose(gpuM, cpuM, dtype === 'float64' ? 1e-9 : 1e-4, 'marginals');
      });
    }
  }

  test('TypeScript API on cuda (timings for B=32, T=64, K=21)', () => {
    const c = randomCase(9, { B: 32, T: 64, K: 21 });
    const time = (f) => {
      for (let i = 0; i < 5; i++) f();
      const start = process.hrtime.bigint();
      for (let i = 0; i < 50; i++) f();
      return Number(process.hrtime.bigint() - start) / 1e6 / 50;
    };
    for (const device of ['cpu', 'cuda']) {
      const input = { ...inputOf(c, device), tags: c.tags };
      const ms = {
        nll: time(() => nll(input)),
        decode: time(() => decode(input)),
        marginals: time(() => marginals(input)),
      };
      console.log(`crf ${device}: ${JSON.stringify(ms)} ms/call (incl. copies)`);
    }
    const cpu = decode({ ...inputOf(c, 'cpu'), nBest: 2 });
    const gpu = decode({ ...inputOf(c, 'cuda'), nBest: 2 });
    assert.equal(gpu.paths.length, cpu.paths.length);
  });
});
