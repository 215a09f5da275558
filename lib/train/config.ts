/**
 * `train.json`: what `koner train --config train.json` reads. Every field is validated before
 * training starts, all problems are reported at once, each naming its field path
 * (`optimizer.lr`), unknown fields included (with a "did you mean" for near misses and for the
 * reference project's snake_case names), and relative paths are resolved against the config
 * file's directory.
 *
 * Defaults depend on `model.init`, the one field that decides the recipe:
 *
 * - a pretrained encoder (a model directory): {@link PRETRAINED_RECIPE}, the reference
 *   KoBERT-CRF project's fine-tuning settings (eagle705/pytorch-bert-crf-ner): AdamW with
 *   lr 5e-5, eps 1e-8, weight decay 0.01 except biases and LayerNorm, dropout 0.1, gradient
 *   clipping at norm 1.0, seed 100; warmup 10% (the reference declares `warmup_proportion: 0.1`
 *   but passes `warmup_steps: 0` to its scheduler; koner applies the declared 10%).
 * - `"scratch"`: {@link SCRATCH_RECIPE} and {@link DEFAULT_SCRATCH_SIZE}, a small encoder with a
 *   10× higher peak rate and more epochs. A starting point, not a tuned result.
 *
 * A minimal file:
 *
 * ```json
 * {
 *   "corpus": { "format": "kmou", "train": "data/kmou/train", "validation": "data/kmou/val" },
 *   "model": { "init": "models/kobert" },
 *   "output": "runs/kobert-crf"
 * }
 * ```
 *
 * @packageDocumentation
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { parseDevice } from '../device.js';
import { HEAD_KINDS, type HeadKind } from '../model/config.js';
import { bundledTokenizerFiles } from '../model/default-model.js';
import { readJsonFile } from '../text-file.js';

/** Corpus file formats `corpus.format` accepts. */
export type CorpusFormat = 'kmou' | 'conll';
/** Tensor types for the encoder's forward and backward; the CRF always runs in float32. */
export type TrainDtype = 'float32' | 'bfloat16' | 'float16';
/** Validation metrics early stopping and the best checkpoint can follow. */
export type EarlyStopMetric = 'entityF1' | 'tokenMacroF1';

/** The shape of an encoder trained from scratch. */
export interface ModelSize {
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  /** Longest input in pieces the encoder can take; `maxLength` must not exceed it. */
  maxPositionEmbeddings: number;
}

/** Tokenizer files: the SentencePiece model and the JSON vocabulary with the model's ids. */
export interface TokenizerFiles {
  model: string;
  vocab: string;
}

