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
import path from 'node:path';

import { Type, type Static } from '@sinclair/typebox';

import { readJsonFile } from '../text-file.js';
import {
  CorpusFormatSchema,
  DeviceSchema,
  DtypeSchema,
  isObject,
  ModelSizeSchema,
  optimizerSchema,
  PathListSchema,
  PathSchema,
  PRETRAINED_RECIPE,
  readTrainingConfig,
  ThreadsSchema,
  TokenizerSchema,
  TrainConfigError,
  type Json,
  type TokenizerFiles,
} from '../train/config.js';

const probability = (description: string, fallback: number) =>
  Type.Number({ minimum: 0, exclusiveMaximum: 1, default: fallback, description });

/** pretrain.json's shape, stated once: the type, the defaults, the errors and the JSON Schema. */
export const PRETRAIN_SCHEMA = Type.Object({
  text: PathListSchema(
    'Raw text: gzip files of one paragraph per line, read in order, one pass after another. ' +
      'The last evalParagraphs paragraphs of the last file are held out for evaluation.',
  ),
  validation: Type.Object(
    {
      format: Type.Union(CorpusFormatSchema.anyOf, { default: 'kmou' }),
      paths: PathListSchema('The files or directories of the split.'),
    },
    {
      description:
        'The labelled sentences pretraining must never see (the NER validation split): a ' +
        'paragraph sharing a run of 20 characters with one of them is dropped and counted.',
    },
  ),
  tokenizer: TokenizerSchema,
  model: Type.Object(
    {
      init: Type.Union([Type.Literal('scratch'), PathSchema()], {
        default: 'scratch',
        title: '"scratch" or the path of a model directory',
      }),
      size: Type.Union([ModelSizeSchema, Type.Null()], {
        default: {},
        description: 'The encoder\'s shape, for "init": "scratch".',
      }),
      dropout: probability('Dropout probability of the encoder.', 0.1),
    },
    {
      default: {},
      description:
        '"scratch" (default) for a BERT of size, or a model directory to continue from: its ' +
        'encoder (and masked-LM head) with a fresh optimizer, and, when it holds a ' +
        'pretrain-state.json of the same stream, the text from where that run stopped.',
    },
  ),
  objective: Type.Union([Type.Literal('mlm'), Type.Literal('electra')], {
    default: 'mlm',
    description:
      'mlm: whole-word masked language modelling. electra: replaced-token detection (Clark et ' +
      'al., 2020): a small generator (a masked LM of generator.size) fills the masked words with ' +
      'its own draws, and the encoder learns, at every piece, whether it was replaced; the ' +
      'encoder gets a replaced-token head instead of the masked-LM head.',
  }),
  generator: Type.Object(
    {
      init: Type.Union([Type.Literal('scratch'), PathSchema()], {
        default: 'scratch',
        title: '"scratch" or the path of a model directory with a masked-LM head',
      }),
      size: Type.Object(
        {
          hiddenSize: Type.Integer({ minimum: 1, default: 64 }),
          numHiddenLayers: Type.Integer({ minimum: 1, default: 4 }),
          numAttentionHeads: Type.Integer({
            minimum: 1,
            default: 1,
            description: 'Must divide hiddenSize.',
          }),
          intermediateSize: Type.Integer({ minimum: 1, default: 256 }),
        },
        { default: {}, description: 'The generator\'s shape, for "init": "scratch".' },
      ),
    },
    {
      default: {},
      description:
        "electra only: the generator, a masked LM over the encoder's vocabulary and positions: " +
        'from scratch of size (ELECTRA works best with one a quarter to a half of the encoder ' +
        'wide), or a model directory with a masked-LM head (a masked-LM pretraining run). A ' +
        'model.init directory that holds a generator/ (an ELECTRA run) gives its generator instead.',
    },
  ),
  maxLength: Type.Integer({
    minimum: 3,
    default: 128,
    description: 'Longest window in pieces, [CLS] and [SEP] included; longer paragraphs are cut.',
  }),
  batchSize: Type.Integer({
    minimum: 1,
    default: 64,
    description: 'Windows per batch per worker.',
  }),
  masking: Type.Object(
    {
      probability: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.15 }),
      mask: probability('Share of the chosen words that become [MASK].', 0.8),
      random: probability('Share of the chosen words that become random pieces.', 0.1),
    },
    {
      default: {},
      description:
        'Whole-word masking: probability of the pieces are chosen, a word (eojeol) at a time; ' +
        'a chosen word becomes [MASK] (mask), random pieces (random), or stays (the rest).',
    },
  ),
  maxSteps: Type.Integer({ minimum: 1, description: "The run's length in optimizer steps." }),
  optimizer: optimizerSchema(
    { ...PRETRAINED_RECIPE, lr: 5e-4, eps: 1e-6 },
    'AdamW; weight decay applies to every parameter except biases and LayerNorm weights.',
  ),
  warmupSteps: Type.Optional(
    Type.Integer({
      minimum: 0,
      description: 'Linear warmup over this many steps (default 1% of maxSteps, rounded up).',
    }),
  ),
  clipNorm: Type.Number({
    minimum: 0,
    default: 1,
    description: 'Clip the global gradient norm to this; 0 turns it off.',
  }),
  seed: Type.Integer({
    minimum: 0,
    maximum: 0xffffffff,
    default: 100,
    description: 'Seed of initialisation, masking, dropout and batch order.',
  }),
  evalEvery: Type.Integer({
    minimum: 1,
    default: 500,
    description: 'Evaluate on the held-out paragraphs and write last/ every this many steps.',
  }),
  evalParagraphs: Type.Integer({ minimum: 1, default: 1000, description: 'Held-out paragraphs.' }),
  output: PathSchema(
    'Output directory: last/ (a model directory with a masked-LM head, or with a ' +
      "replaced-token head and the generator's directory in last/generator/), metrics.jsonl.",
  ),
  device: DeviceSchema,
  dtype: DtypeSchema,
  threads: ThreadsSchema,
  logEvery: Type.Integer({ minimum: 1, default: 50 }),
});

