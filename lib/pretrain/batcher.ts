/**
 * The pretraining batch stream: paragraphs (streamed, pass after pass) → leak check → windows →
 * buffers → length-bucketed, shuffled, masked batches, with a small state that resumes it
 * exactly.
 *
 * A buffer is read until it holds at least `bufferWindows` windows. Its windows are sorted by
 * length and cut into `m` batches of near-equal size (at most `batchSize`; `m` a multiple of
 * `worldSize`), so rows of a batch have similar lengths and padding stays small. The batch order
 * is shuffled, worker `rank` takes batches `rank, rank + worldSize, …`, and each batch is masked
 * when handed out, from its own generator `Rng.fromSeed(maskSeed, j)`, `maskSeed` drawn per
 * buffer. Every worker reads the same text and draws the same numbers, so workers get disjoint
 * batches, the same number of them, and need no communication.
 *
 * Resuming: the state holds where the current buffer started, the generator state then, and how
 * many of this worker's batches of it were handed out; a resumed stream re-reads that buffer
 * (one buffer of tokenizing) and skips them. After the last batch of a buffer the state points
 * at the next buffer instead, so a resume re-reads nothing.
 *
 * @packageDocumentation
 */
import path from 'node:path';

import type { Tokenizer } from '../tokenizer/index.js';
import { Rng, type RngState } from '../train/rng.js';
import {
  addParagraph,
  emptyTextStats,
  maskBatch,
  windowOptions,
  type MaskedBatch,
  type PieceWindow,
  type TextStats,
} from './examples.js';
import type { ValidationLeakGuard } from './leak-guard.js';
import { BERT_MASKING, WholeWordMasker, type MaskingOptions } from './masking.js';
import { readEpochs, type EpochPosition, type TextPosition } from './text-stream.js';

/** Options of {@link PretrainBatcher}. */
export interface PretrainBatcherOptions {
  /** The text files, read in this order, pass after pass. */
  files: readonly string[];
  /**
   * Where each pass stops (exclusive), e.g. `heldOutSplit(…).trainUntil` so the evaluation
   * paragraphs are never trained on. Default: the end of the last file.
   */
  until?: TextPosition;
  /** Passes over the text (default `Infinity`: the trainer stops at its step budget). */
  epochs?: number;
  tokenizer: Tokenizer;
  /**
   * Drops paragraphs that share text with the validation set. Required so that leaving it out is
   * a decision (`null`), never an accident.
   */
  guard: ValidationLeakGuard | null;
  /** Longest row in pieces, `[CLS]` and `[SEP]` included. */
  maxLength: number;
  /** Shorter windows are dropped (default `DEFAULT_MIN_PIECES`). */
  minPieces?: number;
  /** Most rows per batch (per worker). */
  batchSize: number;
  /**
   * Windows per buffer (default {@link DEFAULT_BUFFER_WINDOWS}): more mixes more articles into a
   * batch and buckets lengths more tightly, at the cost of memory and a longer re-read on resume.
   */
  bufferWindows?: number;
  /** Seed of batch order and masking. */
  seed: number;
  masking?: MaskingOptions;
  /** This worker, in `0 .. worldSize − 1` (default 0). */
  rank?: number;
  /** Workers sharing the stream (default 1). */
  worldSize?: number;
}

/** The default of {@link PretrainBatcherOptions.bufferWindows}. */
export const DEFAULT_BUFFER_WINDOWS = 8192;

/** Counters of a batch stream: text read (the same on every worker) and this worker's batches. */
export interface PretrainDataStats extends TextStats {
  /** Batches this worker handed out. */
  batches: number;
  /** Pieces chosen for prediction in this worker's batches. */
  maskedPieces: number;
  /** Windows left out when a buffer could not be cut evenly (only at the very end of the text). */
  unbatched: number;
}

/** The options that fix the stream; a state resumes only under the same ones. */
export interface PretrainDataConfig {
  /** File names (not directories: a checkpoint may move to another machine). */
  files: string[];
  until: TextPosition | null;
  epochs: number | null;
  maxLength: number;
  minPieces: number;
  batchSize: number;
  bufferWindows: number;
  worldSize: number;
  masking: MaskingOptions;
  /** The guard's rule and size, or null without one. */
  guard: { run: number; minSentence: number; keys: number } | null;
}

/** Where a batch stream is: save it with a checkpoint, pass it back to resume. JSON-safe. */
export interface PretrainDataState {
  /** Where the current buffer's first paragraph is looked for. */
  position: EpochPosition;
  /** The generator's state when that buffer was started. */
  rng: RngState;
  /** This worker's batches of that buffer already handed out. */
  batch: number;
  /** Counters up to here. */
  stats: PretrainDataStats;
  config: PretrainDataConfig;
}