/** The validated, resolved `train.json`: every default filled in, every path absolute. */
export interface TrainConfig {
  corpus: {
    /** `kmou` (a directory of KMOU files, or files) or `conll` (BIO files). Required. */
    format: CorpusFormat;
    /** Training data: one path or a list (JSON accepts either). Required. */
    train: string[];
    /** Validation data, for evaluation, early stopping and the best checkpoint. Required. */
    validation: string[];
  };
  /**
   * Default: KoBERT's files in `../shared/data/kobert-tokenizer/` beside the package root, when
   * they exist there, else the bundled model's copies (`models/kmou-small/tokenizer.model` and
   * `vocab.json`); otherwise the field is required. The tokenizer of a pretrained encoder must
   * be the one it was trained with.
   */
  tokenizer: TokenizerFiles;
  model: {
    /** `"scratch"`, or the (absolute) path of a model directory to start from. Required. */
    init: 'scratch' | string;
    /** The encoder's shape; only for `"scratch"` (a pretrained encoder has its own). */
    size: ModelSize | null;
    /** Head over the encoder (default `crf`, as the reference). */
    head: HeadKind;
    /**
     * Dropout probability of the encoder (hidden and attention) and of the head's input
     * (default 0.1, as the reference).
     */
    dropout: number;
    /** Hidden size per direction of a bilstm/bigru head (default hiddenSize / 2). */
    rnnHiddenSize: number | null;
    /**
     * Weight of an auxiliary POS loss beside the tagging loss (default `null`: no POS head). The
     * targets are the corpus's gold morphemes (KMOU only), one Sejong tag per piece
     * (`lib/labels/pos.ts`); the head is used in training only.
     */
    posWeight: number | null;
    /**
     * Adds the syllable channel (default false): each piece's syllables, embedded and averaged
     * into its embedding (`lib/tokenizer/syllables.ts`). A model directory that has one keeps it.
     */
    syllables: boolean;
  };
  /**
   * Longest input in pieces, [CLS] and [SEP] included (default 128). A longer training sentence
   * is not truncated: it is split into consecutive, non-overlapping windows of at most
   * `maxLength − 2` pieces, each wrapped in [CLS]/[SEP] and trained on as its own example, so no
   * entity label is ever thrown away. (The reference truncated at 30 pieces.)
   */
  maxLength: number;
  /**
   * Sentences (windows) per micro-batch on each worker (default 32). The effective batch of an
   * optimizer step is `batchSize × gradAccumulation × workers`. The reference used 256 sentences
   * of at most 30 pieces; with 128-piece inputs, 32 is the BERT paper's fine-tuning batch and fits
   * a CPU. Set `gradAccumulation: 8` to match the reference's step count.
   */
  batchSize: number;
  /** Most padded tokens (sentences × longest) per micro-batch; `null` (default) for no limit. */
  batchTokens: number | null;
  /** Passes over the training data (default 10 pretrained, 30 from scratch). */
  epochs: number;
  /** When set, the run is exactly this many optimizer steps, overriding `epochs`. */
  maxSteps: number | null;
  /** AdamW; weight decay applies to every parameter except biases and LayerNorm weights. */
  optimizer: {
    /** Peak learning rate (default 5e-5 pretrained, 5e-4 from scratch). */
    lr: number;
    /** Decoupled weight decay (default 0.01). */
    weightDecay: number;
    /** Adam's β1, β2 (default [0.9, 0.999]). */
    betas: [number, number];
    /** Adam's ε (default 1e-8). */
    eps: number;
  };
  /**
   * Linear warmup from 0 to `optimizer.lr`, then linear decay to 0 at the last step. Warmup is
   * `warmupRatio` of all optimizer steps (default 0.1, rounded up) or `warmupSteps`; give one.
   */
  schedule:
    | { kind: 'linear'; warmupRatio: number; warmupSteps?: undefined }
    | { kind: 'linear'; warmupSteps: number; warmupRatio?: undefined };
  /** Clip the global gradient norm to this after accumulation (default 1.0); 0 turns it off. */
  clipNorm: number;
  /** Micro-batches whose gradients add up to one optimizer step (default 1). */
  gradAccumulation: number;
  /** Seed of initialisation, dropout and data order, an unsigned 32-bit integer (default 100). */
  seed: number;
  /** Evaluate every this many optimizer steps; 0 (default) evaluates at the end of each epoch. */
  evalEvery: number;
  /**
   * Stop after `patience` evaluations in a row without the metric improving by more than
   * `minDelta` (default patience 3 pretrained, 5 from scratch; metric `entityF1`, the validation
   * entity micro F1; minDelta 0). `null` (or `false`) turns early stopping off; the best
   * checkpoint then follows validation entity F1.
   */
  earlyStopping: { patience: number; metric: EarlyStopMetric; minDelta: number } | null;
  /**
   * Knowledge distillation (default `null`: none). A `teacher` model directory (same tokenizer
   * and labels) gives every training piece its tag distribution, which the model learns with
   * weight `weight` (default 1) at `temperature` (default 1) beside the gold tags; with `text`
   * (gzip or plain files, one paragraph per line), its first `paragraphs` paragraphs (default
   * 10,000; those sharing text with the validation set are dropped) join the training data as
   * unlabelled sentences, taught by the teacher alone.
   */
  distill: {
    teacher: string;
    weight: number;
    temperature: number;
    text: string[];
    paragraphs: number;
  } | null;
  /** Output directory: checkpoints `best/` and `last/`, `metrics.jsonl`. Required. */
  output: string;
  /** `cpu` (default), `cuda` or `cuda:N`. */
  device: string;
  /** `float32` (default); `bfloat16` and `float16` (mixed precision) need a CUDA device. */
  dtype: TrainDtype;
  /** LibTorch intra-op threads per worker; `auto` (default) divides the cores among workers. */
  threads: number | 'auto';
  /** Plain-log mode: a progress line and a `metrics.jsonl` summary every this many steps (50). */
  logEvery: number;
}

/** The defaults that depend on `model.init`. */
export interface RecipeDefaults {
  lr: number;
  weightDecay: number;
  betas: [number, number];
  eps: number;
  warmupRatio: number;
  clipNorm: number;
  dropout: number;
  epochs: number;
  batchSize: number;
  maxLength: number;
  patience: number;
  gradAccumulation: number;
  seed: number;
  evalEvery: number;
  logEvery: number;
}

/** Fine-tuning a pretrained encoder: the reference project's recipe (see the module comment). */
export const PRETRAINED_RECIPE: Readonly<RecipeDefaults> = Object.freeze({
  lr: 5e-5,
  weightDecay: 0.01,
  betas: [0.9, 0.999] as [number, number],
  eps: 1e-8,
  warmupRatio: 0.1,
  clipNorm: 1.0,
  dropout: 0.1,
  epochs: 10,
  batchSize: 32,
  maxLength: 128,
  patience: 3,
  gradAccumulation: 1,
  seed: 100,
  evalEvery: 0,
  logEvery: 50,
});

/**
 * Training from scratch: nothing pretrained to preserve, so a 10× higher peak rate (5e-4, usual
 * for small post-LayerNorm BERTs with warmup) and more epochs (30) with more patience (5).
 */
