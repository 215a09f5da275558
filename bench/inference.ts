/**
 * Row (a): inference throughput of `NerModel.predict` on the KMOU validation sentences, for a
 * KoBERT-size model (12 layers × 768, FFN 3072, CRF head, random weights), at batch 1 and 32,
 * against the reference project's model on the same weights in Python
 * (scripts/bench/python/inference.py), interleaved round by round, best of N.
 *
 * koner's figure is the whole `predict(texts, { batchSize })` call: tokenization, windows,
 * length-sorted batches, the encoder, the constrained CRF Viterbi and posterior marginals (the
 * entities' confidence scores), and entities with character offsets. Python's is the reference's
 * inference loop from precomputed ids (see inference.py for exactly what it includes).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { readKmouCorpus } from '../lib/corpus/index.js';
import { LABELS } from '../lib/labels/index.js';
import { KOBERT_BASE, type ModelConfig, writeModelConfig } from '../lib/model/config.js';
import { NerModel } from '../lib/model/ner-model.js';
import { native, packageRoot } from '../lib/native.js';
import { setThreads } from '../lib/runtime.js';
import {
  type BenchOptions,
  type BenchRow,
  interleaved,
  progress,
  secondsSince,
  timeOnce,
} from './common.js';
import { PythonServer, startModelServer } from './python.js';

/** Where the KMOU corpus and the KoBERT tokenizer are: `$KONER_SHARED_DATA` or ../shared/data. */
export function sharedDataDir(): string {
  return process.env.KONER_SHARED_DATA ?? path.resolve(packageRoot, '..', 'shared', 'data');
}

export function tokenizerFiles(): { model: string; vocab: string } {
  const dir = path.join(sharedDataDir(), 'kobert-tokenizer');
  return {
    model: path.join(dir, 'tokenizer_78b3253a26.model'),
    vocab: path.join(dir, 'kobertvocab_f38b8a4d6d.json'),
  };
}

/**
 * Writes a model directory (config.json referencing the shared tokenizer files, and
 * model.safetensors drawn by koner's Hugging Face initialisation from `seed`), with the given
 * encoder shape (default KoBERT's).
 */
export async function writeRandomModel(
  dir: string,
  seed: number,
  shape: Partial<ModelConfig> = {},
): Promise<ModelConfig> {
  const config: ModelConfig = {
    ...KOBERT_BASE,
    ...shape,
    head: 'crf',
    labels: [...LABELS],
    tokenizer: tokenizerFiles(),
  };
  const model = new (native().Model)(config);
  await model.seed(seed);
  await model.saveWeights(path.join(dir, 'model.safetensors'));
  await writeModelConfig(dir, config);
  return config;
}

export interface InferenceBenchOptions extends BenchOptions {
  /** Validation sentences per pass (default all 931; --quick: 128). */
  sentences?: number;
  /** Timed rounds per side (default 2; --quick: 1), after one untimed warm-up. */
  rounds?: number;
}

interface PythonRun {
  seconds: number;
  sentences: number;
  paddedTokens: number;
}

export async function inferenceBench(options: InferenceBenchOptions): Promise<BenchRow[]> {
  const quick = options.quick;
  const rounds = options.rounds ?? (quick ? 1 : 2);
  const corpus = await readKmouCorpus(path.join(sharedDataDir(), 'kmou-ner', 'val'));
  const texts = corpus.map((s) => s.text).slice(0, options.sentences ?? (quick ? 128 : undefined));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'koner-bench-kobert-'));
  let python: PythonServer | null = null;
  try {
    setThreads(options.threads);
    progress(`inference: writing a random KoBERT-size model to ${dir}`);
    await writeRandomModel(dir, 1);
    const model = await NerModel.load(dir, { threads: options.threads, device: options.device });
    const { cls, sep } = model.tokenizer.specialIds;
    const ids = texts.map((t) => [cls, ...model.tokenizer.encode(t).ids, sep]);
    const tokens = ids.reduce((n, s) => n + s.length, 0);
    python = await startModelServer(options, 'inference.py', dir);
    await python.request('load', { ids });

    // The same model on both sides: emissions of one sentence agree to float32 rounding.
    const probe = ids.reduce((best, s, i) => (s.length > ids[best].length ? i : best), 0);
    const [ours] = await model.logits([ids[probe]]);
    const theirs = (await python.request<{ emissions: number[] }>('emissions', { index: probe }))
      .emissions;
    let maxDiff = 0;
    for (let i = 0; i < ours.length; i++)
      maxDiff = Math.max(maxDiff, Math.abs(ours[i] - theirs[i]));
    if (!(maxDiff < 1e-2)) {
      throw new Error(`inference: koner and Python disagree on emissions (max |Δ| ${maxDiff})`);
    }
    progress(
      `inference: ${texts.length} sentences, ${tokens} pieces; same emissions to ` +
        `${maxDiff.toExponential(1)}; ${rounds} round(s) after a warm-up`,
    );

    const runPython = async (batch: number, policy: string, count?: number) =>
      python!.request<PythonRun>('run', { batch, policy, count });
    const predict = (batchSize: number, n = texts.length) =>
      timeOnce(() => model.predict(texts.slice(0, n), { batchSize }));

    // Warm-up (untimed): every batch size once over a slice, on both sides.
    const warm = Math.min(texts.length, quick ? 32 : 96);
    const warmStart = process.hrtime.bigint();
    for (const b of [1, 32]) {
      await predict(b, warm);
      await runPython(b, 'batch', warm);
    }
    progress(`inference: warm-up ${secondsSince(warmStart).toFixed(1)} s`);

    let fixedTokens = 0;
    let batchTokens = 0;
    const samples = await interleaved(
      rounds,
      [
        () => predict(1),
        async () => (await runPython(1, 'none')).seconds,
        () => predict(32),
        async () => {
          const r = await runPython(32, 'fixed');
          fixedTokens = r.paddedTokens;
          return r.seconds;
        },
        async () => {
          const r = await runPython(32, 'batch');
          batchTokens = r.paddedTokens;
          return r.seconds;
        },
      ],
      (round, s) =>
        progress(
          `inference round ${round + 1}: koner b1 ${s[0].toFixed(1)} s, python b1 ` +
            `${s[1].toFixed(1)} s, koner b32 ${s[2].toFixed(1)} s, python b32 fixed ` +
            `${s[3].toFixed(1)} s, python b32 batch-max ${s[4].toFixed(1)} s`,
        ),
    );
    const rate = (xs: number[]) => texts.length / xs[0];
    const n = `${texts.length} val sentences`;
    return [
      {
        row: '(a) predict, batch 1',
        koner: rate(samples[0]),
        peer: rate(samples[1]),
        unit: 'sentences/s',
        note: `reference inference.py loop, one sentence per call, no padding (${n})`,
      },
      {
        row: '(a) predict, batch 32',
        koner: rate(samples[2]),
        peer: rate(samples[3]),
        unit: 'sentences/s',
        note:
          `reference policy: corpus order, padded to a fixed max_len (${fixedTokens} padded ` +
          `pieces for ${tokens} real)`,
      },
      {
        row: '(a) predict, batch 32 (vs batch-max padding)',
        koner: rate(samples[2]),
        peer: rate(samples[4]),
        unit: 'sentences/s',
        note: `stronger baseline: corpus order, padded to each batch's longest (${batchTokens} padded pieces)`,
      },
    ];
  } finally {
    await python?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
