/**
 * Imports a checkpoint into a koner model directory (`config.json`, `model.safetensors` and the
 * tokenizer files).
 *
 * Recognised layouts, found by tensor names (the file may be safetensors or any torch.save):
 * - `bert`: a plain BERT encoder, as Hugging Face's `BertModel.state_dict()` (no prefix) or
 *   `BertForPreTraining` (`bert.` prefix, `cls.*` heads dropped). The head is initialised as
 *   Hugging Face does (classifier weight ~ N(0, initializer_range), bias 0) and a CRF as
 *   pytorch-crf does (uniform ±0.1).
 * - `token-classification`: Hugging Face's `BertForTokenClassification` (`bert.*`,
 *   `classifier.*`), and koner's own files (the same plus `crf.*`, and `bilstm.*` or `bigru.*`
 *   for the RNN heads).
 * - `reference`: the KoBERT+CRF reference project's `{ epoch, model_state_dict, … }` with
 *   DataParallel's `module.` prefix, `position_wise_ff.*` as the classifier and `crf.*`.
 *
 * Dropped: the `position_ids` buffer, pretraining heads, optimizer state and anything outside
 * the model. Kept: `bert.pooler.*` when present, so that the file stays a complete BertModel
 * (koner's model loader ignores it). LayerNorm `gamma`/`beta` (old TF-converted names) become
 * `weight`/`bias`. The config comes from the shapes, plus a Hugging Face `config.json` beside
 * the file when there is one (attention heads, layer-norm epsilon, pad id, label names).
 *
 * Labels: `options.labels` (names by id, or a JSON file: `["O", …]`, `{ "0": "O", … }`, the
 * reference's `{ "[CLS]": 0, … }` or a config with `id2label`); else the beside config's
 * `id2label`; else KMOU's 21 labels when the classifier has 21 rows (or there is none). The
 * reference's 25-label map has [CLS] [SEP] [PAD] [MASK] besides the 21 tags:
 * - `specialLabels: 'keep'` (default) keeps all 25 as they are, bit for bit: the special tags
 *   are labels the CRF only ever puts on the [CLS]/[SEP] positions, as the reference trained it.
 * - `specialLabels: 'fold'` removes them: the classifier keeps its 21 real rows and the CRF its
 *   21×21 transitions, with [CLS]→tag folded into the start scores and tag→[SEP] into the end
 *   scores. For a sequence `[CLS] x… [SEP]` tagged [CLS] … [SEP], the scores of the inner paths
 *   are then unchanged up to a constant, so a 21-label CRF over the inner pieces decodes as the
 *   reference did.
 *
 * The directory is self-contained: the tokenizer is copied in as `tokenizer.model` and
 * `vocab.json` and named in config.json (`options.tokenizer`, else the files beside the
 * checkpoint, else KoBERT's when the vocabulary has its size; anything else must be named).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { LABELS as KMOU_LABELS } from '../labels/scheme.js';
import { makeDirectory } from '../output-dir.js';
import { native, type CheckpointTensor, type CheckpointExtra } from '../native.js';
import { Tokenizer } from '../tokenizer/index.js';
import {
  HEAD_KINDS,
  KOBERT_BASE,
  modelConfigToJson,
  parseModelConfig,
  WEIGHTS_FILE,
  writeModelConfig,
  type HeadKind,
  type ModelConfig,
} from './config.js';
import { bundledTokenizerFiles } from './default-model.js';
import { copyTokenizerFiles, tokenizerFilesIn, type TokenizerFiles } from './tokenizer-files.js';

export type ImportLayout = 'bert' | 'token-classification' | 'reference';

export interface ImportOptions {
  /** Label names by id, or the path of a JSON label map. */
  labels?: readonly string[] | string;
  /** Attention heads (default: the beside config.json's, else hidden size / 64). */
  numAttentionHeads?: number;
  /** Convert floating tensors (default: keep the file's dtypes). */
  dtype?: 'float32' | 'float16' | 'bfloat16';
  /** The head for a checkpoint without one, or a CRF to add to a softmax classifier. */
  head?: 'softmax' | 'crf';
  /** What to do with [CLS]-style labels in a label map (see the module comment). */
  specialLabels?: 'keep' | 'fold';
  /** Seed for the initialised head (default: LibTorch's generator). */
  seed?: number;
  /**
   * The tokenizer copied into the directory (see the module comment). Default: the files beside
   * the checkpoint (`tokenizer.model` + `vocab.json`, or KoBERT's names), else KoBERT's (the
   * bundled model's) when the vocabulary has KoBERT's 8,002 ids. `null`: none, for an encoder
   * that `koner train` fine-tunes with the tokenizer its train.json names.
   */
  tokenizer?: TokenizerFiles | null;
}