export const SCRATCH_RECIPE: Readonly<RecipeDefaults> = Object.freeze({
  ...PRETRAINED_RECIPE,
  lr: 5e-4,
  epochs: 30,
  patience: 5,
});

/** A small encoder (BERT-mini's shape; ~5M parameters with KoBERT's 8,002-piece vocabulary). */
export const DEFAULT_SCRATCH_SIZE: Readonly<ModelSize> = Object.freeze({
  hiddenSize: 256,
  numHiddenLayers: 4,
  numAttentionHeads: 4,
  intermediateSize: 1024,
  maxPositionEmbeddings: 512,
});

/** The recipe for a given `model.init`. */
export function recipeFor(init: string): Readonly<RecipeDefaults> {
  return init === 'scratch' ? SCRATCH_RECIPE : PRETRAINED_RECIPE;
}

/** One problem with a config. */
export interface ConfigIssue {
  /** Dotted path of the field, e.g. `optimizer.lr` or `corpus.train[1]`. */
  field: string;
  /** What is wrong, e.g. `must be a positive number, got -1`. */
  problem: string;
}

/** An invalid `train.json`: every problem found, each naming its field. */
export class TrainConfigError extends Error {
  constructor(
    readonly where: string,
    readonly issues: readonly ConfigIssue[],
  ) {
    const lines = issues.map((i) => `field "${i.field}" ${i.problem}`);
    super(
      lines.length === 1
        ? `${where}: ${lines[0]}`
        : `${where}: ${lines.length} problems:\n  ${lines.join('\n  ')}`,
    );
    this.name = 'TrainConfigError';
  }
}

const KOBERT_TOKENIZER = {
  dir: path.join('..', 'shared', 'data', 'kobert-tokenizer'),
  model: 'tokenizer_78b3253a26.model',
  vocab: 'kobertvocab_f38b8a4d6d.json',
};

let packageRootCache: string | null | undefined;

/**
 * The koner package root: the nearest directory above this module whose package.json is named
 * `koner` (works from `lib/train/` under tsx and from `dist/train/` once built). Null if none.
 */
export function packageRoot(): string | null {
  if (packageRootCache !== undefined) return packageRootCache;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  packageRootCache = null;
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        if ((JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown }).name === 'koner') {
          packageRootCache = dir;
          break;
        }
      } catch {
        // An unreadable package.json is not ours; keep looking upwards.
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return packageRootCache;
}

/**
 * KoBERT's tokenizer files: beside the package root (the repository's data) when both exist
 * there, else the bundled model's copies (an installed package); null when neither exists.
 */
export function defaultTokenizerFiles(): TokenizerFiles | null {
  const root = packageRoot();
  if (root === null) return null;
  const dir = path.resolve(root, KOBERT_TOKENIZER.dir);
  const shared = {
    model: path.join(dir, KOBERT_TOKENIZER.model),
    vocab: path.join(dir, KOBERT_TOKENIZER.vocab),
  };
  for (const files of [shared, bundledTokenizerFiles()]) {
    if (existsSync(files.model) && existsSync(files.vocab)) return files;
  }
  return null;
}

/** Options of {@link parseTrainConfig}. */
export interface ParseTrainConfigOptions {
  /** Directory relative paths are resolved against (default the directory of `where`). */
  baseDir?: string;
  /** The tokenizer used when the config names none (default {@link defaultTokenizerFiles}). */
  defaultTokenizer?: TokenizerFiles | null;
}

export type Json = Record<string, unknown>;

const FIELDS = {
  top: [
    '$schema',
    'corpus',
    'tokenizer',
    'model',
    'maxLength',
    'batchSize',
    'batchTokens',
    'epochs',
    'maxSteps',
    'optimizer',
    'schedule',
    'clipNorm',
    'gradAccumulation',
    'seed',
    'evalEvery',
    'earlyStopping',
    'distill',
    'output',
    'device',
    'dtype',
    'threads',
    'logEvery',
  ],
  corpus: ['format', 'train', 'validation'],
  distill: ['teacher', 'weight', 'temperature', 'text', 'paragraphs'],
  tokenizer: ['model', 'vocab'],
  model: ['init', 'size', 'head', 'dropout', 'rnnHiddenSize', 'posWeight', 'syllables'],
  size: [
    'hiddenSize',
    'numHiddenLayers',
    'numAttentionHeads',
    'intermediateSize',
    'maxPositionEmbeddings',
  ],
  optimizer: ['lr', 'weightDecay', 'betas', 'eps'],
  schedule: ['kind', 'warmupRatio', 'warmupSteps'],
  earlyStopping: ['patience', 'metric', 'minDelta'],
} as const;

