/**
 * Row (c): training throughput of the default small model (train.json's scratch size: 4 layers ×
 * 256 hidden, 4 heads, FFN 1024, CRF head; batch 32) on KMOU training examples: koner's native
 * Trainer against a PyTorch training loop written the common way
 * (scripts/bench/python/train.py), from the same initial weights, on the same examples,
 * interleaved round by round, best of N.
 *
 * Both sides are timed on the same examples (a seeded sample of S × 32 training examples, prepared
 * as `koner train` prepares them: pieces, BIO tags, windows of at most 128 pieces) after a 2-step
 * warm-up on 64 others. Python visits them in the sample's (shuffled) order, 32 per batch, each
 * batch padded to its longest example; koner visits the same examples in length-bucketed batches
 * of 32 (lib/train/batching.ts). koner's
 * figure is the wall time of its `Trainer.step` calls (forward, fused CRF NLL, backward, clipping,
 * AdamW) including the JS-side padding of each batch.
 *
 * Where the CPU multiplies bfloat16 natively (AVX512_BF16 or AMX-BF16) a second row times both
 * sides again with the encoder under bfloat16 autocast (koner's `dtype: "bfloat16"`; Python's
 * torch.autocast), each on its own copy of the same initial weights.
 *
 * Each precision also gets a row of koner against itself with its tensor cache emptied and off
 * (`setTensorCacheLimit(0)`), interleaved the same way.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { readKmouCorpus } from '../lib/corpus/index.js';
import { KMOU_SCHEME } from '../lib/labels/index.js';
import type { NativeTrainBatch, NativeTrainer } from '../lib/native.js';
import { native } from '../lib/native.js';
import { setTensorCacheLimit, setThreads, tensorMemory } from '../lib/runtime.js';
import { Tokenizer } from '../lib/tokenizer/index.js';
import { collate, epochBatches } from '../lib/train/batching.js';
import { DEFAULT_SCRATCH_SIZE } from '../lib/train/config.js';
import { prepareExamples } from '../lib/train/data.js';
import { Rng } from '../lib/train/rng.js';
import { type BenchOptions, type BenchRow, interleaved, progress } from './common.js';
import { sharedDataDir, tokenizerFiles, writeRandomModel } from './inference.js';
import { PythonServer, startModelServer } from './python.js';

export interface TrainBenchOptions extends BenchOptions {
  /** Optimizer steps per timed round (default 24; --quick: 6). */
  steps?: number;
  /** Timed rounds per side (default 3; --quick: 1), after a 2-step warm-up. */
  rounds?: number;
}

const BATCH = 32;

type Autocast = 'float32' | 'bfloat16';

/** Whether this build of the addon has the native Trainer. */
export function haveTrainer(): boolean {
  return typeof (native() as { Trainer?: unknown }).Trainer === 'function';
}

