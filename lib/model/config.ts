/**
 * The model directory's `config.json`: Hugging Face BertConfig fields plus `id2label`,
 * `label2id` and koner's `head`. Read and validated here; the native model receives the
 * validated, camel-cased form.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { makeDirectory } from '../output-dir.js';
import { readJsonFile } from '../text-file.js';

/** The weights file of a model directory (beside its config.json). */
export const WEIGHTS_FILE = 'model.safetensors';

/** The tagging heads. */
export type HeadKind = 'softmax' | 'crf' | 'bilstm-crf' | 'bigru-crf';
export const HEAD_KINDS: readonly HeadKind[] = ['softmax', 'crf', 'bilstm-crf', 'bigru-crf'];
/** `none`: an encoder without a tagging head (what `koner pretrain` writes); it cannot tag. */
export type ModelHead = HeadKind | 'none';

/** What the native model is built from (the camel-cased, validated config.json). */
export interface ModelConfig {
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  /** Only `gelu` (erf form, as Hugging Face's `gelu`) is supported. */
  hiddenAct: 'gelu';
  hiddenDropoutProb: number;
  attentionProbsDropoutProb: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  layerNormEps: number;
  initializerRange: number;
  padTokenId: number;
  head: ModelHead;
  /** Hidden size of each direction of the bilstm/bigru head (default hiddenSize / 2). */
  rnnHiddenSize: number;
  /** Tag names by id; `labels[i]` is id2label[i]. Empty for head `none`. */
  labels: string[];
  /**
   * The optional parts, absent in a plain BERT (so an imported KoBERT loads unchanged):
   * the masked-LM head of pretraining (`cls.predictions.*`, config.json `mlm_head`) …
   */
  mlmHead?: boolean;
  /**
   * … the replaced-token-detection head of ELECTRA pretraining (`discriminator_predictions.*`,
   * config.json `rtd_head`) …
   */
  rtdHead?: boolean;
  /** … an auxiliary POS classifier (`pos_classifier.*`, `pos_labels`: tag names by id) … */
  posLabels?: string[];
  /**
   * … and the syllable channel: each piece's syllables embedded (ids of `lib/labels/syllables`)
   * and their mean added to the piece's embedding (`syllable_vocab_size`; absent or 0: none).
   */
  syllableVocabSize?: number;
  /** Tokenizer files, relative to the model directory or absolute, when the directory names them. */
  tokenizer?: { model: string; vocab: string };
  /**
   * An ensemble (config.json `ensemble`): the member model directories, inside this one, whose
   * CRF taggers decode as one (lib/model/ensemble.ts); the other fields are the members' own.
   */
  ensemble?: string[];
  /**
   * The precision the model is meant to tag in (config.json `inference_dtype`): `bfloat16` makes
   * `NerModel.load` run the encoder in bfloat16 on a CPU with AVX512_BF16 or AMX-BF16 when no
   * `dtype` is asked for, float32 elsewhere. Set where the validation scores were measured equal.
   */
  inferenceDtype?: InferenceDtype;
}

/** What config.json's `inference_dtype` may name. */
export const INFERENCE_DTYPES = ['float32', 'bfloat16'] as const;
export type InferenceDtype = (typeof INFERENCE_DTYPES)[number];

/** KoBERT's shape (SKT Brain KoBERT, base size) with a CRF head. */
export const KOBERT_BASE: Omit<ModelConfig, 'labels'> = {
  vocabSize: 8002,
  hiddenSize: 768,
  numHiddenLayers: 12,
  numAttentionHeads: 12,
  intermediateSize: 3072,
  hiddenAct: 'gelu',
  hiddenDropoutProb: 0.1,
  attentionProbsDropoutProb: 0.1,
  maxPositionEmbeddings: 512,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  initializerRange: 0.02,
  padTokenId: 1,
  head: 'crf',
  rnnHiddenSize: 384,
};

class ConfigError extends Error {
  constructor(where: string, field: string, problem: string) {
    super(`${where}: field "${field}" ${problem}`);
    this.name = 'ConfigError';
  }
}

