/**
 * NerModel, the public model API: a model directory (config.json + model.safetensors + the
 * tokenizer files it names) loaded into the native addon, and `predict` from text to entities
 * with exact offsets and confidence scores.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

import { decodeEntities, type DecodedEntity } from '../labels/decode.js';
import { parseTag } from '../labels/scheme.js';
import { native, type NativeDtype, type NativeModel } from '../native.js';
import { setThreads } from '../runtime.js';
import { Tokenizer } from '../tokenizer/index.js';
import { padSequences } from '../train/batching.js';
import { readModelConfig, type ModelConfig } from './config.js';
import { defaultModelDir } from './default-model.js';
import { resolveTokenizerFiles, type TokenizerFiles } from './tokenizer-files.js';
import { planWindows, stitchEmissions, type PieceWindow } from './windows.js';

export type { TokenizerFiles } from './tokenizer-files.js';

/** An entity found in a text. `text.slice(start, end)` of the input is `text`. */
export type NerEntity = DecodedEntity;

export interface NerModelLoadOptions {
  /** `'cpu'` (default), `'cuda'` or `'cuda:N'`. */
  device?: string;
  /** LibTorch intra-op threads (default: the available cores). Applies process-wide. */
  threads?: number;
  /** The encoder's dtype (default float32; float16 needs CUDA). The CRF always runs in fp32. */
  dtype?: NativeDtype;
  /** Tokenizer files; otherwise $KONER_TOKENIZER_DIR's, then the model directory's own. */
  tokenizer?: TokenizerFiles;
}

export interface PredictOptions {
  /** Sequences per native call (default 32). Texts are sorted by length into batches. */
  batchSize?: number;
  /** Only valid BIO paths (no `O → I-X`, no `B-X → I-Y`, no start with `I-`). Default true. */
  constrained?: boolean;
  /** Trim particles and punctuation glued into an entity's edge pieces. Default true. */
  refine?: boolean;
  /** Attach each entity's pieces with their tag probabilities. Default false. */
  withProbabilities?: boolean;
  /** Overlap, in pieces, between windows of a text longer than the model's positions. */
  windowOverlap?: number;
}

/** One piece of an entity, with the posterior probability of its tag. */
export interface PieceProbability {
  piece: string;
  start: number;
  end: number;
  tag: string;
  probability: number;
}

/** An entity with its pieces (`withProbabilities: true`). */
export interface NerEntityWithPieces extends NerEntity {
  pieces: PieceProbability[];
}

/** One of the n best tag paths of a text. */
export interface NerPath {
  /** The path's unnormalised CRF score (log-potential; higher is better). */
  score: number;
  entities: NerEntity[];
}

/** BIO constraints over a label list: `allowed[i*K+j]`, `allowedStart[j]`, `allowedEnd[i]`. */
export function bioConstraints(labels: readonly string[]) {
  const K = labels.length;
  const parsed = labels.map((l) => parseTag(l));
  const allowed = new Uint8Array(K * K);
  const allowedStart = new Uint8Array(K);
  const allowedEnd = new Uint8Array(K).fill(1);
  for (let j = 0; j < K; j++) {
    const to = parsed[j];
    allowedStart[j] = to?.prefix === 'I' ? 0 : 1;
    for (let i = 0; i < K; i++) {
      const from = parsed[i];
      const continues =
        from !== null && from.prefix !== 'O' && to?.prefix === 'I' && from.type === to.type;
      allowed[i * K + j] = to?.prefix === 'I' ? Number(continues) : 1;
    }
  }
  return { allowed, allowedStart, allowedEnd };
}

interface Encoded {
  text: string;
  pieces: string[];
  ids: Int32Array;
  offsets: [number, number][];
  windows: PieceWindow[];
}

/** A loaded NER model. Methods may be called concurrently. */
export class NerModel {
  /** Tag names by id. */
  readonly labels: readonly string[];
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer;
  readonly dir: string;
  #native: NativeModel | null;
  // Labels that are not BIO tags (e.g. the reference project's [CLS] [SEP] [PAD] [MASK]) mean O.
  readonly #bioLabels: string[];

  private constructor(dir: string, config: ModelConfig, tokenizer: Tokenizer, model: NativeModel) {
    this.dir = dir;
    this.config = config;
    this.labels = config.labels;
    this.tokenizer = tokenizer;
    this.#native = model;
    this.#bioLabels = config.labels.map((l) => (parseTag(l) ? l : 'O'));
  }

