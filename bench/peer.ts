/**
 * Row (f): koner against onnxruntime-node, the engine a Node user would run instead (it is under
 * transformers.js), on the same weights, the same threads and the same sentences: the 931 KMOU
 * validation sentences, length-sorted batches of 1 and 32, interleaved round by round.
 *
 * Two models: a KoBERT-size one (12 × 768, FFN 3072, CRF head, random weights) and the bundled
 * model's first network (models/kmou-small/member-0, as float32), each exported to ONNX at bench
 * time by scripts/bench/python/onnx_export.py (Debian's python3-torch, dynamic batch and length
 * axes) into a temporary directory. Before timing, both sides' emissions of every sentence are
 * compared: they must agree within 1e-4.
 *
 * What each side's figure includes. koner: the whole `predict(texts, { batchSize })` call
 * (tokenization, length-sorted batches, the encoder, the CRF's constrained Viterbi and posterior
 * marginals, entities with offsets). onnxruntime: from token ids already computed to emissions
 * (the same length-sorted batches padded into int64 tensors, `session.run`), no CRF: the peer is
 * spared the tokenizer and the decoder, so a ratio above 1 is koner's lead on less favourable
 * terms.
 *
 * Each row's note gives the encoder's share of the measured oneDNN fp32 GEMM peak (matrix-product
 * FLOPs of the padded batches over the best pass time; scripts/bench/python/encoder.py's peak).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { readKmouCorpus } from '../lib/corpus/index.js';
import { type ModelConfig, readModelConfig } from '../lib/model/config.js';
import { copyModelDirectory } from '../lib/model/copy-model.js';
import { bundledTokenizerFiles, defaultModelDir } from '../lib/model/default-model.js';
import { NerModel } from '../lib/model/ner-model.js';
import type { EncoderDtype } from '../lib/native.js';
import { setThreads } from '../lib/runtime.js';
import {
  type BenchOptions,
  type BenchRow,
  interleaved,
  loadAverage,
  progress,
  secondsSince,
  timeOnce,
} from './common.js';
import { sharedDataDir, writeRandomModel } from './inference.js';
import { PythonServer, pythonScript, startModelServer } from './python.js';

/** How far koner's and onnxruntime's emissions may differ (fp32, same weights). */
export const PEER_TOLERANCE = 1e-4;

export interface PeerBenchOptions extends BenchOptions {
  /** Validation sentences per pass (default all 931; --quick: 64). */
  sentences?: number;
  /** Timed rounds per side (default 3; --quick: 1), after the warm-up and the numerics check. */
  rounds?: number;
}

