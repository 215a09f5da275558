/**
 * Which examples go into which batch, in which order, on which worker — a pure function of the
 * example lengths, the options, the seed and the epoch. Nothing here holds state between epochs,
 * so a resumed run needs only a {@link BatchCursor} to see exactly the batches an uninterrupted
 * run would have seen.
 *
 * Bucketing: each epoch's examples are shuffled, cut into chunks of `bucketBatches × batchSize`,
 * each chunk is sorted by length and cut into batches, and then the order of all batches is
 * shuffled. Batches hold examples of similar length (little padding) while every epoch still
 * mixes lengths and contents differently.
 *
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';

import { Rng } from './rng.js';

/** How an epoch's batches are formed. */
export interface BatchingOptions {
  /** Most examples per batch (per worker, per micro-batch). */
  batchSize: number;
  /**
   * Most padded tokens per batch, `examples × longest example`; `null`/absent for no limit. An
   * example longer than the budget still gets a batch of its own.
   */
  maxTokens?: number | null;
  /** Seed of the shuffles; with the epoch it fixes the whole order. */
  seed: number;
  /** Batches' worth of examples sorted together (default 50). 1 sorts within each batch only. */
  bucketBatches?: number;
  /**
   * Shuffle (default true). False is for evaluation: all examples sorted by length (ties by
   * index), batches in that order, the same every epoch.
   */
  shuffle?: boolean;
}

/** Position in the stream of one worker's batches: the next batch to take. */
export interface BatchCursor {
  /** 0-based epoch. */
  epoch: number;
  /** 0-based index into this worker's batches of that epoch. */
  batchIndex: number;
}

/** One batch handed out by {@link iterateBatches}. */
export interface CursorBatch {
  /** Example indices, sorted by length within the batch (shortest first). */
  indices: number[];
  /** Where this batch is. */
  cursor: BatchCursor;
  /** Where the batch after it is: save this to resume after this batch. */
  next: BatchCursor;
  /** Batches this worker has in this epoch. */
  epochBatches: number;
}

/** The default of {@link BatchingOptions.bucketBatches}. */
export const DEFAULT_BUCKET_BATCHES = 50;

