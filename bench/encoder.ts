/**
 * Row (e): the encoder's achieved throughput next to the GEMM peak measured on the same machine
 * in the same run. A KoBERT-size model (12 × 768, FFN 3072, CRF head, random weights); a forward
 * is `emissions()` on a full batch (CPU: 32 × 64 pieces in float32; CUDA: 256 × 128 in
 * bfloat16), timed around the Promise (argument copies and the result's transfer included),
 * against the same forward of the same weights in PyTorch (scripts/bench/python/encoder.py;
 * bfloat16 autocast on CUDA), interleaved, best of N.
 *
 * Achieved FLOP/s counts the encoder's matrix products: per layer and sentence 4·T·H²·2 (Q, K,
 * V, O) + 2·T·H·F·2 (FFN) + 2·T²·H·2 (QKᵀ and PV). The peak is measured by the Python side with
 * the same LibTorch: on the CPU float32 torch.matmul (the system BLAS, what PyTorch's Linear
 * runs on) and oneDNN's inner product (what koner's Linear runs on, binding/model/bert.cc); on
 * CUDA bfloat16 torch.matmul; the better of a measurement before and one after the timed rounds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { KOBERT_BASE } from '../lib/model/config.js';
import { native } from '../lib/native.js';
import { type BenchOptions, type BenchRow, interleaved, progress, timeOnce } from './common.js';
import { writeRandomModel } from './inference.js';
import { PythonServer, startModelServer } from './python.js';

export interface EncoderBenchOptions extends BenchOptions {
  /** Timed rounds per side (default 5; --quick: 2), after one untimed warm-up. */
  rounds?: number;
}

/** Matrix-product FLOPs of one encoder forward over `batch` sentences of `T` pieces. */
export function encoderFlops(batch: number, T: number): number {
  const { hiddenSize: H, intermediateSize: F, numHiddenLayers: L } = KOBERT_BASE;
  return batch * L * (4 * T * H * H * 2 + 2 * T * H * F * 2 + 2 * T * T * H * 2);
}

interface GemmPeak {
  openblas?: number;
  onednn?: number;
  bfloat16?: number | null;
  float32?: number;
}

export async function encoderBench(options: EncoderBenchOptions): Promise<BenchRow[]> {
  const cuda = options.device !== 'cpu';
  const [B, T] = cuda ? [256, 128] : [32, 64];
  const rounds = options.rounds ?? (options.quick ? 2 : 5);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'koner-bench-encoder-'));
  let python: PythonServer | null = null;
  try {
    const addon = native();
    addon.setNumThreads(options.threads);
    const config = await writeRandomModel(dir, 1);
    const model = new addon.Model(config);
    await model.loadWeights(path.join(dir, 'model.safetensors'));
    if (cuda) await model.to(options.device, 'bfloat16');
    python = await startModelServer(options, 'encoder.py', dir);
    // The peak is measured before and after the timed rounds; the better of the two counts.
    const peaks = [await python.request<GemmPeak>('gemm')];

    const ids = Int32Array.from({ length: B * T }, (_, i) => 5 + ((i * 7919) % 7990));
    const lengths = new Int32Array(B).fill(T);
    const konerForward = () => timeOnce(() => model.emissions(ids, [B, T], lengths));
    const pythonForward = async () =>
      (
        await python!.request<{ seconds: number }>('forward', {
          batch: B,
          time: T,
          iters: 1,
        })
      ).seconds;
    await konerForward();
    await pythonForward();
    const samples = await interleaved(rounds, [konerForward, pythonForward], (round, s) =>
      progress(
        `encoder round ${round + 1}: koner ${(s[0] * 1e3).toFixed(0)} ms, python ` +
          `${(s[1] * 1e3).toFixed(0)} ms`,
      ),
    );
    peaks.push(await python.request<GemmPeak>('gemm'));
    const peak: GemmPeak = {};
    for (const key of ['openblas', 'onednn', 'bfloat16', 'float32'] as const) {
      const values = peaks.map((p) => p[key]).filter((x): x is number => typeof x === 'number');
      if (values.length) peak[key] = Math.max(...values);
    }
    const scale = cuda ? 1e12 : 1e9;
    const unit = cuda ? 'TFLOP/s' : 'GFLOP/s';
    const flops = encoderFlops(B, T);
    const koner = flops / samples[0][0] / scale;
    const py = flops / samples[1][0] / scale;
    const pct = (x: number, of: number | undefined) =>
      of ? `${((100 * x * scale) / (of * 1e9)).toFixed(0)}%` : '?';
    if (cuda) {
      const bf16 = peak.bfloat16 ?? 0;
      return [
        {
          row: `(e) encoder forward ${B}×${T} bf16 on ${options.device}`,
          koner,
          peer: py,
          unit,
          note:
            `PyTorch autocast bf16; of the bf16 GEMM peak: koner ${pct(koner, bf16)}, ` +
            `python ${pct(py, bf16)}`,
        },
        {
          row: '(e) GEMM peak bf16 (torch.matmul 8192³)',
          koner: null,
          peer: bf16 / 1e3,
          unit,
          note: `float32: ${((peak.float32 ?? 0) / 1e3).toFixed(1)} TFLOP/s`,
        },
      ];
    }
    return [
      {
        row: `(e) encoder forward ${B}×${T} fp32`,
        koner,
        peer: py,
        unit,
        note:
          `same forward in PyTorch; koner = ${pct(koner, peak.onednn)} of the oneDNN peak ` +
          `(${pct(koner, peak.openblas)} of OpenBLAS's), python = ${pct(py, peak.openblas)} of ` +
          `OpenBLAS's`,
      },
      {
        row: '(e) GEMM peak fp32, each side’s Linear',
        koner: peak.onednn ?? null,
        peer: peak.openblas ?? null,
        unit,
        note: 'koner: oneDNN inner product; python: torch.matmul on OpenBLAS (2048³ or FFN shape)',
      },
    ];
  } finally {
    await python?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