export interface ImportResult {
  layout: ImportLayout;
  config: ModelConfig;
  /** The written `config.json` and `model.safetensors`. */
  configPath: string;
  weightsPath: string;
  /** Tensors written (imported plus initialised). */
  tensors: number;
  /** Source tensors not imported (buffers, pretraining heads, optimizer state, …). */
  dropped: string[];
  /** koner tensors that were initialised, not imported. */
  initialised: string[];
  /** Labels removed by `specialLabels: 'fold'`. */
  foldedLabels: string[];
  /** The tokenizer files copied in (as `tokenizer.model` and `vocab.json`), or null. */
  tokenizer: TokenizerFiles | null;
}

const WORD = 'embeddings.word_embeddings.weight';
const SPECIAL_LABEL = /^\[[A-Z]+\]$/;

function fail(file: string, problem: string): never {
  throw new Error(`${file}: ${problem}`);
}

function listSome(names: readonly string[], max = 6): string {
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown}, … (${names.length} in all)` : shown;
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Label names from a parsed JSON label map; `where` names it in errors. */
export function parseLabelMap(raw: unknown, where: string): string[] {
  let labels: unknown[];
  if (Array.isArray(raw)) {
    labels = raw;
  } else if (typeof raw === 'object' && raw !== null) {
    const object = raw as Record<string, unknown>;
    if (typeof object.id2label === 'object' && object.id2label !== null) {
      return parseLabelMap(object.id2label, where);
    }
    const entries = Object.entries(object);
    labels = new Array<unknown>(entries.length);
    const byName = entries.every(([, v]) => typeof v === 'number');
    for (const [key, value] of entries) {
      const id = byName ? (value as number) : Number(key);
      const name = byName ? key : value;
      if (
        !Number.isInteger(id) ||
        id < 0 ||
        id >= entries.length ||
        (!byName && String(id) !== key)
      ) {
        throw new Error(
          `${where}: label ids must be 0..${entries.length - 1}, found ${JSON.stringify(byName ? value : key)}`,
        );
      }
      if (labels[id] !== undefined) throw new Error(`${where}: label id ${id} appears twice`);
      labels[id] = name;
    }
  } else {
    throw new Error(`${where}: expected a list of labels or an object mapping labels and ids`);
  }
  for (const label of labels) {
    if (typeof label !== 'string' || label.length === 0) {
      throw new Error(`${where}: labels must be non-empty strings, found ${JSON.stringify(label)}`);
    }
  }
  if (new Set(labels).size !== labels.length) throw new Error(`${where}: a label appears twice`);
  if (labels.length === 0) throw new Error(`${where}: no labels`);
  return labels as string[];
}

async function readJson(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new Error(`${file}: cannot read the ${what} (${(error as NodeJS.ErrnoException).code})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new Error(`${file}: the ${what} is not valid JSON (${(error as Error).message})`);
  }
}

