/**
 * NerModel, the public model API: a model directory (config.json + model.safetensors + the
 * tokenizer files it names) loaded into the native addon, and `predict` from text to entities
 * with exact offsets and confidence scores.
 */
import path from 'node:path';

import { decodeEntities, type DecodedEntity } from '../labels/decode.js';
import { parseTag } from '../labels/scheme.js';
import { LIMITS } from '../limits.js';
import {
  type EncoderDtype,
  native,
  type NativeDecoded,
  type NativeInputs,
  type NativeModel,
} from '../native.js';
import { setThreads } from '../runtime.js';
import { Tokenizer } from '../tokenizer/index.js';
import { collateSyllables, pieceSyllables } from '../tokenizer/syllables.js';
import { padSequences } from '../train/batching.js';
import { readModelConfig, type ModelConfig } from './config.js';
import { defaultModelDir } from './default-model.js';
import { loadEnsemble } from './ensemble.js';
import { attachPieces } from './entity-pieces.js';
import { loadNetwork } from './load-network.js';
import { resolveTokenizerFiles, type TokenizerFiles } from './tokenizer-files.js';
import { planWindows, stitchAttention, stitchEmissions, type PieceWindow } from './windows.js';

export type { TokenizerFiles } from './tokenizer-files.js';

/**
 * The precision a model tags in when none is asked for: its config's `inference_dtype` where
 * this device runs it natively (bfloat16: a CPU with AVX512_BF16 or AMX-BF16), else as built.
 */
function preferredDtype(config: ModelConfig, device = 'cpu'): EncoderDtype | undefined {
  if (config.inferenceDtype !== 'bfloat16' || device !== 'cpu') return undefined;
  const cpu = native().cpuFeatures();
  return cpu.avx512Bf16 || cpu.amxBf16 ? 'bfloat16' : undefined;
}

/** An entity found in a text. `text.slice(start, end)` of the input is `text`. */
export type NerEntity = DecodedEntity;

export interface NerModelLoadOptions {
  /** `'cpu'` (default), `'cuda'` or `'cuda:N'`. */
  device?: string;
  /** LibTorch intra-op threads (default: the available cores). Applies process-wide. */
  threads?: number;
  /**
   * The encoder's precision. float16 needs CUDA. On the CPU, bfloat16 needs AVX512_BF16 or
   * AMX-BF16 and int8 (dynamic quantization) AVX512_VNNI or AMX-INT8, read at run time: without
   * them loading fails, naming what is missing (`runtimeInfo().cpu` tells in advance). The CRF
   * always runs in fp32. Default: float32, or bfloat16 for a model whose config.json says
   * `"inference_dtype": "bfloat16"` (the bundled one does) on a CPU that has those features.
   */
  dtype?: EncoderDtype;
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
  /**
   * Stops the work when aborted: the call rejects with the signal's reason before its next
   * native call (a batch of at most `batchSize` sequences).
   */
  signal?: AbortSignal;
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

export interface AttentionOptions {
  /** Encoder layers to return, 0-based, in this order (default: all). */
  layers?: number[];
  /** Attention heads to return, 0-based, in this order (default: all). */
  heads?: number[];
  /** Overlap, in pieces, between windows of a text longer than the model's positions. */
  windowOverlap?: number;
}

/** A token of the sequence the encoder reads: `[CLS]`, the text's pieces, `[SEP]`. */
export interface AttentionToken {
  piece: string;
  /** UTF-16 offsets into the text (`[CLS]` is `[0, 0)`, `[SEP]` `[length, length)`). */
  start: number;
  end: number;
}

/** What `NerModel.attentions` returns. */
export interface AttentionMaps {
  text: string;
  /** `[CLS]`, the pieces, `[SEP]`: N tokens, the rows and columns of every map. */
  tokens: AttentionToken[];
  layers: number[];
  heads: number[];
  /**
   * `attentions[i][j]`: layer `layers[i]`, head `heads[j]`, an N × N row-major Float32Array
   * whose row q is how token q spreads its attention over the tokens (each row sums to 1).
   */
  attentions: Float32Array[][];
  /**
   * The windows of pieces (`[start, end)`, piece indices) the text was encoded in: one when it
   * fits the model's positions. Otherwise each token's row comes from the window `predict` takes
   * its emissions from, with 0 for the tokens outside that window.
   */
  windows: PieceWindow[];
}

export interface ExplainOptions extends AttentionOptions {
  /** As in `predict` (default true). */
  constrained?: boolean;
  /** As in `predict` (default true). */
  refine?: boolean;
}

/** What `NerModel.explain` returns: the attention maps and the tagging they led to. */
export interface Explanation extends AttentionMaps {
  entities: NerEntity[];
  /** The tag names, by id (the columns of `marginals`). */
  labels: readonly string[];
  /** The best path's tag of every token (`[CLS]` and `[SEP]` included). */
  tags: string[];
  /** P(tag | text) of every token and tag, N × K row-major: the CRF's marginals. */
  marginals: Float32Array;
}

/** The most attention values (floats) one call may return: 2^26, 256 MiB. */
export const MAX_ATTENTION_VALUES = 2 ** 26;

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
  readonly #owned: boolean;
  // Labels that are not BIO tags (e.g. the reference project's [CLS] [SEP] [PAD] [MASK]) mean O.
  readonly #bioLabels: string[];