// The subset of onnxruntime-node's API used here (it is a devDependency, imported on demand).
interface OrtTensor {
  data: unknown;
  dims: readonly number[];
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface Ort {
  InferenceSession: {
    create(
      path: string,
      options: {
        intraOpNumThreads: number;
        interOpNumThreads: number;
        graphOptimizationLevel: 'all';
        executionMode: 'sequential';
      },
    ): Promise<OrtSession>;
  };
  Tensor: new (type: 'int64', data: BigInt64Array, dims: number[]) => OrtTensor;
}

async function loadOrt(): Promise<Ort & { version: string }> {
  let ort: Ort & { env?: { versions?: { node?: string } } };
  try {
    ort = (await import('onnxruntime-node')) as unknown as Ort;
  } catch (error) {
    throw new Error(
      `bench (f): onnxruntime-node could not be loaded (${(error as Error).message}); it is a ` +
        'devDependency: run `npm ci` in the koner checkout',
    );
  }
  return { ...ort, version: ort.env?.versions?.node ?? '?' };
}

/**
 * One network of the bundled model as a self-contained float32 directory at `out`: both engines
 * compare one network (the bundled model is an ensemble), and the ONNX exporter reads plain
 * float weights, not quantized rows.
 */
async function bundledNetwork(out: string): Promise<string> {
  const bundled = await readModelConfig(defaultModelDir());
  const member = bundled.ensemble
    ? path.join(defaultModelDir(), bundled.ensemble[0])
    : defaultModelDir();
  const config = await readModelConfig(member);
  await copyModelDirectory(member, out, {
    dtype: 'float32',
    config: { ...config, tokenizer: bundledTokenizerFiles() },
  });
  return out;
}

/** Runs onnx_export.py: the model directory's encoder and classifier as `out`. */
async function exportOnnx(python: string, modelDir: string, out: string): Promise<void> {
  const script = pythonScript('onnx_export.py');
  await new Promise<void>((resolve, reject) => {
    const child = spawn(python, [script, '--model', modelDir, '--out', out], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
    child.on('error', (e) => reject(new Error(`${python} ${script}: ${e.message}`)));
    child.on('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${python} ${script} failed (status ${code}):\n${stderr.trim()}`)),
    );
  });
}

/** Indices in length-sorted batches of `size`, as NerModel.predict forms them. */
function sortedBatches(lengths: readonly number[], size: number): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const out: number[][] = [];
  for (let i = 0; i < order.length; i += size) out.push(order.slice(i, i + size));
  return out;
}

/** Matrix-product FLOPs of one encoder forward over `rows` sequences padded to `T` pieces. */
function forwardFlops(c: ModelConfig, rows: number, T: number): number {
  const { hiddenSize: H, intermediateSize: F, numHiddenLayers: L } = c;
  return rows * L * (4 * T * H * H * 2 + 2 * T * H * F * 2 + 2 * T * T * H * 2);
}

/** One model's two sides: koner's predict and onnxruntime's emissions over the same batches. */
class Contest {
  private constructor(
    readonly name: string,
    readonly config: ModelConfig,
    readonly texts: string[],
    readonly ids: Int32Array[],
    readonly koner: NerModel,
    readonly session: OrtSession,
    readonly ort: Ort,
  ) {}

  static async open(
    name: string,
    dir: string,
    onnx: string,
    texts: string[],
    ort: Ort,
    options: PeerBenchOptions,
  ): Promise<Contest> {
    const koner = await NerModel.load(dir, { threads: options.threads });
    const { cls, sep } = koner.tokenizer.specialIds;
    const ids = texts.map((t) => Int32Array.from([cls, ...koner.tokenizer.encode(t).ids, sep]));
    const session = await ort.InferenceSession.create(onnx, {
      intraOpNumThreads: options.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
    });
    return new Contest(name, koner.config, texts, ids, koner, session, ort);
  }

  /** onnxruntime's emissions of one batch of sentence indices: [B, T, K] and T. */
  async peerBatch(batch: readonly number[]): Promise<{ emissions: Float32Array; T: number }> {
    const T = Math.max(...batch.map((i) => this.ids[i].length));
    const ids = new BigInt64Array(batch.length * T).fill(BigInt(this.config.padTokenId));
    const mask = new BigInt64Array(batch.length * T);
    batch.forEach((s, b) => {
      const seq = this.ids[s];
      for (let t = 0; t < seq.length; t++) {
        ids[b * T + t] = BigInt(seq[t]);
        mask[b * T + t] = 1n;
      }
    });
    const out = await this.session.run({
      input_ids: new this.ort.Tensor('int64', ids, [batch.length, T]),
      attention_mask: new this.ort.Tensor('int64', mask, [batch.length, T]),
    });
    return { emissions: out.emissions.data as Float32Array, T };
  }

  /** Seconds of one onnxruntime pass over the first `n` sentences in batches of `size`. */
  peerPass(size: number, n = this.texts.length): Promise<number> {
    const batches = sortedBatches(
      this.ids.slice(0, n).map((s) => s.length),
      size,
    );
    return timeOnce(async () => {
      for (const batch of batches) await this.peerBatch(batch);
    });
  }

  /** Seconds of one koner predict over the first `n` sentences in batches of `size`. */
  konerPass(model: NerModel, size: number, n = this.texts.length): Promise<number> {
    return timeOnce(() => model.predict(this.texts.slice(0, n), { batchSize: size }));
  }

