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

import { Type, type Static, type TSchema } from '@sinclair/typebox';

import { DEVICE_PATTERN } from '../device.js';
import {
  isObject,
  PATH_FORMAT,
  readConfig,
  show,
  suggestField as suggestAnyField,
  TrainConfigError,
  type ConfigIssue,
  type Json,
  type ReadResult,
} from '../json-config.js';
import { HEAD_KINDS } from '../model/config.js';
import { bundledTokenizerFiles } from '../model/default-model.js';
import { readJsonFile } from '../text-file.js';

export { isObject, show, TrainConfigError, type ConfigIssue, type Json };

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
export const DEFAULT_SCRATCH_SIZE = Object.freeze({
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

// ---------------------------------------------------------------------------------------------
// The schema: the one statement of train.json's shape. The resolved config's type, the defaults,
// the field-path errors and schemas/train.schema.json all come from it (lib/json-config.ts).

/** A file or directory, resolved against the config file's directory. */
export const PathSchema = (description?: string) =>
  Type.String({ format: PATH_FORMAT, description });

/**
 * The field path of `list[i]` of a {@link PathListSchema} field, as errors name it: a list the
 * file may have given as one path is named without an index.
 */
export const pathListField = (field: string, list: readonly string[], i: number): string =>
  list.length === 1 ? field : `${field}[${i}]`;

/** One path, or a list of them (`minItems` 1 unless an empty list is allowed). */
export const PathListSchema = (description: string, options: { default?: string[] } = {}) =>
  Type.Array(Type.String({ format: PATH_FORMAT }), {
    description,
    ...(options.default ? { default: options.default } : { minItems: 1 }),
  });

/**
 * How an ensemble's teachers combine into one distribution per piece:
 * - `marginals`: the mean of each teacher's own CRF marginals (a mixture: where members
 *   disagree, the targets spread over their answers);
 * - `emissions`: one CRF over the teachers' mean emissions with their mean transitions, and its
 *   marginals (a product of experts: what the ensemble's joint Viterbi decoding believes, which
 *   scores above every member, see `scripts/stats/ensemble.ts`). It needs CRF heads.
 */
export type TeacherCombination = 'marginals' | 'emissions';
export const TEACHER_COMBINATIONS: readonly TeacherCombination[] = ['marginals', 'emissions'];

const positive = (description: string, fallback?: number) =>
  Type.Number({ exclusiveMinimum: 0, description, default: fallback });
const fraction = (description: string, fallback?: number) =>
  Type.Number({ minimum: 0, exclusiveMaximum: 1, description, default: fallback });
const count = (minimum: number, description: string, fallback?: number) =>
  Type.Integer({ minimum, description, default: fallback });
const nullable = <T extends TSchema>(schema: T, description: string, fallback: unknown = null) =>
  Type.Union([schema, Type.Null()], { description, default: fallback });

/** The shape of an encoder trained from scratch (defaults {@link DEFAULT_SCRATCH_SIZE}). */
export const ModelSizeSchema = Type.Object({
  hiddenSize: Type.Integer({ minimum: 1, default: DEFAULT_SCRATCH_SIZE.hiddenSize }),
  numHiddenLayers: Type.Integer({ minimum: 1, default: DEFAULT_SCRATCH_SIZE.numHiddenLayers }),
  numAttentionHeads: Type.Integer({
    minimum: 1,
    default: DEFAULT_SCRATCH_SIZE.numAttentionHeads,
    description: 'Must divide hiddenSize.',
  }),
  intermediateSize: Type.Integer({ minimum: 1, default: DEFAULT_SCRATCH_SIZE.intermediateSize }),
  maxPositionEmbeddings: Type.Integer({
    minimum: 3,
    default: DEFAULT_SCRATCH_SIZE.maxPositionEmbeddings,
    description: 'Longest input in pieces the encoder can take; maxLength must not exceed it.',
  }),
});
/** The shape of an encoder trained from scratch. */
export type ModelSize = Static<typeof ModelSizeSchema>;

/** Tokenizer files: the SentencePiece model and the JSON vocabulary with the model's ids. */
export const TokenizerSchema = Type.Object(
  {
    model: PathSchema('The SentencePiece model.'),
    vocab: PathSchema("The JSON vocabulary with the model's ids."),
  },
  {
    description:
      "Default: KoBERT's files in ../shared/data/kobert-tokenizer/ beside the package root, " +
      "when they exist there, else the bundled model's copies. The tokenizer of a pretrained " +
      'encoder must be the one it was trained with.',
  },
);
/** Tokenizer files: the SentencePiece model and the JSON vocabulary with the model's ids. */
export type TokenizerFiles = Static<typeof TokenizerSchema>;

export const DeviceSchema = Type.String({
  pattern: DEVICE_PATTERN,
  title: '"cpu", "cuda" or "cuda:N"',
  default: 'cpu',
  description: 'cpu (default), cuda or cuda:N.',
});
export const DtypeSchema = Type.Union(
  [Type.Literal('float32'), Type.Literal('bfloat16'), Type.Literal('float16')],
  {
    default: 'float32',
    description:
      "Tensor type of the encoder's matrix products, forward and backward (mixed precision: " +
      'weights, optimizer and CRF stay float32). float16 needs a CUDA device; bfloat16 runs on ' +
      'CUDA and on CPUs with AVX512_BF16 or AMX-BF16.',
  },
);
export const ThreadsSchema = Type.Union(
  [Type.Literal('auto'), Type.Integer({ minimum: 1, maximum: 4096 })],
  {
    default: 'auto',
    description: 'LibTorch intra-op threads per worker; auto divides the cores among workers.',
  },
);
export const CorpusFormatSchema = Type.Union([Type.Literal('kmou'), Type.Literal('conll')], {
  description: 'kmou (a directory of KMOU files, or files) or conll (BIO files).',
});
/** Corpus file formats `corpus.format` accepts. */
export type CorpusFormat = Static<typeof CorpusFormatSchema>;
/** Tensor types for the encoder's forward and backward; the CRF always runs in float32. */
export type TrainDtype = Static<typeof DtypeSchema>;

/** AdamW's fields; the defaults of `recipe`. */
export const optimizerSchema = (recipe: Readonly<RecipeDefaults>, description: string) =>
  Type.Object(
    {
      lr: positive('Peak learning rate.', recipe.lr),
      weightDecay: Type.Number({
        minimum: 0,
        default: recipe.weightDecay,
        description: 'Decoupled weight decay.',
      }),
      betas: Type.Tuple([fraction(''), fraction('')], {
        default: [...recipe.betas],
        description: "Adam's β1, β2.",
      }),
      eps: positive("Adam's ε.", recipe.eps),
      layerDecay: Type.Number({
        exclusiveMinimum: 0,
        maximum: 1,
        default: 1,
        description:
          'Layer-wise learning-rate decay: encoder layer i of L trains at lr · layerDecay^(L − i), ' +
          'the embeddings at lr · layerDecay^(L + 1), the heads at lr (1: every parameter at lr).',
      }),
    },
    { default: {}, description },
  );

// A default that differs between the two recipes says so in its description (the emitted schema
// carries the pretrained one).
function byRecipe(key: keyof RecipeDefaults, recipe: Readonly<RecipeDefaults>, text: string) {
  const scratch = SCRATCH_RECIPE[key];
  const differs = JSON.stringify(scratch) !== JSON.stringify(PRETRAINED_RECIPE[key]);
  return {
    default: recipe[key],
    description: differs ? `${text} From scratch the default is ${String(scratch)}.` : text,
  };
}

/** train.json's schema with the defaults of `recipe` (picked by `model.init`). */
function trainSchema(recipe: Readonly<RecipeDefaults>) {
  const scratch = recipe === SCRATCH_RECIPE;
  return Type.Object({
    corpus: Type.Object({
      format: CorpusFormatSchema,
      train: PathListSchema('Training data.'),
      validation: PathListSchema(
        'Validation data, for evaluation, early stopping and the best checkpoint.',
      ),
    }),
    tokenizer: TokenizerSchema,
    model: Type.Object({
      init: Type.Union([Type.Literal('scratch'), PathSchema()], {
        title: '"scratch" or the path of a model directory',
        description: '"scratch", or a model directory to start from (its defaults are the recipe).',
      }),
      size: nullable(
        ModelSizeSchema,
        'The encoder\'s shape; only for "init": "scratch" (a pretrained encoder has its own).',
        scratch ? {} : null,
      ),
      head: Type.Union(
        HEAD_KINDS.map((k) => Type.Literal(k)),
        { default: 'crf', description: 'Head over the encoder.' },
      ),
      dropout: fraction(
        "Dropout probability of the encoder (hidden and attention) and of the head's input.",
        recipe.dropout,
      ),
      rnnHiddenSize: nullable(
        Type.Integer({ minimum: 1 }),
        'Hidden size per direction of a bilstm-crf or bigru-crf head (null: hiddenSize / 2).',
      ),
      posWeight: nullable(
        Type.Number({ exclusiveMinimum: 0 }),
        "Weight of an auxiliary POS loss on the KMOU corpus's gold morphemes (null: no POS head).",
      ),
      syllables: Type.Boolean({
        default: false,
        description: "Adds the syllable channel: each piece's syllables, embedded and averaged.",
      }),
    }),
    maxLength: count(
      3,
      'Longest input in pieces, [CLS] and [SEP] included; longer sentences are split into windows.',
      recipe.maxLength,
    ),
    batchSize: count(1, 'Sentences (windows) per micro-batch on each worker.', recipe.batchSize),
    batchTokens: nullable(
      Type.Integer({ minimum: 1 }),
      'Most padded tokens (sentences × longest) per micro-batch; null for no limit.',
    ),
    epochs: Type.Integer({ minimum: 1, ...byRecipe('epochs', recipe, 'Passes over the data.') }),
    maxSteps: nullable(
      Type.Integer({ minimum: 1 }),
      'When set, the run is exactly this many optimizer steps, overriding epochs.',
    ),
    optimizer: optimizerSchema(
      recipe,
      `AdamW; weight decay applies to every parameter except biases and LayerNorm weights. The lr default from scratch is ${SCRATCH_RECIPE.lr}.`,
    ),
    schedule: Type.Union(
      [
        Type.Object({
          kind: Type.Literal('linear', { default: 'linear' }),
          warmupRatio: fraction('Warmup as a fraction of all optimizer steps.', recipe.warmupRatio),
        }),
        Type.Object({
          kind: Type.Literal('linear', { default: 'linear' }),
          warmupSteps: Type.Integer({ minimum: 0, description: 'Warmup in optimizer steps.' }),
        }),
      ],
      {
        default: {},
        description:
          'Linear warmup from 0 to optimizer.lr, then linear decay to 0 at the last step; ' +
          'give warmupRatio or warmupSteps.',
      },
    ),
    clipNorm: Type.Number({
      minimum: 0,
      default: recipe.clipNorm,
      description: 'Clip the global gradient norm to this after accumulation; 0 turns it off.',
    }),
    gradAccumulation: count(
      1,
      'Micro-batches whose gradients add up to one optimizer step.',
      recipe.gradAccumulation,
    ),
    seed: Type.Integer({
      minimum: 0,
      maximum: 0xffffffff,
      default: recipe.seed,
      description: 'Seed of initialisation, dropout and data order.',
    }),
    evalEvery: count(
      0,
      'Evaluate every this many optimizer steps; 0 evaluates at the end of each epoch.',
      recipe.evalEvery,
    ),
    earlyStopping: nullable(
      Type.Object({
        patience: Type.Integer({
          minimum: 1,
          ...byRecipe('patience', recipe, 'Evaluations in a row without improvement.'),
        }),
        metric: Type.Union([Type.Literal('entityF1'), Type.Literal('tokenMacroF1')], {
          default: 'entityF1',
        }),
        minDelta: fraction('Smallest change that counts as an improvement.', 0),
      }),
      'Stop after patience evaluations without the metric improving by more than minDelta; ' +
        'null (or false) turns it off and the best checkpoint follows validation entity F1.',
      {},
    ),
    distill: nullable(
      Type.Object({
        teacher: PathListSchema(
          'A model directory with the same tokenizer and labels, or several (an ensemble: ' +
            'their tag distributions are averaged).',
        ),
        weight: positive("Weight of the teacher's tag distributions beside the gold tags.", 1),
        temperature: positive('Softmax temperature of the distillation.', 1),
        combine: Type.Union(
          TEACHER_COMBINATIONS.map((c) => Type.Literal(c)),
          {
            default: 'marginals',
            description:
              "How several teachers combine: 'marginals' (the mean of their CRF marginals) or " +
              "'emissions' (the marginals of one CRF over their mean emissions and transitions).",
          },
        ),
        text: PathListSchema(
          'Unlabelled text (gzip or plain, one paragraph per line) taught by the teacher alone.',
          { default: [] },
        ),
        paragraphs: count(1, 'Paragraphs of text to use.', 10000),
      }),
      'Knowledge distillation from a teacher model (null: none).',
    ),
    output: PathSchema('Output directory: checkpoints best/ and last/, metrics.jsonl.'),
    device: DeviceSchema,
    dtype: DtypeSchema,
    threads: ThreadsSchema,
    logEvery: count(
      1,
      'Plain-log mode: a progress line and a metrics.jsonl summary every this many steps.',
      recipe.logEvery,
    ),
  });
}

const TRAIN_SCHEMAS = {
  pretrained: trainSchema(PRETRAINED_RECIPE),
  scratch: trainSchema(SCRATCH_RECIPE),
};

/** The schema of train.json (with the fine-tuning defaults), for schemas/train.schema.json. */
export const TRAIN_SCHEMA = TRAIN_SCHEMAS.pretrained;

/** The validated, resolved `train.json`: every default filled in, every path absolute. */
export type TrainConfig = Static<typeof TRAIN_SCHEMA>;
/** Validation metrics early stopping and the best checkpoint can follow. */
export type EarlyStopMetric = NonNullable<TrainConfig['earlyStopping']>['metric'];

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

// Names people bring from other trainers (the reference's config.json, transformers'
// TrainingArguments), normalised (lower case, no `_`/`-`), mapped to koner's field path.
const ALIASES: Record<string, string> = {
  learningrate: 'optimizer.lr',
  lr: 'optimizer.lr',
  weightdecay: 'optimizer.weightDecay',
  layerwiselrdecay: 'optimizer.layerDecay',
  layerdecay: 'optimizer.layerDecay',
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

/** The field an unknown key most likely meant (also for names from other trainers), or undefined. */
export function suggestField(
  key: string,
  prefix: string,
  known: readonly string[],
): string | undefined {
  return suggestAnyField(key, prefix, known, ALIASES);
}

/**
 * Fills in the tokenizer when the file names none: `fallback`, else the default files. Returns
 * the problem to report when there is none to fall back on.
 */
function defaultTokenizerInto(
  input: Json,
  fallback: TokenizerFiles | null | undefined,
): ConfigIssue | null {
  if (input.tokenizer !== undefined) return null;
  const files = fallback === undefined ? defaultTokenizerFiles() : fallback;
  if (files !== null) {
    input.tokenizer = { ...files };
    return null;
  }
  const root = packageRoot();
  const looked = root ? ` (looked in ${path.resolve(root, KOBERT_TOKENIZER.dir)})` : '';
  return {
    field: 'tokenizer',
    problem: `is required: { "model", "vocab" }; no default tokenizer found${looked}`,
  };
}

type Fail = (field: string, problem: string) => void;

/** A training config read against its schema, with the issues of its cross-field checks. */
export interface TrainingRead<T> extends ReadResult<T> {
  /** The file's object as given (defaults not filled in). */
  raw: Json;
  fail: Fail;
}

/**
 * What parsing train.json and pretrain.json share: the object checked, the default tokenizer
 * filled in, `prepare` given its say on the copy read, the schema read; then the checks both make
 * on the model's shape and the device.
 */
export function readTrainingConfig<S extends TSchema>(
  schema: S,
  raw: unknown,
  where: string,
  options: ParseTrainConfigOptions & {
    aliases?: Readonly<Record<string, string>>;
    prepare?: (input: Json, fail: Fail) => void;
  },
): TrainingRead<Static<S>> {
  if (!isObject(raw)) {
    throw new TrainConfigError(where, [
      { field: '(root)', problem: `must be a JSON object, got ${show(raw)}` },
    ]);
  }
  const before: ConfigIssue[] = [];
  const input: Json = { ...raw };
  options.prepare?.(input, (field, problem) => before.push({ field, problem }));
  const tokenizerIssue = defaultTokenizerInto(input, options.defaultTokenizer);
  const r = readConfig(schema, input, {
    baseDir: options.baseDir ?? path.dirname(path.resolve(where)),
    aliases: options.aliases,
  });
  // Without a default tokenizer, its own issue says where it looked.
  const read = r.issues.filter((i) => !(tokenizerIssue && i.field === 'tokenizer'));
  r.issues.splice(
    0,
    r.issues.length,
    ...before,
    ...(tokenizerIssue ? [tokenizerIssue] : []),
    ...read,
  );
  const fail: Fail = (field, problem) => void r.issues.push({ field, problem });
  const result = { ...r, raw, fail };
  checkShape(result as unknown as TrainingRead<ShapeFields>);
  return result;
}

/** The fields both configs have, with the same meaning. */
interface ShapeFields {
  model?: { init: string; size: ModelSize | null };
  maxLength: number;
  dtype: TrainDtype;
  device: string;
}

/** The encoder's shape (only from scratch, and consistent) and a device for the dtype. */
function checkShape(r: TrainingRead<ShapeFields>): void {
  const c = r.value;
  const m = isObject(r.raw.model) ? r.raw.model : {};
  const scratch = c.model?.init === 'scratch';
  if (!scratch && m.size !== undefined && m.size !== null) {
    r.fail(
      'model.size',
      'is only for "init": "scratch"; a model directory keeps the shape in its config.json',
    );
  }
  if (scratch && m.size === null) {
    r.fail('model.size', 'must be an object for "init": "scratch" (leave it out for the default)');
  }
  const size = scratch && r.valid('model.size') ? c.model?.size : null;
  if (size && size.hiddenSize % size.numAttentionHeads !== 0) {
    r.fail(
      'model.size.numAttentionHeads',
      `(${size.numAttentionHeads}) must divide model.size.hiddenSize (${size.hiddenSize})`,
    );
  }
  // An invalid value reads as its default; comparing that with other fields would quote a value
  // the file never gave.
  if (size && r.valid('maxLength') && c.maxLength > size.maxPositionEmbeddings) {
    r.fail(
      'maxLength',
      `(${c.maxLength}) must not exceed model.size.maxPositionEmbeddings (${size.maxPositionEmbeddings})`,
    );
  }
  if (r.valid('dtype', 'device') && c.dtype === 'float16' && !c.device.startsWith('cuda')) {
    r.fail(
      'dtype',
      `"float16" needs a CUDA device (device is "${c.device}"); use "bfloat16" or "float32" on CPU`,
    );
  }
}

/** train.json's own cross-field checks, on what read validly. */
function checkTrain(r: TrainingRead<TrainConfig>): void {
  const c = r.value;
  const head = c.model?.head;
  if (
    c.model?.rnnHiddenSize != null &&
    r.valid('model.head') &&
    head !== 'bilstm-crf' &&
    head !== 'bigru-crf'
  ) {
    r.fail(
      'model.rnnHiddenSize',
      `is only for the bilstm-crf and bigru-crf heads (head is "${head}")`,
    );
  }
  if (c.model?.posWeight != null && r.valid('corpus.format') && c.corpus.format !== 'kmou') {
    r.fail(
      'model.posWeight',
      `needs the gold morphemes of a KMOU corpus (corpus.format is "${c.corpus.format}")`,
    );
  }
  if (r.valid('maxLength', 'batchTokens') && c.batchTokens !== null) {
    if (c.batchTokens < c.maxLength) {
      r.fail(
        'batchTokens',
        `(${c.batchTokens}) must be at least maxLength (${c.maxLength}) so every input fits a batch`,
      );
    }
  }
  const warmupSteps =
    r.valid('schedule') && 'warmupSteps' in c.schedule ? c.schedule.warmupSteps : undefined;
  if (warmupSteps !== undefined && c.maxSteps !== null && warmupSteps > c.maxSteps) {
    r.fail('schedule.warmupSteps', `(${warmupSteps}) must not exceed maxSteps (${c.maxSteps})`);
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
  // model.init picks the recipe every other default comes from; only the exact word means
  // scratch (a directory called "scratch" is "./scratch").
  const scratch = isObject(raw) && isObject(raw.model) && raw.model.init === 'scratch';
  const r = readTrainingConfig(
    scratch ? TRAIN_SCHEMAS.scratch : TRAIN_SCHEMAS.pretrained,
    raw,
    where,
    { ...options, aliases: ALIASES, prepare: prepareTrain },
  );
  checkTrain(r);
  if (r.issues.length > 0) throw new TrainConfigError(where, r.issues);
  if (!scratch) r.value.model.size = null;
  return r.value;
}

// `false` turns early stopping off as null does; warmupRatio and warmupSteps together are one
// problem, not two.
function prepareTrain(input: Json, fail: Fail): void {
  if (input.earlyStopping === false) input.earlyStopping = null;
  const schedule = input.schedule;
  if (isObject(schedule) && schedule.warmupRatio !== undefined) {
    if (schedule.warmupSteps !== undefined) {
      fail(
        'schedule.warmupSteps',
        'cannot be given together with schedule.warmupRatio: choose one',
      );
      input.schedule = { ...schedule };
      delete (input.schedule as Json).warmupSteps;
    }
  }
}

/**
 * The config as `train.json` JSON, every default spelled out and every path absolute: what a run
 * saves beside its checkpoints, and what {@link parseTrainConfig} reads back to the same config.
 */
export function trainConfigToJson(config: TrainConfig): Json {
  return structuredClone(config) as Json;
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
      await expect(pathListField(`corpus.${key}`, list, i), list[i], corpusKinds);
    }
  }
  await expect('tokenizer.model', config.tokenizer.model, ['file']);
  await expect('tokenizer.vocab', config.tokenizer.vocab, ['file']);
  if (config.distill) {
    const teachers = config.distill.teacher;
    for (let i = 0; i < teachers.length; i++) {
      const field = pathListField('distill.teacher', teachers, i);
      await expect(field, path.join(teachers[i], 'config.json'), ['file']);
    }
    const text = config.distill.text;
    for (let i = 0; i < text.length; i++) {
      await expect(pathListField('distill.text', text, i), text[i], ['file']);
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