  private constructor(
    dir: string,
    config: ModelConfig,
    tokenizer: Tokenizer,
    model: NativeModel,
    owned: boolean,
  ) {
    this.dir = dir;
    this.#owned = owned;
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
    return new NerModel(path.resolve(dir), config, tokenizer, model, false);
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
    const placement = {
      device: options.device,
      dtype: options.dtype ?? preferredDtype(config, options.device),
    };
    const model = config.ensemble
      ? await loadEnsemble(
          config.ensemble.map((member) => path.join(dir, member)),
          config,
          placement,
        )
      : await loadNetwork(dir, config, placement);
    return new NerModel(path.resolve(dir), config, tokenizer, model, true);
  }

  /** Where the model runs now. */
  get placement(): { device: string; dtype: EncoderDtype } {
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
    if (!Number.isInteger(nBest) || nBest < 1 || nBest > LIMITS.maxNBest) {
      throw new TypeError(
        `nBest must be an integer from 1 to ${LIMITS.maxNBest}, got ${String(nBest)}`,
      );
    }
    const texts = checkTexts(input);
    const results = await this.#run(texts, options, nBest);
    const out = results.map((r) => r.paths);
    return typeof input === 'string' ? out[0] : out;
  }

  /**
   * The attention probabilities of a text (Hugging Face's `output_attentions`), for the chosen
   * layers and heads, with the tokens they are over. They come from the forward pass `predict`
   * runs, kept only when asked for. A text longer than the model's positions is read in the
   * windows `predict` uses and the maps are stitched (see `AttentionMaps.windows`).
   */
  async attentions(text: string, options: AttentionOptions = {}): Promise<AttentionMaps> {
    const { maps } = await this.#attend(text, options, 'attentions');
    return maps;
  }