  /** max |koner − onnxruntime| over every valid emission of every sentence (batches of 32). */
  async maxDifference(model: NerModel = this.koner): Promise<number> {
    const K = this.config.labels.length;
    const ours = await model.logits(this.ids);
    let max = 0;
    for (const batch of sortedBatches(
      this.ids.map((s) => s.length),
      32,
    )) {
      const { emissions, T } = await this.peerBatch(batch);
      batch.forEach((s, b) => {
        const mine = ours[s];
        const theirs = emissions.subarray(b * T * K, (b * T + this.ids[s].length) * K);
        for (let i = 0; i < mine.length; i++) max = Math.max(max, Math.abs(mine[i] - theirs[i]));
      });
    }
    return max;
  }

  /** Matrix-product FLOPs of one pass in batches of `size` (the padded batches both sides run). */
  passFlops(size: number): number {
    let flops = 0;
    for (const batch of sortedBatches(
      this.ids.map((s) => s.length),
      size,
    )) {
      flops += forwardFlops(
        this.config,
        batch.length,
        Math.max(...batch.map((i) => this.ids[i].length)),
      );
    }
    return flops;
  }

  async close(): Promise<void> {
    await this.session.release();
    this.koner.dispose();
  }
}

/** A koner model in another encoder precision (bfloat16, int8), if this CPU runs it; else why not. */
async function lowPrecision(
  dir: string,
  dtype: EncoderDtype,
  options: PeerBenchOptions,
): Promise<NerModel | string> {
  try {
    return await NerModel.load(dir, { threads: options.threads, device: 'cpu', dtype });
  } catch (error) {
    return (error as Error).message;
  }
}

/** The reduced precisions measured against onnxruntime's fp32 (the KoBERT-size model). */
const LOW_PRECISIONS = ['bfloat16', 'int8'] as const;

export async function peerBench(options: PeerBenchOptions): Promise<BenchRow[]> {
  const quick = options.quick;
  const rounds = options.rounds ?? (quick ? 1 : 3);
  const corpus = await readKmouCorpus(path.join(sharedDataDir(), 'kmou-ner', 'val'));
  const texts = corpus.map((s) => s.text).slice(0, options.sentences ?? (quick ? 64 : undefined));
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-bench-peer-'));
  const contests: Contest[] = [];
  let python: PythonServer | null = null;
  const low: Record<'bfloat16' | 'int8', NerModel | string> = {
    bfloat16: 'not measured',
    int8: 'not measured',
  };
  try {
    setThreads(options.threads);
    const ort = await loadOrt();
    const kobertDir = path.join(tmp, 'kobert');
    mkdirSync(kobertDir);
    progress(`peer: writing a random KoBERT-size model to ${kobertDir}`);
    await writeRandomModel(kobertDir, 1);
    const exportStart = process.hrtime.bigint();
    await exportOnnx(options.python, kobertDir, path.join(tmp, 'kobert.onnx'));
    const bundledDir = await bundledNetwork(path.join(tmp, 'bundled'));
    await exportOnnx(options.python, bundledDir, path.join(tmp, 'bundled.onnx'));
    progress(`peer: ONNX export of both models ${secondsSince(exportStart).toFixed(1)} s`);
    const kobert = await Contest.open(
      'KoBERT-size',
      kobertDir,
      path.join(tmp, 'kobert.onnx'),
      texts,
      ort,
      options,
    );
    contests.push(kobert);
    const bundled = await Contest.open(
      'bundled kmou-small (one member)',
      bundledDir,
      path.join(tmp, 'bundled.onnx'),
      texts,
      ort,
      options,
    );
    contests.push(bundled);
    for (const dtype of LOW_PRECISIONS) low[dtype] = await lowPrecision(kobertDir, dtype, options);

    // The numerics check doubles as the batch-32 warm-up of both sides.
    for (const c of contests) {
      const diff = await c.maxDifference();
      progress(`peer: ${c.name}: max |Δemissions| koner vs onnxruntime ${diff.toExponential(2)}`);
      if (!(diff <= PEER_TOLERANCE)) {
        throw new Error(
          `bench (f): ${c.name}: koner's and onnxruntime's emissions differ by ${diff} ` +
            `(> ${PEER_TOLERANCE}) on the same weights`,
        );
      }
      const warm = Math.min(texts.length, 32);
      await c.konerPass(c.koner, 1, warm);
      await c.peerPass(1, warm);
      await c.konerPass(c.koner, 32, warm);
    }
    for (const dtype of LOW_PRECISIONS) {
      const model = low[dtype];
      if (typeof model !== 'string') await kobert.konerPass(model, 32, Math.min(texts.length, 64));
    }

    // The GEMM peak, measured by the same LibTorch's oneDNN in Python, before the timed rounds.
    python = await startModelServer({ ...options, device: 'cpu' }, 'encoder.py', kobertDir);
    const peaks = await python.request<{
      onednn: number;
      bfloat16: number | null;
      int8: number | null;
    }>('gemm');
    const peak = peaks.onednn;
    await python.close();
    python = null;

    const sides: { label: string; run: () => Promise<number> }[] = [];
    for (const c of contests) {
      for (const size of [1, 32]) {
        sides.push({ label: `${c.name} koner b${size}`, run: () => c.konerPass(c.koner, size) });
        sides.push({ label: `${c.name} onnxruntime b${size}`, run: () => c.peerPass(size) });
      }
    }
    for (const dtype of LOW_PRECISIONS) {
      const model = low[dtype];
      if (typeof model === 'string') continue;
      for (const size of [32, 1]) {
        sides.push({
          label: `KoBERT-size koner ${dtype} b${size}`,
          run: () => kobert.konerPass(model, size),
        });
      }
    }
    const samples = await interleaved(
      rounds,
      sides.map((s) => s.run),
      (round, s) =>
        progress(
          `peer round ${round + 1} (load ${loadAverage()}): ` +
            sides.map((side, i) => `${side.label} ${s[i].toFixed(1)} s`).join(', '),
        ),
    );
    const best = (label: string) => samples[sides.findIndex((s) => s.label === label)][0];
    const rate = (seconds: number) => texts.length / seconds;
    const ofPeak = (c: Contest, size: number, seconds: number, of = peak) =>
      `${((100 * c.passFlops(size)) / seconds / (of * 1e9)).toFixed(0)}%`;
    const n = `${texts.length} val sentences`;
    const rows: BenchRow[] = [];
    for (const c of contests) {
      for (const size of [1, 32]) {
        const k = best(`${c.name} koner b${size}`);
        const p = best(`${c.name} onnxruntime b${size}`);
        rows.push({
          row: `(f) ${c.name} fp32 vs onnxruntime, batch ${size}`,
          koner: rate(k),
          peer: rate(p),
          unit: 'sentences/s',
          note:
            `onnxruntime-node ${ort.version}, ids to emissions (${n}); of the oneDNN fp32 ` +
            `GEMM peak (${peak.toFixed(0)} GFLOP/s): koner ${ofPeak(c, size, k)}, ` +
            `onnxruntime ${ofPeak(c, size, p)}`,
        });
      }
    }
    for (const dtype of LOW_PRECISIONS) {
      const model = low[dtype];
      for (const size of [32, 1]) {
        const peer = rate(best(`KoBERT-size onnxruntime b${size}`));
        const row = `(f) KoBERT-size ${dtype} vs onnxruntime fp32, batch ${size}`;
        if (typeof model === 'string') {
          rows.push({ row, koner: null, peer, unit: 'sentences/s', note: `not run: ${model}` });
          continue;
        }
        const k = best(`KoBERT-size koner ${dtype} b${size}`);
        const own = peaks[dtype];
        rows.push({
          row,
          koner: rate(k),
          peer,
          unit: 'sentences/s',
          note:
            `koner's encoder products in ${dtype} (CRF fp32); of the fp32 GEMM peak ` +
            `${ofPeak(kobert, size, k)}` +
            (own
              ? `, of the ${dtype} peak (${own.toFixed(0)} GFLOP/s) ${ofPeak(kobert, size, k, own)}`
              : ''),
        });
      }
    }
    return rows;
  } finally {
    await python?.close();
    for (const model of Object.values(low)) if (typeof model !== 'string') model.dispose();
    for (const c of contests) await c.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}