// Names people bring from other trainers (the reference's config.json, transformers'
// TrainingArguments), normalised (lower case, no `_`/`-`), mapped to koner's field path.
const ALIASES: Record<string, string> = {
  learningrate: 'optimizer.lr',
  lr: 'optimizer.lr',
  weightdecay: 'optimizer.weightDecay',
  adamepsilon: 'optimizer.eps',
  adameps: 'optimizer.eps',
  epsilon: 'optimizer.eps',
  adambeta1: 'optimizer.betas',
  adambeta2: 'optimizer.betas',
  warmupproportion: 'schedule.warmupRatio',
  warmupratio: 'schedule.warmupRatio',
  warmupsteps: 'schedule.warmupSteps',
  maxgradnorm: 'clipNorm',
  gradclip: 'clipNorm',
  gradientclipping: 'clipNorm',
  gradientaccumulationsteps: 'gradAccumulation',
  gradientaccumulation: 'gradAccumulation',
  maxlen: 'maxLength',
  maxseqlength: 'maxLength',
  maxseqlen: 'maxLength',
  maxsequencelength: 'maxLength',
  trainbatchsize: 'batchSize',
  perdevicetrainbatchsize: 'batchSize',
  numepochs: 'epochs',
  numtrainepochs: 'epochs',
  outputdir: 'output',
  dropout: 'model.dropout',
  hiddendropoutprob: 'model.dropout',
  head: 'model.head',
  patience: 'earlyStopping.patience',
  earlystoppingpatience: 'earlyStopping.patience',
  loggingsteps: 'logEvery',
  summarystep: 'logEvery',
  evalsteps: 'evalEvery',
  savesteps: 'evalEvery',
  hiddensize: 'model.size.hiddenSize',
  numhiddenlayers: 'model.size.numHiddenLayers',
  numattentionheads: 'model.size.numAttentionHeads',
  intermediatesize: 'model.size.intermediateSize',
  maxpositionembeddings: 'model.size.maxPositionEmbeddings',
  size: 'model.size',
  init: 'model.init',
  validationdata: 'corpus.validation',
  train: 'corpus.train',
  validation: 'corpus.validation',
  dev: 'corpus.validation',
  format: 'corpus.format',
  vocab: 'tokenizer.vocab',
};

function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[_\-\s]/g, '');
}

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, the commonest
// typo (`haed` for `head`).
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The field an unknown key most likely meant, as a full dotted path, or undefined.
 *
 * @param key the unknown key.
 * @param prefix path of the object holding it (`''` at the top).
 * @param known the keys that object accepts.
 */
export function suggestField(
  key: string,
  prefix: string,
  known: readonly string[],
): string | undefined {
  const join = (k: string): string => (prefix ? `${prefix}.${k}` : k);
  const n = normalizeName(key);
  const sameLevel = known.find((k) => normalizeName(k) === n);
  if (sameLevel) return join(sameLevel);
  // hasOwn: a key such as `constructor` must not find Object.prototype's members.
  const alias = Object.hasOwn(ALIASES, n) ? ALIASES[n] : undefined;
  if (alias && alias !== join(key)) return alias;
  // An abbreviation (`valid` for `validation`).
  const longer = n.length >= 3 ? known.find((k) => normalizeName(k).startsWith(n)) : undefined;
  if (longer) return join(longer);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(n, normalizeName(k));
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  const allowed = Math.max(1, Math.floor(n.length / 3));
  return best !== undefined && bestDistance <= allowed ? join(best) : undefined;
}

