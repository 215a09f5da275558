// The CRF's CUDA kernels, run by scripts/gpu-test.sh on a CUDA machine (node:test, compiled into
// dist-test/: no npm there). test/crf.test.ts's enumeration cases and brute-force oracle
// (test/fixtures/crf-cases.ts) with the emissions on `cuda`, then CPU-vs-CUDA agreement on
// larger random batches in every emissions dtype.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { type CrfDevice, type CrfInput, decode, marginals, nll } from '../../lib/crf/index.js';
import { native } from '../../lib/native.js';
import {
  bruteDecode,
  bruteMarginals,
  bruteNll,
  type Case,
  type CaseOptions,
  closeMismatch,
  constraintsOf,
  inputOf,
  isAllowed,
  LONG_K,
  LONG_LENGTHS,
  longCase,
  nativeDecode,
  nativeMarginals,
  nativeNll,
  pathScore,
  randomCase,
  REDUCTIONS,
  SMALL,
} from '../fixtures/crf-cases.js';

function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
): void {
  const problem = closeMismatch(actual, expected, tol, what);
  assert.ok(problem === null, problem ?? undefined);
}

const onDevice = (c: Case, device: CrfDevice): CrfInput => ({ ...inputOf(c), device });
const constraintsIf = (c: Case) => (c.allowed ? constraintsOf(c) : {});

test('the addon runs the CRF on CUDA', () => {
  assert.equal(native().compiledWithCuda(), true, 'built against a CUDA LibTorch');
  assert.equal(native().cudaAvailable(), true);
});