  /**
   * @internal A NerModel over a native model that its caller keeps using (the trainer evaluates
   * the weights it is training through the very pipeline `predict` runs). Not re-exported.
   */
  static fromNative(
    model: NativeModel,
    config: ModelConfig,
    tokenizer: Tokenizer,
    dir: string,
  ): NerModel {
    return new NerModel(path.resolve(dir), config, tokenizer, model);
  }

  /** Loads the model that ships with koner (see `defaultModelDir`). */
  static loadDefault(options: NerModelLoadOptions = {}): Promise<NerModel> {
    return NerModel.load(defaultModelDir(), options);
  }

  /** Loads a model directory (config.json, model.safetensors, tokenizer files). */
  static async load(dir: string, options: NerModelLoadOptions = {}): Promise<NerModel> {
    const config = await readModelConfig(dir);
    if (options.threads !== undefined) setThreads(options.threads);
    const files = resolveTokenizerFiles(dir, config, options.tokenizer);
    const tokenizer = await Tokenizer.load(files.model, { vocab: files.vocab });
    if (tokenizer.vocabSize > config.vocabSize) {
      throw new Error(
        `${dir}: the tokenizer has ${tokenizer.vocabSize} ids but config.json's vocab_size is ` +
          `${config.vocabSize}`,
      );
    }
    const model = new (native().Model)(config);
    const weights = path.join(dir, 'model.safetensors');
    if (!existsSync(weights)) throw new Error(`${dir}: model.safetensors is missing`);
    await model.loadWeights(weights);
    if (options.device !== undefined || options.dtype !== undefined) {
      await model.to(options.device ?? 'cpu', options.dtype ?? 'float32');
    }
    return new NerModel(path.resolve(dir), config, tokenizer, model);
  }

  /** Where the model runs now. */
  get placement(): { device: string; dtype: NativeDtype } {
    return this.#model().placement();
  }

  /**
   * Entities in a text (or in each of several texts), with UTF-16 offsets into the input and a
   * confidence score: the mean posterior probability of the entity's tags.
   */
  predict(
    text: string,
    options?: PredictOptions & { withProbabilities?: false },
  ): Promise<NerEntity[]>;
  predict(
    texts: string[],
    options?: PredictOptions & { withProbabilities?: false },
  ): Promise<NerEntity[][]>;
  predict(
    text: string,
    options: PredictOptions & { withProbabilities: true },
  ): Promise<NerEntityWithPieces[]>;
  predict(
    texts: string[],
    options: PredictOptions & { withProbabilities: true },
  ): Promise<NerEntityWithPieces[][]>;
  async predict(input: string | string[], options: PredictOptions = {}): Promise<unknown> {
    const texts = checkTexts(input);
    const results = await this.#run(texts, options, 1);
    const out = results.map((r) => r.best);
    return typeof input === 'string' ? out[0] : out;
  }

  /** The `nBest` best tag paths of a text (or of each text), best first, as entities. */
  predictPaths(text: string, nBest: number, options?: PredictOptions): Promise<NerPath[]>;
  predictPaths(texts: string[], nBest: number, options?: PredictOptions): Promise<NerPath[][]>;
  async predictPaths(
    input: string | string[],
    nBest: number,
    options: PredictOptions = {},
  ): Promise<unknown> {
    if (!Number.isInteger(nBest) || nBest < 1 || nBest > 1000) {
      throw new TypeError(`nBest must be an integer from 1 to 1000, got ${String(nBest)}`);
    }
    const texts = checkTexts(input);
    const results = await this.#run(texts, options, nBest);
    const out = results.map((r) => r.paths);
    return typeof input === 'string' ? out[0] : out;
  }