/** The validated, resolved `pretrain.json`: every default filled in, every path absolute. */
export type PretrainConfig = Omit<Static<typeof PRETRAIN_SCHEMA>, 'warmupSteps'> & {
  warmupSteps: number;
};

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
  const r = readTrainingConfig(PRETRAIN_SCHEMA, raw, where, options);
  const c = r.value;
  if (r.valid('masking.mask', 'masking.random') && c.masking.mask + c.masking.random > 1) {
    r.fail(
      'masking.random',
      `(${c.masking.random}) plus masking.mask (${c.masking.mask}) exceeds 1`,
    );
  }
  if (r.valid('maxSteps', 'warmupSteps') && c.warmupSteps !== undefined) {
    if (c.warmupSteps > c.maxSteps) {
      r.fail('warmupSteps', `(${c.warmupSteps}) must not exceed maxSteps (${c.maxSteps})`);
    }
  }
  const rawGenerator = isObject(r.raw.generator) ? r.raw.generator : {};
  if (c.generator.init !== 'scratch' && rawGenerator.size !== undefined) {
    r.fail(
      'generator.size',
      'is only for "init": "scratch"; a model directory keeps the shape in its config.json',
    );
  }
  const size = c.generator.size;
  if (r.valid('generator.size') && size.hiddenSize % size.numAttentionHeads !== 0) {
    r.fail(
      'generator.size.numAttentionHeads',
      `(${size.numAttentionHeads}) must divide generator.size.hiddenSize (${size.hiddenSize})`,
    );
  }
  if (r.issues.length > 0) throw new TrainConfigError(where, r.issues);
  if (c.model.init !== 'scratch') c.model.size = null;
  return { ...c, warmupSteps: c.warmupSteps ?? Math.ceil(c.maxSteps / 100) };
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
  const raw = await readJsonFile(file, 'the pretraining config');
  if (edit && isObject(raw)) edit(raw);
  return parsePretrainConfig(raw, file, { baseDir: path.dirname(path.resolve(file)) });
}