function integer(
  raw: Record<string, unknown>,
  field: string,
  where: string,
  min: number,
  fallback?: number,
): number {
  const value = raw[field] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new ConfigError(
      where,
      field,
      `must be an integer ≥ ${min}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function probability(
  raw: Record<string, unknown>,
  field: string,
  where: string,
  fallback: number,
): number {
  const value = raw[field] ?? fallback;
  if (typeof value !== 'number' || !(value >= 0 && value < 1)) {
    throw new ConfigError(where, field, `must be a number in [0, 1), got ${JSON.stringify(value)}`);
  }
  return value;
}

function optionalBoolean(
  raw: Record<string, unknown>,
  field: string,
  where: string,
): boolean | undefined {
  const value = raw[field];
  if (value !== undefined && typeof value !== 'boolean') {
    throw new ConfigError(where, field, `must be a boolean, got ${JSON.stringify(value)}`);
  }
  return value;
}

function positive(
  raw: Record<string, unknown>,
  field: string,
  where: string,
  fallback: number,
): number {
  const value = raw[field] ?? fallback;
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new ConfigError(where, field, `must be a positive number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function labelsFrom(raw: Record<string, unknown>, where: string): string[] {
  const id2label = raw.id2label;
  if (typeof id2label !== 'object' || id2label === null || Array.isArray(id2label)) {
    throw new ConfigError(
      where,
      'id2label',
      'must be an object mapping ids ("0", "1", …) to tag names',
    );
  }
  const entries = Object.entries(id2label as Record<string, unknown>);
  const labels: string[] = new Array(entries.length);
  for (const [key, name] of entries) {
    const id = Number(key);
    if (!Number.isInteger(id) || id < 0 || id >= entries.length || String(id) !== key) {
      throw new ConfigError(
        where,
        'id2label',
        `has key "${key}": ids must be 0..${entries.length - 1}`,
      );
    }
    if (typeof name !== 'string' || name.length === 0) {
      throw new ConfigError(where, `id2label.${key}`, 'must be a non-empty string');
    }
    labels[id] = name;
  }
  if (labels.length === 0) throw new ConfigError(where, 'id2label', 'is empty');
  if (new Set(labels).size !== labels.length)
    throw new ConfigError(where, 'id2label', 'repeats a tag name');
  const label2id = raw.label2id;
  if (label2id !== undefined) {
    if (typeof label2id !== 'object' || label2id === null) {
      throw new ConfigError(where, 'label2id', 'must be an object');
    }
    for (const [name, id] of Object.entries(label2id as Record<string, unknown>)) {
      if (labels[id as number] !== name) {
        throw new ConfigError(
          where,
          'label2id',
          `maps "${name}" to ${JSON.stringify(id)}, but id2label disagrees`,
        );
      }
    }
  }
  return labels;
}

/** An ensemble's member directories: distinct relative paths inside the model directory. */
function ensembleMembers(members: unknown, head: ModelHead, where: string): string[] {
  const inside = (m: unknown) =>
    typeof m === 'string' &&
    m.length > 0 &&
    !path.isAbsolute(m) &&
    !m.split(/[\\/]/).some((part) => part === '..' || part === '');
  if (!Array.isArray(members) || members.length === 0 || !members.every(inside)) {
    throw new ConfigError(
      where,
      'ensemble',
      'must be a non-empty array of member directories inside the model directory, ' +
        `got ${JSON.stringify(members)}`,
    );
  }
  if (new Set(members).size !== members.length) {
    throw new ConfigError(where, 'ensemble', `names a member twice: ${JSON.stringify(members)}`);
  }
  if (head === 'softmax' || head === 'none') {
    throw new ConfigError(where, 'ensemble', `needs CRF taggers, but head is ${head}`);
  }
  return [...(members as string[])];
}

/** Validates a parsed config.json object; `where` names it in errors (usually the file path). */
export function parseModelConfig(raw: unknown, where = 'config.json'): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`${where}: expected a JSON object`);
  }
  const r = raw as Record<string, unknown>;
  const base = KOBERT_BASE;
  const hiddenSize = integer(r, 'hidden_size', where, 1, base.hiddenSize);
  const numAttentionHeads = integer(r, 'num_attention_heads', where, 1, base.numAttentionHeads);
  if (hiddenSize % numAttentionHeads !== 0) {
    throw new ConfigError(
      where,
      'num_attention_heads',
      `(${numAttentionHeads}) must divide hidden_size (${hiddenSize})`,
    );
  }
  const act = r.hidden_act ?? 'gelu';
  if (act !== 'gelu')
    throw new ConfigError(where, 'hidden_act', `must be "gelu", got ${JSON.stringify(act)}`);
  const head = (r.head ?? 'crf') as ModelHead;
  if (head !== 'none' && !HEAD_KINDS.includes(head)) {
    throw new ConfigError(
      where,
      'head',
      `must be one of ${HEAD_KINDS.join(', ')}, none, got ${JSON.stringify(r.head)}`,
    );
  }
  const vocabSize = integer(r, 'vocab_size', where, 1, base.vocabSize);
  const config: ModelConfig = {
    vocabSize,
    hiddenSize,
    numHiddenLayers: integer(r, 'num_hidden_layers', where, 1, base.numHiddenLayers),
    numAttentionHeads,
    intermediateSize: integer(r, 'intermediate_size', where, 1, base.intermediateSize),
    hiddenAct: 'gelu',
    hiddenDropoutProb: probability(r, 'hidden_dropout_prob', where, base.hiddenDropoutProb),
    attentionProbsDropoutProb: probability(
      r,
      'attention_probs_dropout_prob',
      where,
      base.attentionProbsDropoutProb,
    ),
    maxPositionEmbeddings: integer(
      r,
      'max_position_embeddings',
      where,
      3,
      base.maxPositionEmbeddings,
    ),
    typeVocabSize: integer(r, 'type_vocab_size', where, 1, base.typeVocabSize),
    layerNormEps: positive(r, 'layer_norm_eps', where, base.layerNormEps),
    initializerRange: positive(r, 'initializer_range', where, base.initializerRange),
    padTokenId: integer(r, 'pad_token_id', where, 0, base.padTokenId),
    head,
    rnnHiddenSize: integer(r, 'rnn_hidden_size', where, 1, Math.max(1, Math.floor(hiddenSize / 2))),
    labels: head === 'none' && r.id2label === undefined ? [] : labelsFrom(r, where),
  };
  if (head === 'none' && config.labels.length > 0) {
    throw new ConfigError(where, 'id2label', 'must be absent for head none (an encoder only)');
  }
  const mlmHead = optionalBoolean(r, 'mlm_head', where);
  if (mlmHead !== undefined) config.mlmHead = mlmHead;
  const rtdHead = optionalBoolean(r, 'rtd_head', where);
  if (rtdHead !== undefined) config.rtdHead = rtdHead;
  if (r.pos_labels !== undefined) {
    const tags = r.pos_labels;
    if (
      !Array.isArray(tags) ||
      tags.some((t) => typeof t !== 'string' || t.length === 0) ||
      new Set(tags).size !== tags.length
    ) {
      throw new ConfigError(where, 'pos_labels', 'must be an array of distinct POS tag names');
    }
    config.posLabels = [...(tags as string[])];
  }
  if (r.syllable_vocab_size !== undefined) {
    const size = integer(r, 'syllable_vocab_size', where, 0);
    if (size === 1) {
      throw new ConfigError(where, 'syllable_vocab_size', 'must be 0 (no channel) or ≥ 2, got 1');
    }
    if (size > 0) config.syllableVocabSize = size;
  }
  if (config.padTokenId >= vocabSize) {
    throw new ConfigError(
      where,
      'pad_token_id',
      `(${config.padTokenId}) must be below vocab_size (${vocabSize})`,
    );
  }
  if (r.ensemble !== undefined) config.ensemble = ensembleMembers(r.ensemble, head, where);
  if (r.inference_dtype !== undefined) {
    if (!INFERENCE_DTYPES.includes(r.inference_dtype as InferenceDtype)) {
      throw new ConfigError(
        where,
        'inference_dtype',
        `must be one of ${INFERENCE_DTYPES.join(', ')}, got ${JSON.stringify(r.inference_dtype)}`,
      );
    }
    config.inferenceDtype = r.inference_dtype as InferenceDtype;
  }
  const tokenizer = r.tokenizer;
  if (tokenizer !== undefined) {
    const t = tokenizer as Record<string, unknown>;
    if (
      typeof t !== 'object' ||
      t === null ||
      typeof t.model !== 'string' ||
      typeof t.vocab !== 'string'
    ) {
      throw new ConfigError(where, 'tokenizer', 'must be { "model": path, "vocab": path }');
    }
    config.tokenizer = { model: t.model, vocab: t.vocab };
  }
  return config;
}