function checkInteger(value: unknown, name: string, min: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer ≥ ${min}, got ${String(value)}`);
  }
}

function checkOptions(options: BatchingOptions): void {
  checkInteger(options.batchSize, 'batchSize', 1);
  if (options.maxTokens !== undefined && options.maxTokens !== null) {
    checkInteger(options.maxTokens, 'maxTokens', 1);
  }
  checkInteger(options.seed, 'seed', 0);
  if (options.bucketBatches !== undefined) checkInteger(options.bucketBatches, 'bucketBatches', 1);
}

function checkLengths(lengths: ArrayLike<number>): void {
  for (let i = 0; i < lengths.length; i++) {
    const n = lengths[i];
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`lengths[${i}] must be a positive integer, got ${n}`);
    }
  }
}

// Greedy cut of length-sorted examples: a batch closes when it is full or when one more example
// would push padded tokens (count × longest, the last one being the longest) over the budget.
function cut(sorted: number[], lengths: ArrayLike<number>, options: BatchingOptions): number[][] {
  const budget = options.maxTokens ?? Infinity;
  const out: number[][] = [];
  let batch: number[] = [];
  for (const index of sorted) {
    const longest = Math.max(lengths[index], batch.length ? lengths[batch[batch.length - 1]] : 0);
    if (
      batch.length > 0 &&
      (batch.length >= options.batchSize || (batch.length + 1) * longest > budget)
    ) {
      out.push(batch);
      batch = [];
    }
    batch.push(index);
  }
  if (batch.length > 0) out.push(batch);
  return out;
}

/**
 * All batches of one epoch, before sharding: lists of example indices covering every example
 * exactly once. Deterministic in `(lengths, options, epoch)`.
 *
 * Each sorting chunk ends with its own possibly short batch, so an epoch has
 * `Σ ceil(chunk / batchSize)` batches without a token budget — a fixed number — and a number
 * that may vary from epoch to epoch with one.
 *
 * @param lengths per-example lengths in pieces (including [CLS]/[SEP]), all ≥ 1.
 * @param epoch 0-based epoch; the shuffles of epoch e come from `Rng.fromSeed(seed, e)`.
 */
export function epochBatches(
  lengths: ArrayLike<number>,
  epoch: number,
  options: BatchingOptions,
): number[][] {
  checkOptions(options);
  checkLengths(lengths);
  checkInteger(epoch, 'epoch', 0);
  const order = Array.from({ length: lengths.length }, (_, i) => i);
  const byLength = (a: number, b: number): number => lengths[a] - lengths[b] || a - b;
  if (options.shuffle === false) return cut(order.sort(byLength), lengths, options);

  const rng = Rng.fromSeed(options.seed, epoch);
  rng.shuffle(order);
  const chunk = options.batchSize * (options.bucketBatches ?? DEFAULT_BUCKET_BATCHES);
  const batches: number[][] = [];
  for (let start = 0; start < order.length; start += chunk) {
    // Ties keep their shuffled order (Array.prototype.sort is stable), so equal-length examples
    // still meet different neighbours each epoch.
    const sorted = order.slice(start, start + chunk).sort((a, b) => lengths[a] - lengths[b]);
    batches.push(...cut(sorted, lengths, options));
  }
  return rng.shuffle(batches);
}

/**
 * One worker's share of an epoch's batches: batch `rank`, `rank + worldSize`, `rank + 2·worldSize`…
 * of the first `floor(n / worldSize) × worldSize` batches.
 *
 * Remainder rule: the last `n mod worldSize` batches (fewer than `worldSize`) are dropped, so every
 * rank takes the same number of steps (a collective all-reduce must never wait for a rank that has
 * run out). Since the batch order is reshuffled every epoch, different examples are left out each
 * epoch; with `worldSize` 1 nothing is ever dropped. The shares are disjoint.
 */
export function shard<T>(batches: readonly T[], rank: number, worldSize: number): T[] {
  checkInteger(worldSize, 'worldSize', 1);
  checkInteger(rank, 'rank', 0);
  if (rank >= worldSize) throw new RangeError(`rank ${rank} must be below worldSize ${worldSize}`);
  const perRank = Math.floor(batches.length / worldSize);
  const out: T[] = new Array(perRank);
  for (let i = 0; i < perRank; i++) out[i] = batches[i * worldSize + rank];
  return out;
}

/** Data-parallel position of this process. */
export interface WorkerShard {
  /** 0-based rank (default 0). */
  rank?: number;
  /** Number of workers (default 1). */
  worldSize?: number;
}

/** Options of {@link iterateBatches}. */
export interface IterateOptions extends WorkerShard {
  /** Where to start (default `{ epoch: 0, batchIndex: 0 }`). */
  from?: BatchCursor;
  /** Stop before this epoch (default: never; the caller stops by step count). */
  epochs?: number;
}

/**
 * This worker's batches from a cursor on, epoch after epoch. Starting at a saved `next` cursor
 * yields exactly the batches an uninterrupted iteration would have yielded after that point.
 * A cursor whose `batchIndex` equals the epoch's batch count is the start of the next epoch.
 */
export function* iterateBatches(
  lengths: ArrayLike<number>,
  options: BatchingOptions,
  iterate: IterateOptions = {},
): Generator<CursorBatch, void, undefined> {
  const rank = iterate.rank ?? 0;
  const worldSize = iterate.worldSize ?? 1;
  const from = iterate.from ?? { epoch: 0, batchIndex: 0 };
  checkCursor(from);
  const endEpoch = iterate.epochs ?? Infinity;
  let { epoch, batchIndex } = from;
  while (epoch < endEpoch) {
    const mine = shard(epochBatches(lengths, epoch, options), rank, worldSize);
    // An empty share (fewer batches than workers) would loop forever without progress.
    if (mine.length === 0) {
      throw new RangeError(`epoch ${epoch} has no batches for rank ${rank} of ${worldSize}`);
    }
    if (batchIndex > mine.length) {
      throw new RangeError(
        `cursor batchIndex ${batchIndex} is past the ${mine.length} batches of epoch ${epoch}`,
      );
    }
    for (; batchIndex < mine.length; batchIndex++) {
      const cursor = { epoch, batchIndex };
      const next =
        batchIndex + 1 < mine.length
          ? { epoch, batchIndex: batchIndex + 1 }
          : { epoch: epoch + 1, batchIndex: 0 };
      yield { indices: mine[batchIndex], cursor, next, epochBatches: mine.length };
    }
    epoch++;
    batchIndex = 0;
  }
}

/**
 * Checks a cursor read from a file.
 *
 * @throws Error naming `where` when it is not `{ epoch, batchIndex }` with integers ≥ 0.
 */
export function checkCursor(value: unknown, where = 'cursor'): asserts value is BatchCursor {
  const c = value as Record<string, unknown>;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${where} must be an object { epoch, batchIndex }`);
  }
  for (const key of Object.keys(c)) {
    if (key !== 'epoch' && key !== 'batchIndex') throw new Error(`${where}.${key} is not a field`);
  }
  for (const key of ['epoch', 'batchIndex']) {
    const v = c[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      throw new Error(`${where}.${key} must be an integer ≥ 0, got ${JSON.stringify(v)}`);
    }
  }
}

/** Step counts of a run, computed before it starts. */
export interface StepPlan {
  /** Optimizer steps in each epoch that is run (the last may be cut short by `maxSteps`). */
  perEpoch: number[];
  /** Optimizer steps of the whole run: the schedule's length. */
  total: number;
  /** Micro-batches per worker in each epoch run. */
  microBatches: number[];
}

/** Options of {@link planSteps}. */
export interface PlanOptions extends WorkerShard {
  epochs: number;
  /** When set, the run lasts exactly this many optimizer steps, whatever `epochs` says. */
  maxSteps?: number | null;
  /** Micro-batches per optimizer step (default 1). */
  gradAccumulation?: number;
}