/** One batch of {@link PretrainBatcher.batches}. */
export interface PretrainBatch extends MaskedBatch {
  /** The pass the batch's buffer started in. */
  epoch: number;
  /** The state after this batch: resume from it to continue with the next one. */
  next: PretrainDataState;
}

function checkInteger(value: unknown, name: string, min: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer ≥ ${min}, got ${String(value)}`);
  }
}

/** Masked-LM batches streamed from text files (see the module comment). */
export class PretrainBatcher {
  /** The options that fix the stream (recorded in every state). */
  readonly config: PretrainDataConfig;

  private readonly options: PretrainBatcherOptions;
  private readonly masker: WholeWordMasker;
  private readonly rank: number;
  private readonly worldSize: number;

  /** @throws RangeError for an option out of range. */
  constructor(options: PretrainBatcherOptions) {
    const { maxLength, minPieces } = windowOptions(options);
    checkInteger(options.batchSize, 'batchSize', 1);
    checkInteger(options.seed, 'seed', 0);
    const bufferWindows = options.bufferWindows ?? DEFAULT_BUFFER_WINDOWS;
    checkInteger(bufferWindows, 'bufferWindows', 1);
    const worldSize = options.worldSize ?? 1;
    const rank = options.rank ?? 0;
    checkInteger(worldSize, 'worldSize', 1);
    checkInteger(rank, 'rank', 0);
    if (rank >= worldSize) throw new RangeError(`rank ${rank} is not below worldSize ${worldSize}`);
    // Smaller buffers could leave a worker without a batch, and its windows would be lost.
    if (bufferWindows < options.batchSize * worldSize) {
      throw new RangeError(
        `bufferWindows (${bufferWindows}) must be at least batchSize × worldSize ` +
          `(${options.batchSize * worldSize})`,
      );
    }
    if (options.files.length === 0) throw new RangeError('files must name at least one file');
    const masking = options.masking ?? BERT_MASKING;
    const { specialIds, vocabSize } = options.tokenizer;
    this.masker = new WholeWordMasker(specialIds, vocabSize, masking);
    this.options = options;
    this.rank = rank;
    this.worldSize = worldSize;
    const guard = options.guard;
    this.config = {
      files: options.files.map((f) => path.basename(f)),
      until: options.until ? { file: options.until.file, line: options.until.line } : null,
      epochs: options.epochs === undefined || options.epochs === Infinity ? null : options.epochs,
      maxLength,
      minPieces,
      batchSize: options.batchSize,
      bufferWindows,
      worldSize,
      masking: {
        maskProbability: masking.maskProbability,
        replaceWithMask: masking.replaceWithMask,
        replaceWithRandom: masking.replaceWithRandom,
      },
      guard: guard ? { run: guard.run, minSentence: guard.minSentence, keys: guard.keys } : null,
    };
  }

  /** The state of a stream that has not started: the first buffer, from the seed. */
  initialState(): PretrainDataState {
    return {
      position: { epoch: 0, file: 0, line: 0 },
      rng: Rng.fromSeed(this.options.seed).state(),
      batch: 0,
      stats: { ...emptyTextStats(), batches: 0, maskedPieces: 0, unbatched: 0 },
      config: this.config,
    };
  }

  /**
   * This worker's batches, from `from` (default {@link initialState}) until the text ends (never,
   * with the default `epochs`).
   *
   * @throws Error when `from` is malformed or was saved under other options (naming the field);
   *   TextStreamError for unreadable text.
   */
  async *batches(from: PretrainDataState = this.initialState()): AsyncGenerator<PretrainBatch> {
    checkState(from, this.config);
    const { options, masker, rank, worldSize } = this;
    const stats: PretrainDataStats = { ...from.stats };
    const rng = Rng.fromState(from.rng);
    const text = readEpochs(options.files, from.position, {
      until: options.until,
      epochs: options.epochs,
    })[Symbol.asyncIterator]();
    let start: EpochPosition = { ...from.position };
    let skip = from.batch;
    const windowOpts = { maxLength: this.config.maxLength, minPieces: this.config.minPieces };
    for (;;) {
      // Fill a buffer. A resumed buffer was counted before the state was saved (skip > 0).
      const bufferRng = rng.state();
      const windows: PieceWindow[] = [];
      const counted = skip > 0 ? { ...stats } : stats;
      let end = start;
      let ended = false;
      while (windows.length < this.config.bufferWindows) {
        const next = await text.next();
        if (next.done) {
          ended = true;
          break;
        }
        addParagraph(
          next.value.text,
          options.tokenizer,
          options.guard,
          windowOpts,
          counted,
          windows,
        );
        end = next.value.position;
      }
      const plan = planBuffer(windows.length, this.config.batchSize, worldSize);
      stats.unbatched += skip > 0 ? 0 : windows.length - plan.used;
      // Sorted by length; Array.prototype.sort is stable, so ties keep reading order.
      const sorted = windows.sort((a, b) => a.ids.length - b.ids.length);
      const order = rng.shuffle(Array.from({ length: plan.sizes.length }, (_, i) => i));
      const maskSeed = rng.nextUint32();
      const firsts = new Int32Array(plan.sizes.length + 1);
      for (let i = 0; i < plan.sizes.length; i++) firsts[i + 1] = firsts[i] + plan.sizes[i];
      const mine = plan.sizes.length / worldSize;
      if (skip > mine) {
        throw new Error(
          `the buffer at pass ${start.epoch}, file ${start.file}, line ${start.line + 1} has ` +
            `${mine} batches per worker, but the state says ${skip} were handed out: ` +
            'has the text changed since the state was saved?',
        );
      }
      for (let k = skip; k < mine; k++) {
        const j = rank + k * worldSize; // this batch's place in the shuffled order
        const b = order[j];
        const batch = maskBatch(
          sorted.slice(firsts[b], firsts[b + 1]),
          masker,
          Rng.fromSeed(maskSeed, j),
          options.tokenizer.specialIds.pad,
        );
        stats.batches++;
        stats.maskedPieces += batch.maskedCount;
        const last = k + 1 === mine;
        const next: PretrainDataState = {
          position: last ? { ...end } : { ...start },
          rng: last ? rng.state() : bufferRng,
          batch: last ? 0 : k + 1,
          stats: { ...stats },
          config: this.config,
        };
        yield { ...batch, epoch: start.epoch, next };
      }
      skip = 0;
      if (ended) return;
      start = end;
    }
  }
}

/**
 * How a buffer of `n` windows is cut: `sizes[i]` windows (in length order) for batch `i`, the
 * number of batches a multiple of `worldSize`, each at most `batchSize` and at least 1, sizes
 * differing by at most one; `used` windows in all. All `n` are used except when `n` is too small
 * for a batch per worker (only the last buffer of a finite stream) or `batchSize` is 1.
 */
export function planBuffer(
  n: number,
  batchSize: number,
  worldSize: number,
): { sizes: number[]; used: number } {
  let m = worldSize * Math.ceil(n / (batchSize * worldSize));
  if (m > n) m = worldSize * Math.floor(n / worldSize);
  const used = Math.min(n, m * batchSize);
  const sizes: number[] = [];
  if (m === 0) return { sizes, used: 0 };
  const base = Math.floor(used / m);
  const extra = used % m;
  for (let i = 0; i < m; i++) sizes.push(base + (i < extra ? 1 : 0));
  return { sizes, used };
}

/**
 * Checks that `value` is a {@link PretrainDataState} that can resume a stream with `config`.
 *
 * @throws Error naming the malformed field, or the option that differs from when it was saved.
 */
export function checkState(
  value: unknown,
  config: PretrainDataConfig,
  where = 'pretraining data state',
): asserts value is PretrainDataState {
  const fail = (what: string): never => {
    throw new Error(`${where}: ${what}`);
  };
  if (value === null || typeof value !== 'object') fail('must be an object');
  const s = value as Record<string, unknown>;
  const p = s.position as Record<string, unknown> | null;
  const natural = (x: unknown): boolean => typeof x === 'number' && Number.isInteger(x) && x >= 0;
  if (!p || typeof p !== 'object' || !natural(p.epoch) || !natural(p.file) || !natural(p.line)) {
    fail(`position must be { epoch, file, line } of integers ≥ 0, got ${JSON.stringify(p)}`);
  }
  Rng.validateState(s.rng, `${where}: rng`);
  if (!natural(s.batch)) fail(`batch must be an integer ≥ 0, got ${JSON.stringify(s.batch)}`);
  const stats = s.stats as Record<string, unknown> | null;
  const statKeys: (keyof PretrainDataStats)[] = [
    'paragraphs',
    'leaks',
    'windows',
    'shortWindows',
    'pieces',
    'batches',
    'maskedPieces',
    'unbatched',
  ];
  for (const key of statKeys) {
    if (!stats || !natural(stats[key])) fail(`stats.${key} must be an integer ≥ 0`);
  }
  const saved = s.config as Record<string, unknown> | null;
  if (!saved || typeof saved !== 'object') fail('config must be an object');
  for (const key of Object.keys(config) as (keyof PretrainDataConfig)[]) {
    const a = JSON.stringify(saved?.[key]);
    const b = JSON.stringify(config[key]);
    if (a !== b) {
      fail(
        `was saved with ${key} = ${a}, but the stream now has ${key} = ${b}; ` +
          'an exact resume needs the same data options',
      );
    }
  }
}
