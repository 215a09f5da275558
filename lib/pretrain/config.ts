/**
 * `pretrain.json`: what `koner pretrain --config pretrain.json` reads. Validated like `train.json`
 * (every problem at once, each naming its field; unknown fields with a "did you mean"; paths
 * relative to the config file), with the same field names where the two overlap.
 *
 * A minimal file:
 *
 * ```json
 * {
 *   "text": ["../shared/data/kowiki-text/kowiki-part-00.txt.gz"],
 *   "validation": { "format": "kmou", "paths": ["../shared/data/kmou-ner/val"] },
 *   "model": { "size": { "hiddenSize": 256, "numHiddenLayers": 4 } },
 *   "maxSteps": 20000,
 *   "output": "runs/pretrain"
 * }
 * ```
 *
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { parseDevice } from '../device.js';
import {
  DEFAULT_SCRATCH_SIZE,
  defaultTokenizerFiles,
  isObject,
  Reader,
  show,
  TrainConfigError,
  type CorpusFormat,
  type Json,
  type ModelSize,
  type TokenizerFiles,
} from '../train/config.js';

/** The validated, resolved `pretrain.json`: every default filled in, every path absolute. */
export interface PretrainConfig {
  /**
   * Raw text: gzip files of one paragraph per line, read in order, one pass after another. The
   * last `evalParagraphs` paragraphs of the last file are held out for evaluation. Required.
   */
  text: string[];
  /**
   * The labelled sentences pretraining must never see (the NER validation split): a paragraph
   * sharing a run of 20 characters with one of them is dropped and counted. Required.
   */
  validation: { format: CorpusFormat; paths: string[] };
  /** Default: KoBERT's files beside the package root (as `train.json`). */
  tokenizer: TokenizerFiles;
  /**
   * `init`: `"scratch"` (default) for a BERT of `size` (default that of `train.json`'s scratch
   * encoder), or a model directory to continue from: its encoder (and masked-LM head, when it has
   * one) with a fresh optimizer, and — when it holds a `pretrain-state.json` of the same stream —
   * the text from where that run stopped, so continuing never repeats text.
   */
  model: { init: 'scratch' | string; size: ModelSize | null; dropout: number };
  /** Longest window in pieces, [CLS] and [SEP] included (default 128); longer paragraphs are cut. */
  maxLength: number;
  /** Windows per batch on each worker (default 64). */
  batchSize: number;
  /**
   * Whole-word masking: `probability` of the pieces (default 0.15) are chosen, a word (eojeol) at
   * a time; a chosen word becomes [MASK] (`mask`, default 0.8), random pieces (`random`, 0.1), or
   * stays (the rest).
   */
  masking: { probability: number; mask: number; random: number };
  /** The run's length in optimizer steps. Required. */
  maxSteps: number;
  /** AdamW (default lr 5e-4, weight decay 0.01, betas [0.9, 0.999], eps 1e-6). */
  optimizer: { lr: number; weightDecay: number; betas: [number, number]; eps: number };
  /** Linear warmup over this many steps (default 1% of maxSteps, rounded up), then linear decay to 0. */
  warmupSteps: number;
  /** Clip the global gradient norm (default 1.0; 0: off). */
  clipNorm: number;
  /** Seed of initialisation, masking, dropout and batch order (default 100). */
  seed: number;
  /** Evaluate on the held-out paragraphs and write `last/` every this many steps (default 500). */
  evalEvery: number;
  /** Held-out paragraphs (default 1000). */
  evalParagraphs: number;
  /** Output directory: `last/` (a model directory: head none, masked-LM head), metrics.jsonl. */
  output: string;
  device: string;
  dtype: 'float32' | 'bfloat16' | 'float16';
  threads: number | 'auto';
  logEvery: number;
}

const FIELDS = {
  top: [
    '$schema',
    'text',
    'validation',
    'tokenizer',
    'model',
    'maxLength',
    'batchSize',
    'masking',
    'maxSteps',
    'optimizer',
    'warmupSteps',
    'clipNorm',
    'seed',
    'evalEvery',
    'evalParagraphs',
    'output',
    'device',
    'dtype',
    'threads',
    'logEvery',
  ],
  validation: ['format', 'paths'],
  tokenizer: ['model', 'vocab'],
  model: ['init', 'size', 'dropout'],
  size: [
    'hiddenSize',
    'numHiddenLayers',
    'numAttentionHeads',
    'intermediateSize',
    'maxPositionEmbeddings',
  ],
  masking: ['probability', 'mask', 'random'],
  optimizer: ['lr', 'weightDecay', 'betas', 'eps'],
} as const;