/**
 * Optimizer steps per epoch and in total. An epoch of `m` micro-batches takes
 * `ceil(m / gradAccumulation)` optimizer steps: a last, partial accumulation group still steps, so
 * no example's gradient is thrown away. Epoch lengths can differ when a token budget is set, which
 * is why this walks the actual epochs rather than multiplying.
 */
export function planSteps(
  lengths: ArrayLike<number>,
  options: BatchingOptions,
  plan: PlanOptions,
): StepPlan {
  const worldSize = plan.worldSize ?? 1;
  const rank = plan.rank ?? 0;
  const accumulation = plan.gradAccumulation ?? 1;
  checkInteger(accumulation, 'gradAccumulation', 1);
  checkInteger(plan.epochs, 'epochs', 1);
  const maxSteps = plan.maxSteps ?? null;
  if (maxSteps !== null) checkInteger(maxSteps, 'maxSteps', 1);
  const perEpoch: number[] = [];
  const microBatches: number[] = [];
  let total = 0;
  for (let epoch = 0; maxSteps === null ? epoch < plan.epochs : total < maxSteps; epoch++) {
    const micro = shard(epochBatches(lengths, epoch, options), rank, worldSize).length;
    if (micro === 0) {
      throw new RangeError(`epoch ${epoch} has no batches for rank ${rank} of ${worldSize}`);
    }
    let steps = Math.ceil(micro / accumulation);
    if (maxSteps !== null) steps = Math.min(steps, maxSteps - total);
    perEpoch.push(steps);
    microBatches.push(micro);
    total += steps;
    // Without a token budget every epoch has the same count: no need to build the rest.
    if (maxSteps === null && !options.maxTokens) {
      while (perEpoch.length < plan.epochs) {
        perEpoch.push(steps);
        microBatches.push(micro);
        total += steps;
      }
      break;
    }
  }
  return { perEpoch, total, microBatches };
}

/**
 * A hex digest of everything that decides the data order (lengths, options, world size). A
 * resumed run compares it with the one saved in its checkpoint: a cursor means nothing once any
 * of these has changed.
 */
export function batchingFingerprint(
  lengths: ArrayLike<number>,
  options: BatchingOptions,
  worldSize = 1,
): string {
  const hash = createHash('sha256');
  hash.update(
    JSON.stringify({
      batchSize: options.batchSize,
      maxTokens: options.maxTokens ?? null,
      seed: options.seed,
      bucketBatches: options.bucketBatches ?? DEFAULT_BUCKET_BATCHES,
      shuffle: options.shuffle ?? true,
      worldSize,
      examples: lengths.length,
    }),
  );
  hash.update(Int32Array.from(lengths));
  return hash.digest('hex').slice(0, 32);
}

/** Sequences padded to a `[rows, cols]` row-major matrix. */
export interface PaddedBatch {
  /** `rows × cols` values, row-major; positions past a row's length hold the pad value. */
  data: Int32Array;
  /** Each row's real length. */
  lengths: Int32Array;
  rows: number;
  /** The longest row's length (dynamic padding: never more than needed). */
  cols: number;
}

/**
 * Packs sequences into one padded matrix, padding to the longest sequence of this batch.
 *
 * @param padValue fills positions past each row's end: the `[PAD]` id for piece ids, or an
 *   ignore label for tags.
 * @throws RangeError when a value is not a 32-bit integer.
 */
export function padSequences(
  sequences: readonly ArrayLike<number>[],
  padValue: number,
): PaddedBatch {
  if (!Number.isInteger(padValue) || (padValue | 0) !== padValue) {
    throw new RangeError(`padValue must be a 32-bit integer, got ${padValue}`);
  }
  const rows = sequences.length;
  let cols = 0;
  for (const s of sequences) cols = Math.max(cols, s.length);
  const data = new Int32Array(rows * cols).fill(padValue);
  const lengths = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const s = sequences[r];
    lengths[r] = s.length;
    const base = r * cols;
    for (let c = 0; c < s.length; c++) {
      const v = s[c];
      // `| 0` maps anything that is not a 32-bit integer to a different value.
      if ((v | 0) !== v)
        throw new RangeError(`row ${r} position ${c}: ${v} is not a 32-bit integer`);
      data[base + c] = v;
    }
  }
  return { data, lengths, rows, cols };
}

/** An example ready for the model: piece ids and tag ids of the same length. */
export interface TokenizedExample {
  ids: ArrayLike<number>;
  labels: ArrayLike<number>;
}

/**
 * Pads a batch's ids and labels together.
 *
 * @throws RangeError when an example's ids and labels differ in length.
 */
export function collate(
  examples: readonly TokenizedExample[],
  padId: number,
  labelPad: number,
): { ids: PaddedBatch; labels: PaddedBatch } {
  examples.forEach((e, i) => {
    if (e.ids.length !== e.labels.length) {
      throw new RangeError(`example ${i} has ${e.ids.length} ids but ${e.labels.length} labels`);
    }
  });
  return {
    ids: padSequences(
      examples.map((e) => e.ids),
      padId,
    ),
    labels: padSequences(
      examples.map((e) => e.labels),
      labelPad,
    ),
  };
}