describe('CUDA CRF against brute-force enumeration', () => {
  // test/crf.test.ts's cases (the same seeds), then scores large enough to need the kernels'
  // underflow fallbacks.
  const cases: [seed: number, options: CaseOptions][] = [
    ...SMALL.map((o, i): [number, CaseOptions] => [100 + i, o]),
    [200, { B: 4, T: 5, K: 4, scale: 60 }],
    [201, { B: 4, T: 5, K: 4, scale: 60, constrained: true }],
  ];

  for (const [seed, o] of cases) {
    const name = `B=${o.B} T=${o.T} K=${o.K}${o.constrained ? ' constrained' : ''}${o.scale ? ' x' + o.scale : ''}`;
    test(`seed ${seed} (${name})`, () => {
      const c = randomCase(seed, o);
      const tol = o.scale ? 3e-4 : 2e-5;
      for (const reduction of REDUCTIONS) {
        const want = bruteNll(c, reduction);
        const got = nativeNll(c, reduction, { device: 'cuda' });
        assertClose(got.nll, want.nll, o.scale ? 2e-6 * 500 : tol, `${reduction} nll`);
        assertClose(got.gradEmissions, want.grad.emissions, tol, `${reduction} d/emissions`);
        assertClose(got.gradTransitions, want.grad.transitions, tol, `${reduction} d/transitions`);
        assertClose(got.gradStart, want.grad.start, tol, `${reduction} d/start`);
        assertClose(got.gradEnd, want.grad.end, tol, `${reduction} d/end`);
      }
      const constrained = !!o.constrained;
      for (const nBest of [1, 3, c.K ** c.T + 2]) {
        const got = decode({ ...onDevice(c, 'cuda'), nBest, constraints: constraintsIf(c) });
        const want = bruteDecode(c, nBest, constrained);
        for (let b = 0; b < c.B; b++) {
          assertClose(got.scores[b], want.scores[b], tol, `nBest ${nBest} sequence ${b} scores`);
          const seen = new Set<string>();
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
      const m = nativeMarginals(c, { device: 'cuda:0', ...constraintsIf(c) });
      assertClose(m, bruteMarginals(c, constrained), tol, 'marginals');
    });
  }
});

describe('CUDA CRF on long sequences (scaled forward–backward)', () => {
  // As test/crf.test.ts's long-sequence cases (which check the CPU against float64): scores grow
  // by ~15 per position to ~3e5 at 20 000, where float32 running totals broke the marginals
  // (sums far from 1), NLL and Viterbi. Here the kernels must give proper probabilities and
  // agree with the CPU, which runs the same routines with one lane.
  const LENGTHS = LONG_LENGTHS;
  const K = LONG_K;
  const T = LENGTHS[0];
  const c = longCase(2121, false);

  test('marginals are probabilities and agree with the CPU', () => {
    const gpu = nativeMarginals(c, { device: 'cuda' });
    const cpu = nativeMarginals(c, {});
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
    const gpu = nativeNll(c, 'none', { device: 'cuda' });
    const cpu = nativeNll(c, 'none', {});
    // log Z and the path score are each ~3e5; their difference must keep 1e-6 relative.
    assertClose(gpu.nll, cpu.nll, 1e-6, 'nll');
    assertClose(gpu.gradEmissions, cpu.gradEmissions, 1e-5, 'd/emissions');
    assertClose(gpu.gradTransitions, cpu.gradTransitions, 2e-4, 'd/transitions');
    assertClose(gpu.gradStart, cpu.gradStart, 1e-5, 'd/start');
    assertClose(gpu.gradEnd, cpu.gradEnd, 1e-5, 'd/end');
  });

  test('Viterbi paths are as good as the CPU’s', () => {
    for (const nBest of [1, 3]) {
      const gpu = decode({ ...onDevice(c, 'cuda'), nBest });
      const cpu = decode({ ...onDevice(c, 'cpu'), nBest });
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
  for (const dtype of ['float32', 'float16', 'bfloat16', 'float64'] as const) {
    for (const [i, shape] of shapes.entries()) {
      test(`${dtype} B=${shape.B} T=${shape.T} K=${shape.K}`, () => {
        const c = randomCase(500 + i, { ...shape, scale: 2 });
        const tol = dtype === 'float64' ? 1e-9 : 2e-4;
        for (const reduction of REDUCTIONS) {
          const cpu = nativeNll(c, reduction, { dtype });
          const gpu = nativeNll(c, reduction, { dtype, device: 'cuda' });
          assertClose(gpu.nll, cpu.nll, tol, `${reduction} nll`);
          // Emission gradients come back in the emissions' dtype (half precision rounds them).
          const gtol = dtype === 'float16' ? 2e-3 : dtype === 'bfloat16' ? 1e-2 : tol;
          assertClose(gpu.gradEmissions, cpu.gradEmissions, gtol, `${reduction} d/emissions`);
          assertClose(gpu.gradTransitions, cpu.gradTransitions, tol, `${reduction} d/transitions`);
          assertClose(gpu.gradStart, cpu.gradStart, tol, `${reduction} d/start`);
          assertClose(gpu.gradEnd, cpu.gradEnd, tol, `${reduction} d/end`);
        }
        for (const nBest of [1, 4]) {
          const options = { dtype, nBest, ...constraintsIf(c) };
          const cpu = nativeDecode(c, options);
          const gpu = nativeDecode(c, { ...options, device: 'cuda' });
          assertClose(gpu.scores, cpu.scores, tol, `nBest ${nBest} scores`);
          // Paths agree except where two scores are within rounding of each other.
          let differing = 0;
          for (let x = 0; x < cpu.tags.length; x++) if (cpu.tags[x] !== gpu.tags[x]) differing++;
          assert.ok(
            differing <= cpu.tags.length * 0.01,
            `nBest ${nBest}: ${differing} tags differ`,
          );
        }
        const cpuM = nativeMarginals(c, { dtype, ...constraintsIf(c) });
        const gpuM = nativeMarginals(c, {
          dtype,
          device: 'cuda',
          ...constraintsIf(c),
        });
        assertClose(gpuM, cpuM, dtype === 'float64' ? 1e-9 : 1e-4, 'marginals');
      });
    }
  }

  test('TypeScript API on cuda (timings for B=32, T=64, K=21)', () => {
    const c = randomCase(9, { B: 32, T: 64, K: 21 });
    const time = (f: () => unknown) => {
      for (let i = 0; i < 5; i++) f();
      const start = process.hrtime.bigint();
      for (let i = 0; i < 50; i++) f();
      return Number(process.hrtime.bigint() - start) / 1e6 / 50;
    };
    for (const device of ['cpu', 'cuda'] as const) {
      const input = { ...onDevice(c, device), tags: c.tags };
      const ms = {
        nll: time(() => nll(input)),
        decode: time(() => decode(input)),
        marginals: time(() => marginals(input)),
      };
      console.log(`crf ${device}: ${JSON.stringify(ms)} ms/call (incl. copies)`);
    }
    const cpu = decode({ ...onDevice(c, 'cpu'), nBest: 2 });
    const gpu = decode({ ...onDevice(c, 'cuda'), nBest: 2 });
    assert.equal(gpu.paths.length, cpu.paths.length);
  });
});