  /**
   * `attentions` together with what they led to, from the same forward pass: the entities (as
   * `predict` finds them), every token's tag and the CRF's marginals.
   */
  async explain(text: string, options: ExplainOptions = {}): Promise<Explanation> {
    const { maps, encoded, emissions } = await this.#attend(text, options, 'explain');
    const K = this.labels.length;
    const N = maps.tokens.length;
    const decoded = await this.#model().decodeEmissions(emissions, [1, N, K], Int32Array.of(N), {
      nBest: 1,
      constraints: options.constrained === false ? undefined : bioConstraints(this.labels),
      marginals: true,
    });
    const { best } = this.#entities(encoded, decoded, 0, N, 1, { refine: options.refine });
    return {
      ...maps,
      entities: best,
      labels: this.labels,
      tags: Array.from(decoded.tags, (t) => this.labels[t]),
      marginals: decoded.marginals!,
    };
  }

  /** One forward over a text's windows keeping attentions: the stitched maps and emissions. */
  async #attend(text: string, options: AttentionOptions, method: string) {
    if (typeof text !== 'string') {
      throw new TypeError(`${method} takes a string, got ${describe(text)}`);
    }
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`${method}: options must be an object, got ${describe(options)}`);
    }
    const layers = indexList(options.layers, this.config.numHiddenLayers, 'layers', 'layer');
    const heads = indexList(options.heads, this.config.numAttentionHeads, 'heads', 'head');
    const maxPieces = this.config.maxPositionEmbeddings - 2;
    const overlap = checkOverlap(options.windowOverlap, maxPieces);
    const e = this.tokenizer.encode(text);
    const encoded: Encoded = { text, ...e, windows: planWindows(e.ids.length, maxPieces, overlap) };
    const n = e.ids.length;
    const N = n + 2;
    const values = N * N * layers.length * heads.length;
    if (values > MAX_ATTENTION_VALUES) {
      throw new RangeError(
        `${method}: ${N} tokens × ${layers.length} layers × ${heads.length} heads make ` +
          `${values} attention values, more than ${MAX_ATTENTION_VALUES}; ask for fewer layers ` +
          `or heads, or a shorter text`,
      );
    }
    const model = this.#model();
    const K = this.labels.length;
    const H = heads.length;
    // Each window's maps [layer][head] and emission rows, one native call per window (a window's
    // maps for every head of every layer can be large; windows are few).
    const windowMaps: Float32Array[][][] = [];
    const windowRows: Float32Array[] = [];
    for (const w of encoded.windows) {
      const seq = this.#withSpecials(e.ids.subarray(w.start, w.end));
      const T = seq.length;
      const out = await model.attentions(
        seq,
        [1, T],
        Int32Array.of(T),
        layers,
        heads,
        this.#syllables([{ text, offsets: e.offsets.slice(w.start, w.end) }], T),
      );
      windowRows.push(out.emissions);
      windowMaps.push(
        layers.map((_, l) =>
          heads.map((_, h) =>
            out.attentions.subarray((l * H + h) * T * T, (l * H + h + 1) * T * T),
          ),
        ),
      );
    }
    const strides = encoded.windows.map((w) => w.end - w.start + 2);
    const attentions = layers.map((_, l) =>
      heads.map((_, h) =>
        stitchAttention(
          n,
          encoded.windows,
          windowMaps.map((m) => m[l][h]),
          strides,
        ),
      ),
    );
    const tokens: AttentionToken[] = [
      { piece: '[CLS]', start: 0, end: 0 },
      ...e.pieces.map((piece, p) => ({ piece, start: e.offsets[p][0], end: e.offsets[p][1] })),
      { piece: '[SEP]', start: text.length, end: text.length },
    ];
    const maps: AttentionMaps = {
      text,
      tokens,
      layers,
      heads,
      attentions,
      windows: encoded.windows.map((w) => ({ ...w })),
    };
    return { maps, encoded, emissions: stitchEmissions(n, K, encoded.windows, windowRows) };
  }

  #withSpecials(ids: Int32Array): Int32Array {
    const seq = new Int32Array(ids.length + 2);
    seq[0] = this.tokenizer.specialIds.cls;
    seq.set(ids, 1);
    seq[seq.length - 1] = this.tokenizer.specialIds.sep;
    return seq;
  }

  /**
   * Emissions for sequences of token ids that already include [CLS] and [SEP]: one Float32Array
   * of T×K (row-major) per sequence.
   */
  async logits(ids: ArrayLike<number>[]): Promise<Float32Array[]> {
    if (!Array.isArray(ids) || ids.length === 0) {
      throw new TypeError('ids must be a non-empty array of token-id arrays');
    }
    if (this.config.syllableVocabSize) {
      throw new Error(
        'logits(ids) cannot give a model with a syllable channel its syllables (they come from ' +
          'the text): use predict or predictPaths',
      );
    }
    const K = this.labels.length;
    const maxT = this.config.maxPositionEmbeddings;
    for (let i = 0; i < ids.length; i++) {
      const seq = ids[i] as ArrayLike<number> | undefined;
      if (!seq || typeof seq.length !== 'number' || seq.length === 0) {
        throw new TypeError(`ids[${i}] must be a non-empty array of token ids`);
      }
      if (seq.length > maxT) {
        throw new RangeError(`ids[${i}] has ${seq.length} ids; the model takes at most ${maxT}`);
      }
    }
    const out: Float32Array[] = new Array(ids.length);
    const order = ids.map((_, i) => i);
    for (const batch of lengthBatches(order, (i) => ids[i].length, 32)) {
      const seqs = batch.map((i) => ids[i]);
      const { data, lengths, cols: T } = padSequences(seqs, this.config.padTokenId);
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

  /**
   * Frees the native model's memory now instead of at garbage collection, once the calls in
   * flight are done (the Promise resolves then). Every later call fails saying the model was
   * disposed; a second `dispose` does nothing.
   */
  dispose(): Promise<void> {
    const model = this.#native;
    this.#native = null;
    // A view made by fromNative only lets go: the native model belongs to whoever made it.
    return model && this.#owned ? model.dispose() : Promise.resolve();
  }

  #model(): NativeModel {
    if (!this.#native) throw new Error('this NerModel has been disposed');
    return this.#native;
  }

  /** Checks the options, then tokenizes each text and plans its windows. */
  #plan(texts: string[], options: PredictOptions): Plan {
    const batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new TypeError(`batchSize must be a positive integer, got ${String(options.batchSize)}`);
    }
    const maxPieces = this.config.maxPositionEmbeddings - 2;
    const overlap = checkOverlap(options.windowOverlap, maxPieces);
    const encoded = texts.map((text): Encoded => {
      const e = this.tokenizer.encode(text);
      return { text, ...e, windows: planWindows(e.ids.length, maxPieces, overlap) };
    });
    return {
      encoded,
      batchSize,
      constraints: options.constrained === false ? undefined : bioConstraints(this.labels),
      signal: options.signal,
    };
  }

  /**
   * Every text's paths. Native calls go one at a time (awaited in turn, each of at most
   * `batchSize` sequences), so calls of other requests interleave with a long text's, and an
   * aborted `signal` stops the work at the next call.
   */
  async #run(texts: string[], options: PredictOptions, nBest: number): Promise<TextResult[]> {
    options.signal?.throwIfAborted();
    const model = this.#model();
    const plan = this.#plan(texts, options);
    const results: TextResult[] = new Array(texts.length);
    const decodeOptions = { nBest, constraints: plan.constraints, marginals: true };
    const settle = (t: number, decoded: NativeDecoded, b: number, T: number) => {
      results[t] = this.#entities(plan.encoded[t], decoded, b, T, nBest, options);
    };

    // Texts that fit in one window (nearly all): encoder and CRF in one native call per batch of
    // similar lengths, so the emissions never cross into JS and back.
    const whole = plan.encoded.flatMap((e, t) => (e.windows.length === 1 ? [t] : []));
    for (const batch of lengthBatches(whole, (t) => plan.encoded[t].ids.length, plan.batchSize)) {
      plan.signal?.throwIfAborted();
      const seqs = batch.map((t) => this.#withSpecials(plan.encoded[t].ids));
      const { data, lengths, cols: T } = padSequences(seqs, this.config.padTokenId);
      const rows = batch.map((t) => ({
        text: plan.encoded[t].text,
        offsets: plan.encoded[t].offsets,
      }));
      const decoded = await model.decode(
        data,
        [batch.length, T],
        lengths,
        decodeOptions,
        this.#syllables(rows, T),
      );
      batch.forEach((t, b) => settle(t, decoded, b, T));
    }

    // Longer texts: the encoder over every window, then the CRF over each text as a whole.
    const windowed = plan.encoded.flatMap((e, t) => (e.windows.length > 1 ? [t] : []));
    if (windowed.length === 0) return results;
    const rows = await this.#windowEmissions(model, plan, windowed);
    const K = this.labels.length;
    for (const batch of lengthBatches(
      windowed,
      (t) => plan.encoded[t].ids.length,
      plan.batchSize,
    )) {
      plan.signal?.throwIfAborted();
      const T = Math.max(...batch.map((t) => plan.encoded[t].ids.length + 2));
      const emissions = new Float32Array(batch.length * T * K);
      const lengths = new Int32Array(batch.length);
      batch.forEach((t, b) => {
        const e = plan.encoded[t];
        emissions.set(stitchEmissions(e.ids.length, K, e.windows, rows[t]), b * T * K);
        lengths[b] = e.ids.length + 2;
      });
      const decoded = await model.decodeEmissions(
        emissions,
        [batch.length, T, K],
        lengths,
        decodeOptions,
      );
      batch.forEach((t, b) => settle(t, decoded, b, T));
    }
    return results;
  }

  /** The emissions of every window of the given texts, batched by length: `rows[text][window]`. */
  async #windowEmissions(
    model: NativeModel,
    plan: Plan,
    texts: number[],
  ): Promise<Float32Array[][]> {
    const K = this.labels.length;
    const windows = texts.flatMap((text) =>
      plan.encoded[text].windows.map((w, window) => ({ text, window, pieces: w.end - w.start })),
    );
    const rows: Float32Array[][] = plan.encoded.map((e) => new Array(e.windows.length));
    const order = windows.map((_, k) => k);
    for (const batch of lengthBatches(order, (k) => windows[k].pieces, plan.batchSize)) {
      plan.signal?.throwIfAborted();
      const spans = batch.map((k) => {
        const e = plan.encoded[windows[k].text];
        const w = e.windows[windows[k].window];
        return {
          ids: e.ids.subarray(w.start, w.end),
          text: e.text,
          offsets: e.offsets.slice(w.start, w.end),
        };
      });
      const seqs = spans.map((span) => this.#withSpecials(span.ids));
      const { data, lengths, cols: T } = padSequences(seqs, this.config.padTokenId);
      const emissions = await model.emissions(
        data,
        [batch.length, T],
        lengths,
        this.#syllables(spans, T),
      );
      batch.forEach((k, b) => {
        const { text, window } = windows[k];
        rows[text][window] = emissions.subarray(b * T * K, (b * T + lengths[b]) * K);
      });
    }
    return rows;
  }

  /**
   * The syllable ids of `[CLS] pieces [SEP]` rows of `T` positions, for a model with a syllable
   * channel (undefined for any other).
   */
  #syllables(
    rows: { text: string; offsets: [number, number][] }[],
    T: number,
  ): NativeInputs | undefined {
    if (!this.config.syllableVocabSize) return undefined;
    const batch = collateSyllables(
      rows.map((r) => pieceSyllables(r.text, r.offsets)),
      T,
    );
    return { syllables: batch.ids, syllablesPerPiece: batch.syllables };
  }

  #entities(
    e: Encoded,
    decoded: NativeDecoded,
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
      let entities = decodeEntities(e.text, e.offsets, tags, {
        scores: probs,
        refine: options.refine ?? true,
      });
      if (k === 0) {
        bestTags = tags;
        if (options.withProbabilities) {
          entities = attachPieces(entities, e.pieces, e.offsets, tags, probs);
        }
      }
      paths.push({ score, entities });
    }
    return { best: paths[0]?.entities ?? [], paths, tags: bestTags, offsets: e.offsets };
  }
}