/**
 * Validates a parsed `pretrain.json` and fills in the defaults.
 *
 * @throws TrainConfigError listing every problem, each with its field path.
 */
export function parsePretrainConfig(
  raw: unknown,
  where = 'pretrain.json',
  options: { baseDir?: string; defaultTokenizer?: TokenizerFiles | null } = {},
): PretrainConfig {
  if (!isObject(raw)) {
    throw new TrainConfigError(where, [
      { field: '(root)', problem: `must be a JSON object, got ${show(raw)}` },
    ]);
  }
  const r = new Reader(options.baseDir ?? path.dirname(path.resolve(where)));
  r.unknown(raw, '', FIELDS.top);

  const text = r.paths(raw, 'text', '');
  const v = r.object(raw, 'validation', '', FIELDS.validation);
  if (v === undefined && raw.validation === undefined) {
    r.fail('validation', 'is required: { "format", "paths" } of the sentences to keep out');
  }
  const validation = {
    format: v ? r.choice(v, 'format', 'validation', ['kmou', 'conll'] as const, 'kmou') : 'kmou',
    paths: v ? r.paths(v, 'paths', 'validation') : [],
  } as const;

  const t = r.object(raw, 'tokenizer', '', FIELDS.tokenizer);
  let tokenizer: TokenizerFiles;
  if (t !== undefined) {
    tokenizer = {
      model: r.path(t, 'model', 'tokenizer') ?? '',
      vocab: r.path(t, 'vocab', 'tokenizer') ?? '',
    };
  } else {
    const fallback =
      options.defaultTokenizer === undefined ? defaultTokenizerFiles() : options.defaultTokenizer;
    if (fallback === null) r.fail('tokenizer', 'is required: no default tokenizer was found');
    tokenizer = fallback ?? { model: '', vocab: '' };
  }

  const m: Json = r.object(raw, 'model', '', FIELDS.model) ?? {};
  let init = 'scratch';
  if (m.init !== undefined && m.init !== 'scratch') {
    init = r.path(m, 'init', 'model') ?? 'scratch';
    if (m.size !== undefined) {
      r.fail('model.size', 'is only for "init": "scratch"; a model directory has its own shape');
    }
  }
  const s: Json = r.object(m, 'size', 'model', FIELDS.size) ?? {};
  const d = DEFAULT_SCRATCH_SIZE;
  const size: ModelSize = {
    hiddenSize: r.integer(s, 'hiddenSize', 'model.size', 1, d.hiddenSize),
    numHiddenLayers: r.integer(s, 'numHiddenLayers', 'model.size', 1, d.numHiddenLayers),
    numAttentionHeads: r.integer(s, 'numAttentionHeads', 'model.size', 1, d.numAttentionHeads),
    intermediateSize: r.integer(s, 'intermediateSize', 'model.size', 1, d.intermediateSize),
    maxPositionEmbeddings: r.integer(
      s,
      'maxPositionEmbeddings',
      'model.size',
      3,
      d.maxPositionEmbeddings,
    ),
  };
  if (size.hiddenSize % size.numAttentionHeads !== 0) {
    r.fail(
      'model.size.numAttentionHeads',
      `(${size.numAttentionHeads}) must divide model.size.hiddenSize (${size.hiddenSize})`,
    );
  }
  const probability = (obj: Json, key: string, prefix: string, fallback: number): number =>
    r.number(obj, key, prefix, { fallback, min: 0, below: 1, describe: 'a number in [0, 1)' });
  const dropout = probability(m, 'dropout', 'model', 0.1);

  const maxLength = r.integer(raw, 'maxLength', '', 3, 128);
  if (init === 'scratch' && maxLength > size.maxPositionEmbeddings) {
    r.fail(
      'maxLength',
      `(${maxLength}) must not exceed model.size.maxPositionEmbeddings (${size.maxPositionEmbeddings})`,
    );
  }
  const k: Json = r.object(raw, 'masking', '', FIELDS.masking) ?? {};
  const masking = {
    probability: r.number(k, 'probability', 'masking', {
      fallback: 0.15,
      above: 0,
      below: 1,
      describe: 'a number in (0, 1)',
    }),
    mask: probability(k, 'mask', 'masking', 0.8),
    random: probability(k, 'random', 'masking', 0.1),
  };
  if (masking.mask + masking.random > 1) {
    r.fail('masking.random', `(${masking.random}) plus masking.mask (${masking.mask}) exceeds 1`);
  }
  const maxSteps = r.integer(raw, 'maxSteps', '', 1);

  const o: Json = r.object(raw, 'optimizer', '', FIELDS.optimizer) ?? {};
  let betas: [number, number] = [0.9, 0.999];
  if (o.betas !== undefined) {
    const b = o.betas;
    if (
      !Array.isArray(b) ||
      b.length !== 2 ||
      !b.every((x) => typeof x === 'number' && x >= 0 && x < 1)
    ) {
      r.fail('optimizer.betas', `must be two numbers in [0, 1), got ${show(b)}`);
    } else {
      betas = [b[0] as number, b[1] as number];
    }
  }
  const positive = { above: 0, describe: 'a positive number' };
  const optimizer = {
    lr: r.number(o, 'lr', 'optimizer', { ...positive, fallback: 5e-4 }),
    weightDecay: r.number(o, 'weightDecay', 'optimizer', {
      fallback: 0.01,
      min: 0,
      describe: 'a number ≥ 0',
    }),
    betas,
    eps: r.number(o, 'eps', 'optimizer', { ...positive, fallback: 1e-6 }),
  };
  const warmupSteps = r.integer(raw, 'warmupSteps', '', 0, Math.ceil(maxSteps / 100));
  if (warmupSteps > maxSteps) {
    r.fail('warmupSteps', `(${warmupSteps}) must not exceed maxSteps (${maxSteps})`);
  }

  let device = 'cpu';
  if (raw.device !== undefined) {
    if (typeof raw.device !== 'string' || parseDevice(raw.device) === null) {
      r.fail('device', `must be "cpu", "cuda" or "cuda:N", got ${show(raw.device)}`);
    } else {
      device = raw.device;
    }
  }
  const dtype = r.choice(raw, 'dtype', '', ['float32', 'bfloat16', 'float16'] as const, 'float32');
  if (dtype !== 'float32' && !device.startsWith('cuda')) {
    r.fail('dtype', `"${dtype}" needs a CUDA device (device is "${device}"); use "float32" on CPU`);
  }
  let threads: number | 'auto' = 'auto';
  if (raw.threads !== undefined && raw.threads !== 'auto') {
    threads = r.number(raw, 'threads', '', {
      integer: true,
      min: 1,
      max: 4096,
      fallback: 1,
      describe: '"auto" or an integer from 1 to 4096',
    });
  }

  const config: PretrainConfig = {
    text,
    validation: { format: validation.format, paths: [...validation.paths] },
    tokenizer,
    model: { init, size: init === 'scratch' ? size : null, dropout },
    maxLength,
    batchSize: r.integer(raw, 'batchSize', '', 1, 64),
    masking,
    maxSteps,
    optimizer,
    warmupSteps,
    clipNorm: r.number(raw, 'clipNorm', '', {
      fallback: 1,
      min: 0,
      describe: 'a number ≥ 0 (0 turns clipping off)',
    }),
    seed: r.integer(raw, 'seed', '', 0, 100, 0xffffffff),
    evalEvery: r.integer(raw, 'evalEvery', '', 1, 500),
    evalParagraphs: r.integer(raw, 'evalParagraphs', '', 1, 1000),
    output: r.path(raw, 'output', '') ?? '',
    device,
    dtype,
    threads,
    logEvery: r.integer(raw, 'logEvery', '', 1, 50),
  };
  if (r.issues.length > 0) throw new TrainConfigError(where, r.issues);
  return config;
}

/**
 * Reads, parses and validates a `pretrain.json`; `edit` changes the parsed object before
 * validation (command-line overrides are checked like the fields they replace).
 *
 * @throws TrainConfigError for invalid content; Error when the file cannot be read or parsed.
 */
export async function loadPretrainConfig(
  file: string,
  edit?: (raw: Json) => void,
): Promise<PretrainConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new Error(
      `${file}: cannot read the pretraining config (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message})`);
  }
  if (edit && isObject(raw)) edit(raw);
  return parsePretrainConfig(raw, file, { baseDir: path.dirname(path.resolve(file)) });
}