export async function trainBench(options: TrainBenchOptions): Promise<BenchRow[]> {
  const label = '(c) training, small model, batch 32';
  if (!haveTrainer()) {
    return [
      {
        row: label,
        koner: null,
        peer: null,
        unit: 'sentences/s',
        note: 'pending: Trainer not built',
      },
    ];
  }
  const steps = options.steps ?? (options.quick ? 6 : 24);
  const rounds = options.rounds ?? (options.quick ? 1 : 3);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'koner-bench-small-'));
  let python: PythonServer | null = null;
  try {
    setThreads(options.threads);
    const config = await writeRandomModel(dir, 100, { ...DEFAULT_SCRATCH_SIZE });
    const files = tokenizerFiles();
    const tokenizer = await Tokenizer.load(files.model, { vocab: files.vocab });
    const sentences = await readKmouCorpus(path.join(sharedDataDir(), 'kmou-ner', 'train'));
    const data = prepareExamples(sentences, tokenizer, { scheme: KMOU_SCHEME, maxLength: 128 });
    // A seeded sample of the examples: what a shuffling DataLoader would hand out first. Both
    // sides are timed on the first `steps × 32` of them and warm up on the next 2 × 32.
    const order = Array.from({ length: data.examples.length }, (_, i) => i);
    Rng.fromSeed(100, 0).shuffle(order);
    const warmSteps = 2;
    const examples = order.slice(0, (steps + warmSteps) * BATCH).map((i) => data.examples[i]);
    const timedCount = steps * BATCH;

    // koner: each set's examples in length-bucketed batches (indices into `examples`).
    const bucket = (first: number, count: number, batches: number): number[][] =>
      epochBatches(
        examples.slice(first, first + count).map((e) => e.ids.length),
        0,
        { batchSize: BATCH, seed: 100, bucketBatches: batches },
      ).map((batch) => batch.map((i) => first + i));
    const timed = bucket(0, timedCount, steps);
    const warmUp = bucket(timedCount, warmSteps * BATCH, warmSteps);
    const batchOf = (indices: number[]): NativeTrainBatch => {
      const { ids, labels } = collate(
        indices.map((i) => examples[i]),
        config.padTokenId,
        0,
      );
      return {
        ids: ids.data,
        shape: [ids.rows, ids.cols],
        lengths: ids.lengths,
        tags: labels.data,
      };
    };

    const cpu = native().cpuFeatures();
    const autocasts: Autocast[] =
      options.device === 'cpu' && !(cpu.avx512Bf16 || cpu.amxBf16)
        ? ['float32']
        : ['float32', 'bfloat16'];
    const trainers = new Map<Autocast, NativeTrainer>();
    for (const autocast of autocasts) {
      const model = new (native().Model)(config);
      await model.loadWeights(path.join(dir, 'model.safetensors'));
      if (options.device !== 'cpu') await model.to(options.device, 'float32');
      const trainer: NativeTrainer = new (native().Trainer)(model, {
        weightDecay: 0.01,
        betas: [0.9, 0.999],
        eps: 1e-8,
        clipNorm: 1,
        autocast,
      });
      trainers.set(autocast, trainer);
    }
    const lr = 5e-4;
    const konerSteps = async (autocast: Autocast, batches: number[][]): Promise<number> => {
      const trainer = trainers.get(autocast)!;
      const start = process.hrtime.bigint();
      for (const b of batches) await trainer.step([batchOf(b)], lr);
      return Number(process.hrtime.bigint() - start) / 1e9;
    };

    python = await startModelServer(options, 'train.py', dir);
    await python.request('load', {
      ids: examples.map((e) => Array.from(e.ids)),
      tags: examples.map((e) => Array.from(e.labels)),
      batch: BATCH,
    });
    const pythonSteps = async (autocast: Autocast, count: number, start: number): Promise<number> =>
      (await python!.request<{ seconds: number }>('run', { steps: count, start, autocast }))
        .seconds;

    const timedExamples = examples.slice(0, timedCount);
    const realTokens = timedExamples.reduce((n, e) => n + e.ids.length, 0);
    let bucketPadded = 0;
    for (const b of timed)
      bucketPadded += b.length * Math.max(...b.map((i) => examples[i].ids.length));
    let dynamicPadded = 0;
    for (let s = 0; s < timedCount; s += BATCH) {
      const chunk = timedExamples.slice(s, s + BATCH);
      dynamicPadded += chunk.length * Math.max(...chunk.map((e) => e.ids.length));
    }
    progress(
      `training: ${steps} steps × ${BATCH} of ${data.examples.length} examples; pieces ` +
        `${realTokens}, padded: koner ${bucketPadded}, python ${dynamicPadded}`,
    );

    const rows: BenchRow[] = [];
    for (const autocast of autocasts) {
      await konerSteps(autocast, warmUp);
      await pythonSteps(autocast, warmSteps, steps);
      const samples = await interleaved(
        rounds,
        [() => konerSteps(autocast, timed), () => pythonSteps(autocast, steps, 0)],
        (round, s) =>
          progress(
            `training ${autocast} round ${round + 1}: koner ${s[0].toFixed(2)} s, ` +
              `python ${s[1].toFixed(2)} s`,
          ),
      );
      rows.push({
        row: autocast === 'float32' ? label : `${label}, bf16 autocast`,
        koner: timedCount / samples[0][0],
        peer: timedCount / samples[1][0],
        unit: 'sentences/s',
        note:
          `PyTorch loop${autocast === 'float32' ? '' : ' under torch.autocast'}: batch-max ` +
          `padding, pytorch-crf-style NLL, AdamW (${steps} steps; koner length-bucketed)`,
      });
      // koner against itself without its tensor cache (lib/runtime.ts, tensorMemory): every
      // freed block goes back to the system and is faulted in again when the next step needs it.
      const limit = tensorMemory().limitBytes;
      const uncached = async (): Promise<number> => {
        setTensorCacheLimit(0);
        try {
          return await konerSteps(autocast, timed);
        } finally {
          setTensorCacheLimit(limit);
        }
      };
      const cacheSamples = await interleaved(
        rounds,
        [() => konerSteps(autocast, timed), uncached],
        (round, s) =>
          progress(
            `training ${autocast} round ${round + 1}: tensor cache ${s[0].toFixed(2)} s, ` +
              `none ${s[1].toFixed(2)} s`,
          ),
      );
      rows.push({
        row: `${autocast === 'float32' ? label : `${label}, bf16 autocast`}, tensor cache`,
        koner: timedCount / cacheSamples[0][0],
        peer: timedCount / cacheSamples[1][0],
        unit: 'sentences/s',
        note: 'peer: koner with setTensorCacheLimit(0), freed tensors back to the system',
      });
    }
    return rows;
  } finally {
    await python?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
