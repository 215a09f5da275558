/**
 * CPU forward speed of a KoBERT-size model (12 layers × 768, FFN 3072, CRF head, random weights)
 * next to the GEMM peak measured in the same run.
 *
 *   npx tsx scripts/bench/encoder.ts [--rounds N] [--threads N]   (or: npm run bench:encoder)
 *
 * A forward is `emissions()`: encoder + classifier for a full batch of `pieces`-long sentences,
 * timed around the Promise (argument copies and the result's transfer included). One untimed
 * warm-up, then N timed rounds; the best and the median are reported. Achieved GFLOP/s counts
 * the encoder's matrix products: per layer and sentence 4·T·H²·2 (Q, K, V, O) + 2·T·H·F·2 (FFN)
 * + 2·T²·H·2 (QKᵀ and PV). The peak is the better of two float32 torch.matmul shapes (2048³ and
 * the FFN's 2048×768·768×3072), best of 10 calls each, timed by the Python oracle (the same
 * LibTorch and BLAS) with the same thread count.
 */
import { execFileSync } from 'node:child_process';

import { KOBERT_BASE, type ModelConfig } from '../../lib/model/config.js';
import { native } from '../../lib/native.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const rounds = arg('--rounds', 5);
const addon = native();
if (process.argv.includes('--threads')) addon.setNumThreads(arg('--threads', 1));

const TYPES = ['PER', 'LOC', 'ORG', 'DAT', 'TIM', 'DUR', 'MNY', 'PNT', 'NOH', 'POH'];
const LABELS = ['O', ...TYPES.flatMap((t) => [`B-${t}`, `I-${t}`])];
const config: ModelConfig = { ...KOBERT_BASE, head: 'crf', labels: LABELS };

function encoderFlops(batch: number, T: number): number {
  const { hiddenSize: H, intermediateSize: F, numHiddenLayers: L } = config;
  const perLayer = 4 * T * H * H * 2 + 2 * T * H * F * 2 + 2 * T * T * H * 2;
  return batch * L * perLayer;
}

async function timeIt(run: () => Promise<unknown> | unknown, n: number): Promise<number[]> {
  await run();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await run();
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  return times.sort((a, b) => a - b);
}

const median = (xs: number[]) => xs[Math.floor(xs.length / 2)];

// The GEMM peak from the Python oracle (the same LibTorch build and BLAS), timed without the
// argument copies a call through the addon would add.
const PYTHON_GEMM = `
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))

def best_seconds(f, rounds=10):
    f()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)

out = {}
for name, (m, k, n) in {'square': (2048, 2048, 2048), 'ffn': (2048, 768, 3072)}.items():
    a, b = torch.randn(m, k), torch.randn(k, n)
    out[name] = 2 * m * k * n / best_seconds(lambda: a @ b) / 1e9
print(json.dumps(out))
`;

function gemmPeak(threads: number): { square: number; ffn: number } {
  const out = execFileSync('/usr/bin/python3', ['-c', PYTHON_GEMM, String(threads)]);
  return JSON.parse(out.toString()) as { square: number; ffn: number };
}

async function main(): Promise<void> {
  console.log(
    `LibTorch ${addon.version()}, ${addon.getNumThreads()} threads ` +
      `(worker: ${await addon.workerThreads()}), ${rounds} rounds after one warm-up`,
  );
  const { square, ffn } = gemmPeak(addon.getNumThreads());
  const peak = Math.max(square, ffn);
  console.log(
    `GEMM peak (float32 torch.matmul in the Python oracle, same threads, best of 10): ` +
      `2048³ ${square.toFixed(1)} GFLOP/s, FFN-shaped 2048×768·768×3072 ${ffn.toFixed(1)} GFLOP/s`,
  );

  const model = new addon.Model(config);
  await model.seed(1);
  console.log(
    `model: ${config.numHiddenLayers} layers × ${config.hiddenSize}, FFN ${config.intermediateSize}, ` +
      `vocab ${config.vocabSize}, ${LABELS.length} labels, head ${config.head}, float32, cpu`,
  );
  for (const [batch, T, n] of [
    [32, 64, rounds],
    [1, 64, rounds * 4],
  ]) {
    const ids = Int32Array.from({ length: batch * T }, () => 5 + Math.floor(Math.random() * 7990));
    const lengths = new Int32Array(batch).fill(T);
    const times = await timeIt(() => model.emissions(ids, [batch, T], lengths), n);
    const flops = encoderFlops(batch, T);
    const best = times[0];
    const gflops = flops / best / 1e9;
    console.log(
      `batch ${String(batch).padStart(2)} × ${T} pieces: best ${(best * 1000).toFixed(1)} ms, ` +
        `median ${(median(times) * 1000).toFixed(1)} ms; ${(batch / best).toFixed(1)} sentences/s; ` +
        `${(flops / 1e9).toFixed(1)} GFLOP/forward → ${gflops.toFixed(1)} GFLOP/s ` +
        `(${((100 * gflops) / peak).toFixed(0)}% of GEMM peak)`,
    );
  }
}

await main();