  /**
   * Emissions for sequences of token ids that already include [CLS] and [SEP]: one Float32Array
   * of T×K (row-major) per sequence.
   */
  async logits(ids: ArrayLike<number>[]): Promise<Float32Array[]> {
    if (!Array.isArray(ids) || ids.length === 0) {
      throw new TypeError('ids must be a non-empty array of token-id arrays');
    }
    const K = this.labels.length;
    const maxT = this.config.maxPositionEmbeddings;
    ids.forEach((seq, i) => {
      if (!seq || typeof seq.length !== 'number' || seq.length === 0) {
        throw new TypeError(`ids[${i}] must be a non-empty array of token ids`);
      }
      if (seq.length > maxT) {
        throw new RangeError(`ids[${i}] has ${seq.length} ids; the model takes at most ${maxT}`);
      }
    });
    const out: Float32Array[] = new Array(ids.length);
    for (const batch of lengthBatches(
      ids.map((s) => s.length),
      32,
    )) {
      const {
        data,
        lengths,
        cols: T,
      } = padSequences(
        batch.map((i) => ids[i]),
        this.config.padTokenId,
      );
      const emissions = await this.#model().emissions(data, [batch.length, T], lengths);
      batch.forEach((seq, b) => {
        out[seq] = emissions.slice(b * T * K, (b * T + lengths[b]) * K);
      });
    }
    return out;
  }

  /**
   * @internal `predict`'s best path per text with what evaluation needs besides the entities: the
   * tag of every piece (without [CLS]/[SEP]) and the pieces' offsets.
   */
  async predictTagged(
    texts: string[],
    options: PredictOptions = {},
  ): Promise<{ entities: NerEntity[]; tags: string[]; offsets: [number, number][] }[]> {
    const results = await this.#run(checkTexts(texts), options, 1);
    return results.map((r) => ({ entities: r.best, tags: r.tags, offsets: r.offsets }));
  }

  /** Frees the native model now instead of at garbage collection; the model is unusable after. */
  dispose(): void {
    this.#native = null;
  }

  #model(): NativeModel {
    if (!this.#native) throw new Error('this NerModel has been disposed');
    return this.#native;
  }