/** The config.json object for a config (Hugging Face field names). */
export function modelConfigToJson(config: ModelConfig): Record<string, unknown> {
  const json: Record<string, unknown> = {
    architectures: [config.head === 'none' ? 'BertForMaskedLM' : 'BertForTokenClassification'],
    model_type: 'bert',
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    num_hidden_layers: config.numHiddenLayers,
    num_attention_heads: config.numAttentionHeads,
    intermediate_size: config.intermediateSize,
    hidden_act: config.hiddenAct,
    hidden_dropout_prob: config.hiddenDropoutProb,
    attention_probs_dropout_prob: config.attentionProbsDropoutProb,
    max_position_embeddings: config.maxPositionEmbeddings,
    type_vocab_size: config.typeVocabSize,
    layer_norm_eps: config.layerNormEps,
    initializer_range: config.initializerRange,
    pad_token_id: config.padTokenId,
    head: config.head,
    rnn_hidden_size: config.rnnHiddenSize,
  };
  if (config.head !== 'none') {
    json.id2label = Object.fromEntries(config.labels.map((name, id) => [String(id), name]));
    json.label2id = Object.fromEntries(config.labels.map((name, id) => [name, id]));
  }
  if (config.mlmHead) json.mlm_head = true;
  if (config.rtdHead) json.rtd_head = true;
  if (config.posLabels && config.posLabels.length > 0) json.pos_labels = config.posLabels;
  if (config.syllableVocabSize) json.syllable_vocab_size = config.syllableVocabSize;
  if (config.tokenizer) json.tokenizer = config.tokenizer;
  if (config.ensemble) json.ensemble = config.ensemble;
  if (config.inferenceDtype) json.inference_dtype = config.inferenceDtype;
  return json;
}

/** Reads and validates `<dir>/config.json`. */
export async function readModelConfig(dir: string): Promise<ModelConfig> {
  const file = path.join(dir, 'config.json');
  return parseModelConfig(await readJsonFile(file, 'the model config'), file);
}

/**
 * Reads `<dir>/config.json` of one network, for what needs its weights (fine-tuning, further
 * pretraining, teaching): an ensemble directory is refused, naming `field` and a member.
 */
export async function readNetworkConfig(dir: string, field: string): Promise<ModelConfig> {
  const config = await readModelConfig(dir);
  if (config.ensemble) {
    throw new Error(
      `${field}: ${dir} is an ensemble of ${config.ensemble.length} models; ` +
        `use one of its members (e.g. ${path.join(dir, config.ensemble[0])})`,
    );
  }
  return config;
}

/** Writes `<dir>/config.json` atomically (temporary file, then rename). */
export async function writeModelConfig(dir: string, config: ModelConfig): Promise<void> {
  await makeDirectory(dir);
  const file = path.join(dir, 'config.json');
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, JSON.stringify(modelConfigToJson(config), null, 2) + '\n');
  await fs.rename(tmp, file);
}