/** The window overlap option, defaulting to a quarter of a window. */
function checkOverlap(value: number | undefined, maxPieces: number): number {
  const overlap = value ?? Math.floor(maxPieces / 4);
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= maxPieces) {
    throw new TypeError(`windowOverlap must be an integer from 0 to ${maxPieces - 1}`);
  }
  return overlap;
}

/** A layers/heads option: every index when absent, else a non-empty array of valid indices. */
function indexList(value: unknown, count: number, name: string, noun: string): number[] {
  if (value === undefined) return Array.from({ length: count }, (_, i) => i);
  if (!Array.isArray(value) || value.length === 0) {
    throw new TypeError(
      `${name} must be a non-empty array of ${noun} indices, got ${describe(value)}`,
    );
  }
  value.forEach((v: unknown, i) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      throw new TypeError(`${name}[${i}] must be an integer, got ${describe(v)}`);
    }
    if (v < 0 || v >= count) {
      throw new RangeError(
        `${name}[${i}] = ${v} is out of range: the model has ${count} ${noun}s (0 to ${count - 1})`,
      );
    }
  });
  return [...(value as number[])];
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}…` : value);
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'function') return 'a function';
  return String(value);
}

function checkTexts(input: string | string[]): string[] {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input)) {
    throw new TypeError(`predict takes a string or an array of strings, got ${typeof input}`);
  }
  if (input.length === 0) throw new TypeError('predict was given an empty array of texts');
  // A plain loop: forEach skips the holes of a sparse array ([, 'text']).
  for (let i = 0; i < input.length; i++) {
    const t: unknown = input[i];
    if (typeof t !== 'string') {
      const what = i in input ? typeof t : 'missing (a hole in a sparse array)';
      throw new TypeError(`texts[${i}] is ${what}, not a string`);
    }
  }
  return input;
}

/** Items grouped into batches of similar length (sorted by length, stable). */
function lengthBatches<T>(
  items: readonly T[],
  length: (item: T) => number,
  batchSize: number,
): T[][] {
  const order = items
    .map((item, i) => ({ item, i, n: length(item) }))
    .sort((a, b) => a.n - b.n || a.i - b.i);
  const batches: T[][] = [];
  for (let i = 0; i < order.length; i += batchSize) {
    batches.push(order.slice(i, i + batchSize).map((o) => o.item));
  }
  return batches;
}

interface TextResult {
  best: NerEntity[];
  paths: NerPath[];
  tags: string[];
  offsets: [number, number][];
}

/** What `#run` works from: the checked options and every text tokenized. */
interface Plan {
  encoded: Encoded[];
  batchSize: number;
  constraints: ReturnType<typeof bioConstraints> | undefined;
  signal: AbortSignal | undefined;
}