  async #run(texts: string[], options: PredictOptions, nBest: number) {
    const batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new TypeError(`batchSize must be a positive integer, got ${String(options.batchSize)}`);
    }
    const maxPieces = this.config.maxPositionEmbeddings - 2;
    const overlap = options.windowOverlap ?? Math.floor(maxPieces / 4);
    if (!Number.isInteger(overlap) || overlap < 0 || overlap >= maxPieces) {
      throw new TypeError(`windowOverlap must be an integer from 0 to ${maxPieces - 1}`);
    }
    const model = this.#model();
    const K = this.labels.length;
    const special = this.tokenizer.specialIds;

    const encoded: Encoded[] = texts.map((text) => {
      const e = this.tokenizer.encode(text);
      return { text, ...e, windows: planWindows(e.ids.length, maxPieces, overlap) };
    });

    const constraints = options.constrained === false ? undefined : bioConstraints(this.labels);
    const results: {
      best: NerEntity[];
      paths: NerPath[];
      tags: string[];
      offsets: [number, number][];
    }[] = new Array(texts.length);
    const lengthsOf = encoded.map((e) => e.ids.length + 2);
    const withSpecials = (ids: Int32Array): Int32Array => {
      const seq = new Int32Array(ids.length + 2);
      seq[0] = special.cls;
      seq.set(ids, 1);
      seq[seq.length - 1] = special.sep;
      return seq;
    };

    // Texts that fit in one window (nearly all): encoder and CRF in one native call per batch of
    // similar lengths, so the emissions never cross into JS and back.
    const whole = encoded.flatMap((e, t) => (e.windows.length === 1 ? [t] : []));
    for (const group of lengthBatches(
      whole.map((t) => lengthsOf[t]),
      batchSize,
    )) {
      const batch = group.map((i) => whole[i]);
      const {
        data,
        lengths,
        cols: T,
      } = padSequences(
        batch.map((t) => withSpecials(encoded[t].ids)),
        this.config.padTokenId,
      );
      const decoded = await model.decode(data, [batch.length, T], lengths, {
        nBest,
        constraints,
        marginals: true,
      });
      batch.forEach((t, b) => {
        results[t] = this.#entities(encoded[t], decoded, b, T, nBest, options);
      });
    }

    // Longer texts. Encoder: every window of every such text, batched by length.
    const windowed = encoded.flatMap((e, t) => (e.windows.length > 1 ? [t] : []));
    const windowList: { text: number; window: number; length: number }[] = [];
    for (const t of windowed) {
      encoded[t].windows.forEach((w, i) =>
        windowList.push({ text: t, window: i, length: w.end - w.start + 2 }),
      );
    }
    const windowRows: Float32Array[][] = encoded.map((e) => new Array(e.windows.length));
    for (const batch of lengthBatches(
      windowList.map((w) => w.length),
      batchSize,
    )) {
      const seqs = batch.map((k) => {
        const { text, window } = windowList[k];
        const w = encoded[text].windows[window];
        return withSpecials(encoded[text].ids.subarray(w.start, w.end));
      });
      const { data, lengths, cols: T } = padSequences(seqs, this.config.padTokenId);
      const emissions = await model.emissions(data, [batch.length, T], lengths);
      batch.forEach((k, b) => {
        const { text, window } = windowList[k];
        windowRows[text][window] = emissions.subarray(b * T * K, (b * T + lengths[b]) * K);
      });
    }

    // CRF: each such text's stitched emissions, batched by length.
    for (const group of lengthBatches(
      windowed.map((t) => lengthsOf[t]),
      batchSize,
    )) {
      const batch = group.map((i) => windowed[i]);
      const T = Math.max(...batch.map((t) => lengthsOf[t]));
      const emissions = new Float32Array(batch.length * T * K);
      const lengths = new Int32Array(batch.length);
      batch.forEach((t, b) => {
        const e = encoded[t];
        emissions.set(stitchEmissions(e.ids.length, K, e.windows, windowRows[t]), b * T * K);
        lengths[b] = lengthsOf[t];
      });
      const decoded = await model.decodeEmissions(emissions, [batch.length, T, K], lengths, {
        nBest,
        constraints,
        marginals: true,
      });
      batch.forEach((t, b) => {
        results[t] = this.#entities(encoded[t], decoded, b, T, nBest, options);
      });
    }
    return results;
  }

  #entities(
    e: Encoded,
    decoded: { tags: Int32Array; scores: Float32Array; marginals?: Float32Array },
    b: number,
    T: number,
    nBest: number,
    options: PredictOptions,
  ): { best: NerEntity[]; paths: NerPath[]; tags: string[]; offsets: [number, number][] } {
    const K = this.labels.length;
    const n = e.ids.length;
    const marginals = decoded.marginals!;
    const paths: NerPath[] = [];
    let bestTags: string[] = [];
    for (let k = 0; k < nBest; k++) {
      const score = decoded.scores[b * nBest + k];
      if (score === -Infinity) break;
      const row = decoded.tags.subarray((b * nBest + k) * T, (b * nBest + k + 1) * T);
      // Position 0 is [CLS] and n + 1 is [SEP]: the pieces are 1..n.
      const tags: string[] = new Array(n);
      const probs = new Float32Array(n);
      for (let p = 0; p < n; p++) {
        const tag = row[p + 1];
        tags[p] = this.#bioLabels[tag];
        probs[p] = marginals[(b * T + p + 1) * K + tag];
      }
      if (k === 0) bestTags = tags;
      const entities = decodeEntities(e.text, e.offsets, tags, {
        scores: probs,
        refine: options.refine ?? true,
      });
      if (options.withProbabilities && k === 0) {
        for (const entity of entities as NerEntityWithPieces[]) {
          entity.pieces = [];
          for (let p = 0; p < n; p++) {
            const [s, t] = e.offsets[p];
            if (t > entity.start && s < entity.end) {
              entity.pieces.push({
                piece: e.pieces[p],
                start: s,
                end: t,
                tag: tags[p],
                probability: probs[p],
              });
            }
          }
        }
      }
      paths.push({ score, entities });
    }
    return { best: paths[0]?.entities ?? [], paths, tags: bestTags, offsets: e.offsets };
  }
}

function checkTexts(input: string | string[]): string[] {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input)) {
    throw new TypeError(`predict takes a string or an array of strings, got ${typeof input}`);
  }
  if (input.length === 0) throw new TypeError('predict was given an empty array of texts');
  input.forEach((t, i) => {
    if (typeof t !== 'string') throw new TypeError(`texts[${i}] is ${typeof t}, not a string`);
  });
  return input;
}

/** Indices grouped into batches of similar length (sorted by length, stable). */
function lengthBatches(lengths: number[], batchSize: number): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const batches: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) batches.push(order.slice(i, i + batchSize));
  return batches;
}