export function show(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Collects issues while reading; each getter returns a usable stand-in after an error. Shared by
 * the other JSON configs (lib/pretrain/config.ts).
 */
export class Reader {
  readonly issues: ConfigIssue[] = [];

  constructor(private readonly baseDir: string) {}

  fail(field: string, problem: string): void {
    this.issues.push({ field, problem });
  }

  /** An optional nested object; unknown keys are reported. */
  object(parent: Json, key: string, prefix: string, known: readonly string[]): Json | undefined {
    const field = prefix ? `${prefix}.${key}` : key;
    const value = parent[key];
    if (value === undefined) return undefined;
    if (!isObject(value)) {
      this.fail(field, `must be an object, got ${show(value)}`);
      return undefined;
    }
    this.unknown(value, field, known);
    return value;
  }

  unknown(obj: Json, prefix: string, known: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (known.includes(key)) continue;
      const field = prefix ? `${prefix}.${key}` : key;
      const suggestion = suggestField(key, prefix, known);
      this.fail(
        field,
        `is not a known field${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`,
      );
    }
  }

  /** A number within bounds; `fallback` when absent (absent and no fallback: required). */
  number(
    obj: Json,
    key: string,
    prefix: string,
    rule: {
      fallback?: number;
      integer?: boolean;
      min?: number;
      max?: number;
      above?: number;
      below?: number;
      describe: string;
    },
  ): number {
    const field = prefix ? `${prefix}.${key}` : key;
    const value = obj[key];
    if (value === undefined) {
      if (rule.fallback === undefined) this.fail(field, `is required: ${rule.describe}`);
      return rule.fallback ?? rule.min ?? 1;
    }
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      (!rule.integer || Number.isInteger(value)) &&
      (rule.min === undefined || value >= rule.min) &&
      (rule.max === undefined || value <= rule.max) &&
      (rule.above === undefined || value > rule.above) &&
      (rule.below === undefined || value < rule.below);
    if (!ok) {
      this.fail(field, `must be ${rule.describe}, got ${show(value)}`);
      return rule.fallback ?? rule.min ?? 1;
    }
    return value as number;
  }

  /** An integer ≥ min (and ≤ max), default `fallback`. */
  integer(
    obj: Json,
    key: string,
    prefix: string,
    min: number,
    fallback?: number,
    max?: number,
  ): number {
    return this.number(obj, key, prefix, {
      fallback,
      integer: true,
      min,
      max,
      describe: max === undefined ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`,
    });
  }

  choice<T extends string>(
    obj: Json,
    key: string,
    prefix: string,
    choices: readonly T[],
    fallback?: T,
  ): T {
    const field = prefix ? `${prefix}.${key}` : key;
    const value = obj[key];
    const list = choices.map((c) => `"${c}"`).join(', ');
    if (value === undefined) {
      if (fallback === undefined) this.fail(field, `is required: one of ${list}`);
      return fallback ?? choices[0];
    }
    if (!choices.includes(value as T)) {
      this.fail(field, `must be one of ${list}, got ${show(value)}`);
      return fallback ?? choices[0];
    }
    return value as T;
  }

  /** A path, resolved against the config's directory; required unless `optional`. */
  path(obj: Json, key: string, prefix: string, optional = false): string | undefined {
    const field = prefix ? `${prefix}.${key}` : key;
    const value = obj[key];
    if (value === undefined) {
      if (!optional) this.fail(field, 'is required: a path');
      return undefined;
    }
    if (typeof value !== 'string' || value.trim() === '') {
      this.fail(field, `must be a non-empty path string, got ${show(value)}`);
      return undefined;
    }
    if (value.includes('\0')) {
      this.fail(field, 'must not contain a NUL character');
      return undefined;
    }
    return this.resolve(value);
  }

  /** One path or a non-empty list of paths. */
  paths(obj: Json, key: string, prefix: string): string[] {
    const field = prefix ? `${prefix}.${key}` : key;
    const value = obj[key];
    if (Array.isArray(value)) {
      if (value.length === 0) this.fail(field, 'must list at least one path');
      const out: string[] = [];
      value.forEach((item, i) => {
        const resolved = this.path({ [`${key}[${i}]`]: item }, `${key}[${i}]`, prefix);
        if (resolved !== undefined) out.push(resolved);
      });
      return out;
    }
    const one = this.path(obj, key, prefix);
    return one === undefined ? [] : [one];
  }

  resolve(p: string): string {
    return path.resolve(this.baseDir, p);
  }
}

/**
 * Validates a parsed `train.json` and fills in the defaults.
 *
 * @param raw the parsed JSON.
 * @param where the config file's path: named in errors, and its directory anchors relative paths
 *   (unless `options.baseDir` is given).
 * @throws TrainConfigError listing every problem, each with its field path.
 */
export function parseTrainConfig(
  raw: unknown,
  where = 'train.json',
  options: ParseTrainConfigOptions = {},
): TrainConfig {
  if (!isObject(raw)) {
    throw new TrainConfigError(where, [
      { field: '(root)', problem: `must be a JSON object, got ${show(raw)}` },
    ]);
  }
  const r = new Reader(options.baseDir ?? path.dirname(path.resolve(where)));
  r.unknown(raw, '', FIELDS.top);

  // model.init first: it picks the recipe every other default comes from.
  const modelRaw = r.object(raw, 'model', '', FIELDS.model);
  let init: string = 'scratch';
  if (modelRaw === undefined) {
    if (raw.model === undefined) {
      r.fail('model', 'is required: an object with "init" ("scratch" or a model directory)');
    }
  } else if (modelRaw.init === undefined) {
    r.fail('model.init', 'is required: "scratch" or the path of a model directory');
  } else if (typeof modelRaw.init !== 'string' || modelRaw.init.trim() === '') {
    r.fail('model.init', `must be "scratch" or a model directory path, got ${show(modelRaw.init)}`);
  } else {
    // Only the exact word means scratch; a directory called "scratch" is "./scratch".
    init = modelRaw.init === 'scratch' ? 'scratch' : r.resolve(modelRaw.init);
  }
  const recipe = recipeFor(init);
  const m: Json = modelRaw ?? {};

  let size: ModelSize | null = null;
  const sizeRaw = r.object(m, 'size', 'model', FIELDS.size);
  if (init !== 'scratch' && m.size !== undefined) {
    r.fail(
      'model.size',
      'is only for "init": "scratch"; a pretrained encoder keeps the shape in its config.json',
    );
  } else if (init === 'scratch') {
    const s: Json = sizeRaw ?? {};
    const d = DEFAULT_SCRATCH_SIZE;
    size = {
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
  }
  const head = r.choice(m, 'head', 'model', HEAD_KINDS, 'crf');
  const model: TrainConfig['model'] = {
    init,
    size,
    head,
    dropout: r.number(m, 'dropout', 'model', {
      fallback: recipe.dropout,
      min: 0,
      below: 1,
      describe: 'a probability in [0, 1)',
    }),
    rnnHiddenSize: null,
    posWeight: null,
    syllables: false,
  };
  if (m.posWeight !== undefined && m.posWeight !== null) {
    model.posWeight = r.number(m, 'posWeight', 'model', {
      above: 0,
      describe: 'a positive number (null: no POS head)',
    });
  }
  if (m.syllables !== undefined) {
    if (typeof m.syllables !== 'boolean') {
      r.fail('model.syllables', `must be true or false, got ${show(m.syllables)}`);
    } else {
      model.syllables = m.syllables;
    }
  }
  if (m.rnnHiddenSize !== undefined) {
    if (head !== 'bilstm-crf' && head !== 'bigru-crf') {
      r.fail(
        'model.rnnHiddenSize',
        `is only for the bilstm-crf and bigru-crf heads (head is "${head}")`,
      );
    } else {
      model.rnnHiddenSize = r.integer(m, 'rnnHiddenSize', 'model', 1);
    }
  }

  const corpusRaw = r.object(raw, 'corpus', '', FIELDS.corpus);
  if (raw.corpus === undefined) {
    r.fail('corpus', 'is required: { "format", "train", "validation" }');
  }
  const c: Json = corpusRaw ?? {};
  // Without a corpus object its missing members were already reported as one problem.
  const corpus: TrainConfig['corpus'] = {
    format: corpusRaw ? r.choice(c, 'format', 'corpus', ['kmou', 'conll'] as const) : 'kmou',
    train: corpusRaw ? r.paths(c, 'train', 'corpus') : [],
    validation: corpusRaw ? r.paths(c, 'validation', 'corpus') : [],
  };
  if (model.posWeight !== null && corpus.format !== 'kmou') {
    r.fail(
      'model.posWeight',
      `needs the gold morphemes of a KMOU corpus (corpus.format is "${corpus.format}")`,
    );
  }

  const tokRaw = r.object(raw, 'tokenizer', '', FIELDS.tokenizer);
  let tokenizer: TokenizerFiles;
  if (tokRaw !== undefined) {
    tokenizer = {
      model: r.path(tokRaw, 'model', 'tokenizer') ?? '',
      vocab: r.path(tokRaw, 'vocab', 'tokenizer') ?? '',
    };
  } else {
    const fallback =
      options.defaultTokenizer === undefined ? defaultTokenizerFiles() : options.defaultTokenizer;
    if (fallback === null && raw.tokenizer === undefined) {
      const root = packageRoot();
      const looked = root ? ` (looked in ${path.resolve(root, KOBERT_TOKENIZER.dir)})` : '';
      r.fail('tokenizer', `is required: { "model", "vocab" }; no default tokenizer found${looked}`);
    }
    tokenizer = fallback ?? { model: '', vocab: '' };
  }

  const issuesBefore = r.issues.length;
  const maxLength = r.integer(raw, 'maxLength', '', 3, recipe.maxLength);
  // An invalid maxLength reads as the default; comparing that with other fields would quote a
  // value the file never gave.
  const maxLengthValid = r.issues.length === issuesBefore;
  if (maxLengthValid && size && maxLength > size.maxPositionEmbeddings) {
    r.fail(
      'maxLength',
      `(${maxLength}) must not exceed model.size.maxPositionEmbeddings (${size.maxPositionEmbeddings})`,
    );
  }
  const batchSize = r.integer(raw, 'batchSize', '', 1, recipe.batchSize);
  let batchTokens: number | null = null;
  if (raw.batchTokens !== undefined && raw.batchTokens !== null) {
    batchTokens = r.integer(raw, 'batchTokens', '', 1);
    if (maxLengthValid && batchTokens < maxLength) {
      r.fail(
        'batchTokens',
        `(${batchTokens}) must be at least maxLength (${maxLength}) so every input fits a batch`,
      );
    }
  }
  const epochs = r.integer(raw, 'epochs', '', 1, recipe.epochs);
  const maxSteps =
    raw.maxSteps === undefined || raw.maxSteps === null ? null : r.integer(raw, 'maxSteps', '', 1);

  const o: Json = r.object(raw, 'optimizer', '', FIELDS.optimizer) ?? {};
  let betas: [number, number] = [recipe.betas[0], recipe.betas[1]];
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
  const optimizer: TrainConfig['optimizer'] = {
    lr: r.number(o, 'lr', 'optimizer', {
      fallback: recipe.lr,
      above: 0,
      describe: 'a positive number',
    }),
    weightDecay: r.number(o, 'weightDecay', 'optimizer', {
      fallback: recipe.weightDecay,
      min: 0,
      describe: 'a number ≥ 0',
    }),
    betas,
    eps: r.number(o, 'eps', 'optimizer', {
      fallback: recipe.eps,
      above: 0,
      describe: 'a positive number',
    }),
  };

  const s: Json = r.object(raw, 'schedule', '', FIELDS.schedule) ?? {};
  r.choice(s, 'kind', 'schedule', ['linear'] as const, 'linear');
  let schedule: TrainConfig['schedule'];
  if (s.warmupRatio !== undefined && s.warmupSteps !== undefined) {
    r.fail(
      'schedule.warmupSteps',
      'cannot be given together with schedule.warmupRatio: choose one',
    );
    schedule = { kind: 'linear', warmupRatio: recipe.warmupRatio };
  } else if (s.warmupSteps !== undefined) {
    schedule = { kind: 'linear', warmupSteps: r.integer(s, 'warmupSteps', 'schedule', 0) };
    if (maxSteps !== null && schedule.warmupSteps > maxSteps) {
      r.fail(
        'schedule.warmupSteps',
        `(${schedule.warmupSteps}) must not exceed maxSteps (${maxSteps})`,
      );
    }
  } else {
    schedule = {
      kind: 'linear',
      warmupRatio: r.number(s, 'warmupRatio', 'schedule', {
        fallback: recipe.warmupRatio,
        min: 0,
        below: 1,
        describe: 'a fraction in [0, 1)',
      }),
    };
  }

  let earlyStopping: TrainConfig['earlyStopping'] = null;
  if (raw.earlyStopping !== null && raw.earlyStopping !== false) {
    const e: Json = r.object(raw, 'earlyStopping', '', FIELDS.earlyStopping) ?? {};
    earlyStopping = {
      patience: r.integer(e, 'patience', 'earlyStopping', 1, recipe.patience),
      metric: r.choice(
        e,
        'metric',
        'earlyStopping',
        ['entityF1', 'tokenMacroF1'] as const,
        'entityF1',
      ),
      minDelta: r.number(e, 'minDelta', 'earlyStopping', {
        fallback: 0,
        min: 0,
        below: 1,
        describe: 'a number in [0, 1)',
      }),
    };
  }

  let distill: TrainConfig['distill'] = null;
  if (raw.distill !== undefined && raw.distill !== null) {
    const d: Json = r.object(raw, 'distill', '', FIELDS.distill) ?? {};
    distill = {
      teacher: r.path(d, 'teacher', 'distill') ?? '',
      weight: r.number(d, 'weight', 'distill', {
        fallback: 1,
        above: 0,
        describe: 'a positive number',
      }),
      temperature: r.number(d, 'temperature', 'distill', {
        fallback: 1,
        above: 0,
        describe: 'a positive number',
      }),
      text: d.text === undefined ? [] : r.paths(d, 'text', 'distill'),
      paragraphs: r.integer(d, 'paragraphs', 'distill', 1, 10000),
    };
  }

  const output = r.path(raw, 'output', '') ?? '';
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

  const config: TrainConfig = {
    corpus,
    tokenizer,
    model,
    maxLength,
    batchSize,
    batchTokens,
    epochs,
    maxSteps,
    optimizer,
    schedule,
    clipNorm: r.number(raw, 'clipNorm', '', {
      fallback: recipe.clipNorm,
      min: 0,
      describe: 'a number ≥ 0 (0 turns clipping off)',
    }),
    gradAccumulation: r.integer(raw, 'gradAccumulation', '', 1, recipe.gradAccumulation),
    seed: r.integer(raw, 'seed', '', 0, recipe.seed, 0xffffffff),
    evalEvery: r.integer(raw, 'evalEvery', '', 0, recipe.evalEvery),
    earlyStopping,
    distill,
    output,
    device,
    dtype,
    threads,
    logEvery: r.integer(raw, 'logEvery', '', 1, recipe.logEvery),
  };
  if (r.issues.length > 0) throw new TrainConfigError(where, r.issues);
  return config;
}

/**
 * The config as `train.json` JSON, every default spelled out and every path absolute: what a run
 * saves beside its checkpoints, and what {@link parseTrainConfig} reads back to the same config.
 */
export function trainConfigToJson(config: TrainConfig): Json {
  const model: Json = {
    init: config.model.init,
    head: config.model.head,
    dropout: config.model.dropout,
  };
  if (config.model.size) model.size = { ...config.model.size };
  if (config.model.rnnHiddenSize !== null) model.rnnHiddenSize = config.model.rnnHiddenSize;
  if (config.model.posWeight !== null) model.posWeight = config.model.posWeight;
  if (config.model.syllables) model.syllables = true;
  const schedule: Json =
    config.schedule.warmupSteps !== undefined
      ? { kind: 'linear', warmupSteps: config.schedule.warmupSteps }
      : { kind: 'linear', warmupRatio: config.schedule.warmupRatio };
  return {
    corpus: {
      format: config.corpus.format,
      train: [...config.corpus.train],
      validation: [...config.corpus.validation],
    },
    tokenizer: { ...config.tokenizer },
    model,
    maxLength: config.maxLength,
    batchSize: config.batchSize,
    batchTokens: config.batchTokens,
    epochs: config.epochs,
    maxSteps: config.maxSteps,
    optimizer: { ...config.optimizer, betas: [...config.optimizer.betas] },
    schedule,
    clipNorm: config.clipNorm,
    gradAccumulation: config.gradAccumulation,
    seed: config.seed,
    evalEvery: config.evalEvery,
    earlyStopping: config.earlyStopping ? { ...config.earlyStopping } : null,
    distill: config.distill ? { ...config.distill, text: [...config.distill.text] } : null,
    output: config.output,
    device: config.device,
    dtype: config.dtype,
    threads: config.threads,
    logEvery: config.logEvery,
  };
}

/** Options of {@link loadTrainConfig}. */
export interface LoadTrainConfigOptions extends Omit<ParseTrainConfigOptions, 'baseDir'> {
  /**
   * Edits the parsed JSON object (not called when the file holds no object) before validation,
   * so an override applied here is checked like the field it replaces.
   */
  edit?: (raw: Record<string, unknown>) => void;
}

/**
 * Reads, parses and validates a `train.json` file; relative paths in it are resolved against its
 * directory.
 *
 * @throws TrainConfigError for invalid content; Error when the file cannot be read or parsed.
 */
export async function loadTrainConfig(
  file: string,
  options: LoadTrainConfigOptions = {},
): Promise<TrainConfig> {
  const { edit, ...parseOptions } = options;
  const raw = await readJsonFile(file, 'the training config');
  if (edit && typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    edit(raw as Record<string, unknown>);
  }
  return parseTrainConfig(raw, file, {
    ...parseOptions,
    baseDir: path.dirname(path.resolve(file)),
  });
}

async function kindOf(p: string): Promise<'file' | 'dir' | 'other' | 'missing'> {
  try {
    const s = await stat(p);
    return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other';
  } catch {
    return 'missing';
  }
}

/**
 * Checks what {@link parseTrainConfig} cannot see without the file system, so a typo in a path
 * fails before any data is read: corpus paths exist (KMOU: files or directories; CoNLL: files),
 * the tokenizer files exist, `model.init` holds a readable `config.json` whose
 * `max_position_embeddings` admits `maxLength`, the distillation teacher is a model directory and
 * its text files exist, and `output` is not a file.
 *
 * @throws TrainConfigError listing every problem, each with its field path.
 */
export async function checkTrainConfigPaths(
  config: TrainConfig,
  where = 'train.json',
): Promise<void> {
  const issues: ConfigIssue[] = [];
  const expect = async (
    field: string,
    p: string,
    wanted: readonly ('file' | 'dir')[],
  ): Promise<void> => {
    const kind = await kindOf(p);
    if (kind === 'missing') issues.push({ field, problem: `names ${p}, which does not exist` });
    else if (!wanted.includes(kind as 'file' | 'dir')) {
      issues.push({ field, problem: `names ${p}, which is not a ${wanted.join(' or a ')}` });
    }
  };
  const corpusKinds =
    config.corpus.format === 'kmou' ? (['file', 'dir'] as const) : (['file'] as const);
  for (const key of ['train', 'validation'] as const) {
    const list = config.corpus[key];
    for (let i = 0; i < list.length; i++) {
      await expect(
        list.length === 1 ? `corpus.${key}` : `corpus.${key}[${i}]`,
        list[i],
        corpusKinds,
      );
    }
  }
  await expect('tokenizer.model', config.tokenizer.model, ['file']);
  await expect('tokenizer.vocab', config.tokenizer.vocab, ['file']);
  if (config.distill) {
    await expect('distill.teacher', path.join(config.distill.teacher, 'config.json'), ['file']);
    const text = config.distill.text;
    for (let i = 0; i < text.length; i++) {
      await expect(text.length === 1 ? 'distill.text' : `distill.text[${i}]`, text[i], ['file']);
    }
  }
  if (config.model.init !== 'scratch') {
    const file = path.join(config.model.init, 'config.json');
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(file, 'utf8'));
    } catch (error) {
      const reason =
        (error as NodeJS.ErrnoException).code === 'ENOENT'
          ? 'has no config.json: not a model directory (import a checkpoint with `koner import`)'
          : `has an unreadable config.json (${(error as Error).message})`;
      issues.push({ field: 'model.init', problem: `${config.model.init} ${reason}` });
    }
    if (isObject(raw)) {
      const positions = raw.max_position_embeddings ?? 512;
      if (typeof positions === 'number' && config.maxLength > positions) {
        issues.push({
          field: 'maxLength',
          problem: `(${config.maxLength}) exceeds the pretrained encoder's max_position_embeddings (${positions})`,
        });
      }
    }
  }
  if ((await kindOf(config.output)) === 'file') {
    issues.push({
      field: 'output',
      problem: `names ${config.output}, which is a file, not a directory`,
    });
  }
  if (issues.length > 0) throw new TrainConfigError(where, issues);
}
