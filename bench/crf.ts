/**
 * Row (b): the CRF at B=32, T=64, K=21 — koner's fused kernels (binding/crf, through the addon's
 * typed-array entry points) against a PyTorch CRF written the way the common libraries write it
 * (scripts/fixtures/crf_reference.py: vectorised over the batch, a Python loop over time steps,
 * autograd for the backward pass), same shapes, same lengths, same thread count, interleaved
 * round by round, best of N.
 *
 * NLL is forward + backward with all four gradients (reduction 'mean'); Viterbi is 1-best with
 * its backtrace. koner's figures include the copies of its N-API calls (typed arrays in and out;
 * on CUDA also the host↔device transfers), Python's tensors stay where they are.
 */
import { native } from '../lib/native.js';
import { type BenchOptions, type BenchRow, interleaved, progress, seededRandom } from './common.js';
import { PythonServer, pythonScript } from './python.js';

export interface CrfBenchOptions extends BenchOptions {
  batch?: number;
  time?: number;
  tags?: number;
  /** Calls per timed round (default 200 for koner, a quarter of that for Python). */
  iters?: number;
  /** Timed rounds per side (default 5; --quick: 2). */
  rounds?: number;
}

export interface CrfBenchResult {
  rows: BenchRow[];
  /** ms per call, best round. */
  koner: { nll: number; viterbi: number };
  python: { nll: number; viterbi: number };
}

export async function crfBench(options: CrfBenchOptions): Promise<CrfBenchResult> {
  const B = options.batch ?? 32;
  const T = options.time ?? 64;
  const K = options.tags ?? 21;
  const iters = options.iters ?? (options.quick ? 50 : 200);
  const pyIters = Math.max(5, Math.round(iters / 4));
  const rounds = options.rounds ?? (options.quick ? 2 : 5);
  const addon = native();
  addon.setNumThreads(options.threads);

  const rand = seededRandom(0);
  const floats = (n: number) => Float32Array.from({ length: n }, () => rand() * 4 - 2);
  const emissions = floats(B * T * K);
  const transitions = floats(K * K);
  const start = floats(K);
  const end = floats(K);
  // Lengths within [T/2, T], the first one full; Python gets the same lengths.
  const half = Math.floor(T / 2);
  const lengths = Int32Array.from({ length: B }, (_, b) =>
    b === 0 ? T : half + Math.floor(rand() * (T - half + 1)),
  );
  const tags = Int32Array.from({ length: B * T }, () => Math.floor(rand() * K));
  const shape = [B, T, K];
  const device = options.device === 'cpu' ? undefined : { device: options.device };

  const python = await PythonServer.start(options.python, pythonScript('crf.py'), [
    '--threads',
    String(options.threads),
    '--device',
    options.device,
  ]);
  try {
    await python.request('setup', { batch: B, time: T, tags: K, lengths: Array.from(lengths) });
    const konerPerCall = (f: () => void) => async (): Promise<number> => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < iters; i++) f();
      return Number(process.hrtime.bigint() - t0) / 1e9 / iters;
    };
    const nll = konerPerCall(() =>
      addon.crfNll(emissions, shape, tags, lengths, transitions, start, end, 'mean', device),
    );
    const viterbi = konerPerCall(() =>
      addon.crfDecode(emissions, shape, lengths, transitions, start, end, device),
    );
    const py = (op: string) => async () =>
      (await python.request<{ seconds: number }>(op, { iters: pyIters })).seconds;
    // Warm-up: a round of each, untimed.
    await nll();
    await viterbi();
    await py('nll')();
    await py('viterbi')();
    const samples = await interleaved(
      rounds,
      [nll, py('nll'), viterbi, py('viterbi')],
      (round, s) =>
        progress(
          `crf round ${round + 1}: nll koner ${(s[0] * 1e3).toFixed(3)} ms, python ` +
            `${(s[1] * 1e3).toFixed(3)} ms; viterbi koner ${(s[2] * 1e3).toFixed(3)} ms, ` +
            `python ${(s[3] * 1e3).toFixed(3)} ms`,
        ),
    );
    const ms = (xs: number[]) => xs[0] * 1e3;
    const where = options.device === 'cpu' ? '' : ` on ${options.device}`;
    const result: CrfBenchResult = {
      koner: { nll: ms(samples[0]), viterbi: ms(samples[2]) },
      python: { nll: ms(samples[1]), viterbi: ms(samples[3]) },
      rows: [],
    };
    result.rows = [
      {
        row: `(b) CRF NLL fwd+bwd B=${B} T=${T} K=${K}${where}`,
        koner: result.koner.nll,
        peer: result.python.nll,
        unit: 'ms/call',
        lowerIsBetter: true,
        note: 'PyTorch CRF, Python loop over time, autograd backward',
      },
      {
        row: `(b) CRF Viterbi B=${B} T=${T} K=${K}${where}`,
        koner: result.koner.viterbi,
        peer: result.python.viterbi,
        unit: 'ms/call',
        lowerIsBetter: true,
        note: 'PyTorch CRF, Python loop over time, Python backtrace',
      },
    ];
    return result;
  } finally {
    await python.close();
  }
}