/** A Hugging Face (or koner) config.json beside the checkpoint, when there is one. */
async function besideConfig(file: string): Promise<Record<string, unknown> | undefined> {
  const candidate = path.join(path.dirname(file), 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(candidate, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const config = raw as Record<string, unknown>;
  // Other projects keep unrelated settings in a config.json (batch size, paths, …).
  return config.model_type === 'bert' || 'hidden_size' in config ? config : undefined;
}

interface Mapped {
  renames: [string, string][];
  dropped: string[];
  shapes: Map<string, number[]>;
  layout: ImportLayout;
}

/** Sorts the checkpoint's names into koner's, or explains why the layout is unknown. */
function mapNames(file: string, tensors: readonly CheckpointTensor[]): Mapped {
  const encoders = tensors.filter((t) => t.name === WORD || t.name.endsWith('.' + WORD));
  if (encoders.length === 0) {
    fail(
      file,
      `not a BERT checkpoint koner knows: no "…${WORD}" among ${tensors.length} tensors` +
        (tensors.length ? ` (${listSome(tensors.map((t) => t.name))})` : ''),
    );
  }
  if (encoders.length > 1) {
    fail(file, `holds several BERT encoders: ${listSome(encoders.map((t) => t.name))}`);
  }
  const encoderPrefix = encoders[0].name.slice(0, -WORD.length);
  const root = encoderPrefix.endsWith('bert.') ? encoderPrefix.slice(0, -5) : encoderPrefix;
  const renames: [string, string][] = [];
  const dropped: string[] = [];
  const shapes = new Map<string, number[]>();
  let layout: ImportLayout = 'bert';
  for (const t of tensors) {
    if (
      t.dtype !== 'float32' &&
      t.dtype !== 'float16' &&
      t.dtype !== 'bfloat16' &&
      t.dtype !== 'float64'
    ) {
      dropped.push(t.name); // integer buffers such as position_ids
      continue;
    }
    let koner: string | undefined;
    const rest = t.name.startsWith(encoderPrefix) ? t.name.slice(encoderPrefix.length) : undefined;
    if (rest !== undefined && /^(embeddings|encoder|pooler)\./.test(rest)) {
      const name = rest
        .replace(/LayerNorm\.gamma$/, 'LayerNorm.weight')
        .replace(/LayerNorm\.beta$/, 'LayerNorm.bias');
      koner = 'bert.' + name; // checked against the model's own names in inferDims
    } else if (t.name.startsWith(root)) {
      const head = t.name.slice(root.length);
      const match = /^(classifier|position_wise_ff|crf|bilstm|bigru)\.(.+)$/.exec(head);
      if (match && (match[1] === 'bilstm' || match[1] === 'bigru')) {
        koner = head; // koner's own RNN heads, checked by the model's strict loader
      } else if (match && match[1] === 'crf') {
        if (/^(transitions|start_transitions|end_transitions)$/.test(match[2])) koner = head;
      } else if (match && /^(weight|bias)$/.test(match[2])) {
        koner = `classifier.${match[2]}`;
        if (match[1] === 'position_wise_ff') layout = 'reference';
        else if (layout === 'bert') layout = 'token-classification';
      }
    }
    if (koner === undefined) {
      dropped.push(t.name);
      continue;
    }
    if (shapes.has(koner)) fail(file, `two tensors map to ${koner} (one is ${t.name})`);
    renames.push([t.name, koner]);
    shapes.set(koner, t.shape);
  }
  return { renames, dropped, shapes, layout };
}

interface Dims {
  vocab: number;
  hidden: number;
  layers: number;
  intermediate: number;
  positions: number;
  types: number;
  labels?: number;
  crf: boolean;
  /** koner's bilstm-crf / bigru-crf heads: the kind and each direction's hidden size. */
  rnn?: { head: 'bilstm-crf' | 'bigru-crf'; hidden: number };
}

/**
 * The model's dimensions from the shapes, every tensor checked against the parameters koner's
 * model has for them. `renames` gives the source name of each koner name, for errors.
 */
async function inferDims(
  file: string,
  shapes: Map<string, number[]>,
  renames: readonly [string, string][],
): Promise<Dims> {
  const need = (name: string): number[] =>
    shapes.get(name) ?? fail(file, `incomplete BERT: no ${name}`);
  const word = need('bert.' + WORD);
  if (word.length !== 2)
    fail(file, `bert.${WORD} has shape ${shapeText(word)}, expected 2 dimensions`);
  const [vocab, hidden] = word;
  const layerIds = new Set<number>();
  for (const name of shapes.keys()) {
    const m = /^bert\.encoder\.layer\.(\d+)\./.exec(name);
    if (m) layerIds.add(Number(m[1]));
  }
  const layers = layerIds.size;
  if (layers === 0) fail(file, 'incomplete BERT: no encoder layers');
  for (let i = 0; i < layers; i++) {
    if (!layerIds.has(i)) fail(file, `incomplete BERT: layers are not numbered 0..${layers - 1}`);
  }
  const intermediate = need('bert.encoder.layer.0.intermediate.dense.weight')[0];
  const positions = need('bert.embeddings.position_embeddings.weight')[0];
  const types = need('bert.embeddings.token_type_embeddings.weight')[0];
  let rnn: Dims['rnn'];
  for (const kind of ['bilstm', 'bigru'] as const) {
    if (![...shapes.keys()].some((n) => n.startsWith(kind + '.'))) continue;
    if (rnn) fail(file, 'has both a bilstm and a bigru head');
    // weight_hh_l0 is [gates × r, r]: each direction's hidden size is its second dimension.
    const hh = need(`${kind}.weight_hh_l0`);
    rnn = { head: `${kind}-crf`, hidden: hh[1] };
  }
  const labels =
    shapes.get('classifier.weight')?.[0] ?? (shapes.has('classifier.bias') ? -1 : undefined);
  const crf = [...shapes.keys()].some((n) => n.startsWith('crf.'));
  if (rnn && (!crf || labels === undefined)) fail(file, `has a ${rnn.head} head without its CRF`);
  if (crf && labels === undefined) fail(file, 'has a CRF but no classifier');
  const dims: Dims = { vocab, hidden, layers, intermediate, positions, types, labels, crf, rnn };
  const expected = await parameterShapes(dims);
  if (shapes.has('bert.pooler.dense.weight') || shapes.has('bert.pooler.dense.bias')) {
    // Not a parameter of koner's model, but kept so the file stays a complete BertModel.
    expected.set('bert.pooler.dense.weight', [hidden, hidden]);
    expected.set('bert.pooler.dense.bias', [hidden]);
  }
  const unexpected = renames.flatMap(([from, to]) =>
    to.startsWith('bert.') && !expected.has(to) ? [from] : [],
  );
  if (unexpected.length) {
    fail(file, `encoder tensors koner's BERT does not have: ${listSome(unexpected)}`);
  }
  const missing: string[] = [];
  const wrong: string[] = [];
  for (const [name, shape] of expected) {
    const actual = shapes.get(name);
    if (!actual) missing.push(name);
    else if (shapeText(actual) !== shapeText(shape)) {
      wrong.push(`${name} is ${shapeText(actual)}, expected ${shapeText(shape)}`);
    }
  }
  if (missing.length) fail(file, `incomplete model: missing ${listSome(missing)}`);
  if (wrong.length) {
    fail(
      file,
      `inconsistent shapes (hidden ${hidden}, intermediate ${intermediate}` +
        `${labels === undefined ? '' : `, ${labels} labels`}): ${listSome(wrong, 4)}`,
    );
  }
  return dims;
}

// The miniature's dimensions: distinct primes above 4, so that every axis of its parameters is a
// small multiple (at most 4, an LSTM's gates) of exactly one of them.
const MINIATURE = {
  hidden: 7,
  intermediate: 11,
  vocab: 13,
  positions: 17,
  types: 19,
  labels: 23,
  rnn: 29,
} as const;

/**
 * The name and shape of every parameter koner's model has for `dims`, as the native model itself
 * lists them (so no table of BERT's parameters is kept here). It is asked of a miniature with the
 * same layers and head, whose axes are then scaled to the real dimensions: nothing the size of
 * the checkpoint is allocated before its shapes are checked.
 */
async function parameterShapes(dims: Dims): Promise<Map<string, number[]>> {
  const m = MINIATURE;
  const model = new (native().Model)({
    vocabSize: m.vocab,
    hiddenSize: m.hidden,
    numHiddenLayers: dims.layers,
    numAttentionHeads: 1,
    intermediateSize: m.intermediate,
    hiddenAct: 'gelu',
    hiddenDropoutProb: 0,
    attentionProbsDropoutProb: 0,
    maxPositionEmbeddings: m.positions,
    typeVocabSize: m.types,
    layerNormEps: 1e-12,
    initializerRange: 0.02,
    padTokenId: 0,
    head: dims.rnn?.head ?? 'crf',
    rnnHiddenSize: m.rnn,
    labels: Array.from({ length: m.labels }, (_, i) => `L${i}`),
  });
  const actual: Record<keyof typeof MINIATURE, number> = {
    hidden: dims.hidden,
    intermediate: dims.intermediate,
    vocab: dims.vocab,
    positions: dims.positions,
    types: dims.types,
    labels: dims.labels ?? -1,
    rnn: dims.rnn?.hidden ?? -1,
  };
  const scale = (axis: number): number => {
    for (const key of Object.keys(m) as (keyof typeof MINIATURE)[]) {
      if (axis % m[key] === 0 && axis / m[key] <= 4) return (axis / m[key]) * actual[key];
    }
    throw new Error(`koner's model in miniature has an axis of ${axis}, no multiple of its sizes`);
  };
  const shapes = new Map<string, number[]>();
  try {
    for (const p of model.parameterInfo()) {
      const head = p.name.startsWith('classifier.')
        ? dims.labels !== undefined
        : p.name.startsWith('crf.')
          ? dims.crf
          : true;
      if (head) shapes.set(p.name, p.shape.map(scale));
    }
  } finally {
    await model.dispose();
  }
  return shapes;
}

function numberField(
  config: Record<string, unknown> | undefined,
  field: string,
  fallback: number,
): number {
  const value = config?.[field];
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

async function chooseLabels(
  file: string,
  options: ImportOptions,
  beside: Record<string, unknown> | undefined,
  count: number | undefined,
): Promise<string[]> {
  let labels: string[] | undefined;
  let where = 'labels';
  if (typeof options.labels === 'string') {
    where = options.labels;
    labels = parseLabelMap(await readJson(options.labels, 'label map'), options.labels);
  } else if (options.labels) {
    labels = parseLabelMap([...options.labels], 'labels');
  } else if (beside?.id2label !== undefined) {
    where = path.join(path.dirname(file), 'config.json');
    const fromConfig = parseLabelMap(beside.id2label, where);
    if (count === undefined || fromConfig.length === count) labels = fromConfig;
  }
  if (labels === undefined) {
    if (count !== undefined && count !== KMOU_LABELS.length) {
      fail(
        file,
        `the classifier has ${count} labels, not KMOU's ${KMOU_LABELS.length}: ` +
          'give their names (labels option, or --labels with a JSON label map such as ner_to_index.json)',
      );
    }
    return [...KMOU_LABELS];
  }
  if (count !== undefined && labels.length !== count) {
    fail(file, `${where} has ${labels.length} labels, but the classifier has ${count}`);
  }
  return labels;
}

/** Row-major float32 values of some tensors, for the label fold. */
async function floats(file: string, names: string[]): Promise<Map<string, Float32Array>> {
  const raw = await native().readTensors(file, names, true);
  return new Map(names.map((n) => [n, new Float32Array(raw[n].data.slice().buffer)]));
}

/**
 * The tokenizer for an imported vocabulary of `vocabSize` ids (see ImportOptions.tokenizer),
 * loaded once to prove it reads and fits: it may not have more ids than the embedding rows.
 */
async function chooseTokenizer(
  file: string,
  option: TokenizerFiles | null | undefined,
  vocabSize: number,
): Promise<TokenizerFiles | null> {
  if (option === null) return null;
  const beside = tokenizerFilesIn(path.dirname(file));
  const files =
    option ?? beside ?? (vocabSize === KOBERT_BASE.vocabSize ? bundledTokenizerFiles() : null);
  if (files === null) {
    fail(
      file,
      `its vocabulary has ${vocabSize} ids, not KoBERT's ${KOBERT_BASE.vocabSize}, and no ` +
        `tokenizer lies beside it: give the tokenizer it was trained with (--tokenizer-model and ` +
        `--tokenizer-vocab), or none (--no-tokenizer) to fine-tune it with the tokenizer a ` +
        `train.json names`,
    );
  }
  const tokenizer = await Tokenizer.load(files.model, { vocab: files.vocab });
  if (tokenizer.vocabSize > vocabSize) {
    fail(
      file,
      `the tokenizer ${files.vocab} has ${tokenizer.vocabSize} ids but the checkpoint's ` +
        `vocabulary only ${vocabSize}`,
    );
  }
  return files;
}

/** Imports `file` into `outDir` as config.json, model.safetensors and the tokenizer files. */
export async function importCheckpoint(
  file: string,
  outDir: string,
  options: ImportOptions = {},
): Promise<ImportResult> {
  const addon = native();
  const tensors = await addon.inspectCheckpoint(file);
  const { renames, dropped, shapes, layout } = mapNames(file, tensors);
  const dims = await inferDims(file, shapes, renames);
  const beside = await besideConfig(file);
  const besideWhere = path.join(path.dirname(file), 'config.json');
  if (beside) {
    const facts: [string, number][] = [
      ['hidden_size', dims.hidden],
      ['vocab_size', dims.vocab],
      ['num_hidden_layers', dims.layers],
      ['intermediate_size', dims.intermediate],
      ['max_position_embeddings', dims.positions],
      ['type_vocab_size', dims.types],
    ];
    for (const [field, value] of facts) {
      if (beside[field] !== undefined && beside[field] !== value) {
        fail(
          file,
          `inconsistent with ${besideWhere}: ${field} is ${String(beside[field])}, the weights say ${value}`,
        );
      }
    }
    if (beside.hidden_act !== undefined && beside.hidden_act !== 'gelu') {
      fail(
        file,
        `${besideWhere}: hidden_act ${JSON.stringify(beside.hidden_act)} is not supported (only gelu)`,
      );
    }
  }

  const heads =
    options.numAttentionHeads ??
    (typeof beside?.num_attention_heads === 'number' ? beside.num_attention_heads : undefined) ??
    (dims.hidden % 64 === 0
      ? dims.hidden / 64
      : fail(
          file,
          `hidden size ${dims.hidden} is not a multiple of 64: give the number of attention heads (--heads)`,
        ));
  if (!Number.isInteger(heads) || heads < 1 || dims.hidden % heads !== 0) {
    fail(file, `${heads} attention heads do not divide the hidden size ${dims.hidden}`);
  }

  let labels = await chooseLabels(file, options, beside, dims.labels);
  const besideHead = HEAD_KINDS.includes(beside?.head as HeadKind)
    ? (beside?.head as HeadKind)
    : undefined;
  let head: HeadKind;
  if (dims.rnn) {
    if (options.head !== undefined)
      fail(file, `has a ${dims.rnn.head} head: leave out the head option`);
    head = dims.rnn.head;
  } else if (dims.crf) head = options.head ?? 'crf';
  else if (dims.labels !== undefined) head = options.head ?? 'softmax';
  else head = options.head ?? (besideHead === 'softmax' ? 'softmax' : 'crf');
  if (!dims.rnn && head !== 'softmax' && head !== 'crf') {
    fail(file, `cannot add a ${head} head (only softmax or crf)`);
  }

  const keptRenames = renames.filter(([, to]) => head !== 'softmax' || !to.startsWith('crf.'));
  for (const [from, to] of renames) if (!keptRenames.some(([, t]) => t === to)) dropped.push(from);
  const extra: CheckpointExtra[] = [];
  const initialised: string[] = [];
  const initializerRange = numberField(beside, 'initializer_range', KOBERT_BASE.initializerRange);
  const hidden = dims.hidden;

  // The fold: keep the real tags' rows, fold [CLS] -> tag and tag -> [SEP] into start and end.
  const foldedLabels = labels.filter((l) => SPECIAL_LABEL.test(l));
  if (options.specialLabels === 'fold' && foldedLabels.length && dims.labels !== undefined) {
    const keep = labels.flatMap((l, i) => (SPECIAL_LABEL.test(l) ? [] : [i]));
    const cls = labels.indexOf('[CLS]');
    const sep = labels.indexOf('[SEP]');
    if (head !== 'softmax' && dims.crf && (cls < 0 || sep < 0)) {
      fail(file, 'folding special labels into the CRF needs both [CLS] and [SEP] in the label map');
    }
    const source = new Map(keptRenames.map(([from, to]) => [to, from]));
    const headNames = [...source.keys()].filter(
      (n) => n.startsWith('classifier.') || n.startsWith('crf.'),
    );
    const values = await floats(
      file,
      headNames.map((n) => source.get(n) as string),
    );
    const get = (name: string) => values.get(source.get(name) as string) as Float32Array;
    const k = labels.length;
    const w = get('classifier.weight');
    const b = get('classifier.bias');
    const width = w.length / k; // the hidden size, or twice the RNN's
    const weight = new Float32Array(keep.length * width);
    keep.forEach((row, i) => weight.set(w.subarray(row * width, (row + 1) * width), i * width));
    extra.push({
      name: 'classifier.weight',
      shape: [keep.length, width],
      init: 'values',
      values: weight,
    });
    extra.push({
      name: 'classifier.bias',
      shape: [keep.length],
      init: 'values',
      values: Float32Array.from(keep, (i) => b[i]),
    });
    if (source.has('crf.transitions')) {
      const t = get('crf.transitions');
      const start = get('crf.start_transitions');
      const end = get('crf.end_transitions');
      const transitions = new Float32Array(keep.length * keep.length);
      keep.forEach((i, a) =>
        keep.forEach((j, c) => (transitions[a * keep.length + c] = t[i * k + j])),
      );
      // float32 + float32 rounded once to float32, as LibTorch adds them.
      const folded = (f: (i: number) => number) => Float32Array.from(keep, f);
      extra.push({
        name: 'crf.transitions',
        shape: [keep.length, keep.length],
        init: 'values',
        values: transitions,
      });
      extra.push({
        name: 'crf.start_transitions',
        shape: [keep.length],
        init: 'values',
        values: folded((j) => start[cls] + t[cls * k + j]),
      });
      extra.push({
        name: 'crf.end_transitions',
        shape: [keep.length],
        init: 'values',
        values: folded((i) => t[i * k + sep] + end[sep]),
      });
    }
    labels = keep.map((i) => labels[i]);
    const replaced = new Set(extra.map((e) => e.name));
    const remaining = keptRenames.filter(([, to]) => !replaced.has(to));
    keptRenames.length = 0;
    keptRenames.push(...remaining);
  } else if (options.specialLabels === 'fold' && foldedLabels.length) {
    // No classifier to fold: the head is initialised for the real tags only.
    labels = labels.filter((l) => !SPECIAL_LABEL.test(l));
  }

  const present = new Set([...keptRenames.map(([, to]) => to), ...extra.map((e) => e.name)]);
  const k = labels.length;
  if (!present.has('classifier.weight')) {
    extra.push({
      name: 'classifier.weight',
      shape: [k, hidden],
      init: 'normal',
      std: initializerRange,
    });
    extra.push({ name: 'classifier.bias', shape: [k], init: 'zeros' });
    initialised.push('classifier.weight', 'classifier.bias');
  }
  if (head !== 'softmax' && !present.has('crf.transitions')) {
    // pytorch-crf's initialisation, which the reference project trained from.
    extra.push({ name: 'crf.transitions', shape: [k, k], init: 'uniform', bound: 0.1 });
    extra.push({ name: 'crf.start_transitions', shape: [k], init: 'uniform', bound: 0.1 });
    extra.push({ name: 'crf.end_transitions', shape: [k], init: 'uniform', bound: 0.1 });
    initialised.push('crf.transitions', 'crf.start_transitions', 'crf.end_transitions');
  }

  const padDefault = KOBERT_BASE.padTokenId < dims.vocab ? KOBERT_BASE.padTokenId : 0;
  const config: ModelConfig = {
    vocabSize: dims.vocab,
    hiddenSize: hidden,
    numHiddenLayers: dims.layers,
    numAttentionHeads: heads,
    intermediateSize: dims.intermediate,
    hiddenAct: 'gelu',
    hiddenDropoutProb: numberField(beside, 'hidden_dropout_prob', KOBERT_BASE.hiddenDropoutProb),
    attentionProbsDropoutProb: numberField(
      beside,
      'attention_probs_dropout_prob',
      KOBERT_BASE.attentionProbsDropoutProb,
    ),
    maxPositionEmbeddings: dims.positions,
    typeVocabSize: dims.types,
    layerNormEps: numberField(beside, 'layer_norm_eps', KOBERT_BASE.layerNormEps),
    initializerRange,
    padTokenId: numberField(beside, 'pad_token_id', padDefault),
    head,
    rnnHiddenSize: dims.rnn?.hidden ?? Math.max(1, Math.floor(hidden / 2)),
    labels,
  };
  const configPath = path.join(outDir, 'config.json');
  // Whatever the sources said, the result must pass koner's own validation.
  parseModelConfig(modelConfigToJson(config), configPath);
  const tokenizer = await chooseTokenizer(file, options.tokenizer, dims.vocab);

  const weightsPath = path.join(outDir, WEIGHTS_FILE);
  await makeDirectory(outDir);
  await addon.convertCheckpoint(file, weightsPath, keptRenames, {
    dtype: options.dtype,
    extra,
    seed: options.seed,
    metadata: { format: 'pt', source: path.basename(file), layout },
  });
  if (tokenizer) config.tokenizer = await copyTokenizerFiles(outDir, tokenizer);
  // The config last: a directory with a config.json has its weights and tokenizer.
  await writeModelConfig(outDir, config);
  return {
    layout,
    config,
    configPath,
    weightsPath,
    tensors: keptRenames.length + extra.length,
    dropped: dropped.sort(),
    initialised,
    foldedLabels: options.specialLabels === 'fold' ? foldedLabels : [],
    tokenizer,
  };
}
