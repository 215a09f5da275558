/**
 * A micro-batcher: items submitted by concurrent callers within a few milliseconds of each other
 * (or until a batch is full) go to the model in one call, and each caller gets its own results
 * back. One native forward over 32 short texts costs little more than over one, so batching is
 * what lets a server keep up with many small requests.
 */

/** Options of {@link MicroBatcher}. */
export interface MicroBatcherOptions {
  /** Most items in one call of the runner (default 32). */
  maxBatch?: number;
  /** How long the oldest waiting item may wait for others before its batch is run (default 5). */
  maxWaitMs?: number;
  /** Most items waiting (not yet running); beyond it `submit` rejects with {@link QueueFullError}. */
  maxQueue?: number;
  /** Runner calls allowed at once (default 1: the model runs one batch at a time). */
  concurrency?: number;
}

/** Counts since the batcher was made. */
export interface MicroBatcherStats {
  /** Runner calls made. */
  batches: number;
  /** Items that went through the runner. */
  items: number;
  /** Largest batch run. */
  largestBatch: number;
  /** Items waiting now. */
  queued: number;
  /** Runner calls in progress now. */
  running: number;
}

/** `submit` was refused because the queue is full: the caller should retry later. */
export class QueueFullError extends Error {
  constructor(readonly limit: number) {
    super(`the queue is full (${limit} items waiting); retry later`);
    this.name = 'QueueFullError';
  }
}

/** `submit` was refused because the batcher is closing. */
export class BatcherClosedError extends Error {
  constructor() {
    super('the batcher is closed');
    this.name = 'BatcherClosedError';
  }
}

interface Entry<I, O> {
  item: I;
  at: number;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
  /** Its caller's signal fired: nobody waits for its result. */
  abandoned: boolean;
}

/** A batch in the runner: its entries, and the signal that stops it once all are abandoned. */
interface Running<I, O> {
  entries: Entry<I, O>[];
  controller: AbortController;
}

/**
 * Collects items into batches per key and runs each batch through `run(key, items)`, which must
 * return one result per item, in order. Items of different keys never share a batch (the key
 * stands for options that must be the same for the whole call, such as `nBest`).
 *
 * A batch runs when it is full, or when its oldest item has waited `maxWaitMs`; while the runner
 * is busy, items keep collecting, so under load batches fill up by themselves.
 *
 * A caller whose `signal` fires (its client has gone) is rejected at once: its waiting items
 * leave the queue, and a running batch is told to stop (the runner's own signal) when every item
 * in it belongs to such callers.
 */
export class MicroBatcher<I, O> {
  readonly maxBatch: number;
  readonly maxWaitMs: number;
  readonly maxQueue: number;
  readonly concurrency: number;
  readonly #run: (key: string, items: I[], signal: AbortSignal) => Promise<O[]>;
  // Map iteration follows insertion, and an emptied key is deleted, so the first key is the one
  // that has waited longest (near enough: a key's age is that of its oldest item).
  readonly #queues = new Map<string, Entry<I, O>[]>();
  #queued = 0;
  readonly #runningBatches = new Set<Running<I, O>>();
  #running = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  #idle: (() => void)[] = [];
  #batches = 0;
  #items = 0;
  #largest = 0;

  constructor(
    run: (key: string, items: I[], signal: AbortSignal) => Promise<O[]>,
    options: MicroBatcherOptions = {},
  ) {
    this.maxBatch = positiveInteger(options.maxBatch ?? 32, 'maxBatch');
    this.maxWaitMs = options.maxWaitMs ?? 5;
    if (!(this.maxWaitMs >= 0) || !Number.isFinite(this.maxWaitMs)) {
      throw new TypeError(`maxWaitMs must be a number ≥ 0, got ${String(options.maxWaitMs)}`);
    }
    this.maxQueue = positiveInteger(options.maxQueue ?? Number.MAX_SAFE_INTEGER, 'maxQueue');
    this.concurrency = positiveInteger(options.concurrency ?? 1, 'concurrency');
    this.#run = run;
  }

  /** Counts since the batcher was made. */
  get stats(): MicroBatcherStats {
    return {
      batches: this.#batches,
      items: this.#items,
      largestBatch: this.#largest,
      queued: this.#queued,
      running: this.#running,
    };
  }

  /**
   * Queues items under `key`; resolves with their results in order. A caller's items may be split
   * over several batches (more than `maxBatch`, or a batch that was nearly full).
   *
   * @param signal when it fires, the call rejects with its reason and its work is dropped
   * @throws {QueueFullError} (as a rejection) when the items would not fit in the queue
   * @throws {BatcherClosedError} (as a rejection) after {@link close}
   */
  submit(key: string, items: readonly I[], signal?: AbortSignal): Promise<O[]> {
    if (this.#closed) return Promise.reject(new BatcherClosedError());
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#queued + items.length > this.maxQueue) {
      return Promise.reject(new QueueFullError(this.maxQueue));
    }
    if (items.length === 0) return Promise.resolve([]);
    const queue = this.#queues.get(key) ?? [];
    if (queue.length === 0) this.#queues.set(key, queue);
    const at = performance.now();
    const entries: Entry<I, O>[] = [];
    const promises = items.map(
      (item) =>
        new Promise<O>((resolve, reject) => {
          entries.push({ item, at, resolve, reject, abandoned: false });
        }),
    );
    queue.push(...entries);
    this.#queued += items.length;
    const all = Promise.all(promises);
    if (signal) {
      const abandon = () => this.#abandon(key, entries, signal.reason);
      signal.addEventListener('abort', abandon, { once: true });
      const forget = () => signal.removeEventListener('abort', abandon);
      all.then(forget, forget);
    }
    this.#pump();
    return all;
  }

  /** Rejects a caller's entries, drops those still queued, stops batches left with no caller. */
  #abandon(key: string, entries: Entry<I, O>[], reason: unknown): void {
    for (const entry of entries) {
      entry.abandoned = true;
      entry.reject(reason);
    }
    const queue = this.#queues.get(key);
    if (queue) {
      const kept = queue.filter((entry) => !entry.abandoned);
      this.#queued -= queue.length - kept.length;
      if (kept.length > 0) this.#queues.set(key, kept);
      else this.#queues.delete(key);
    }
    for (const running of this.#runningBatches) {
      if (running.entries.every((entry) => entry.abandoned)) running.controller.abort(reason);
    }
    this.#pump();
  }

  /** Refuses new items, runs what is queued, and resolves when nothing is left. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#pump();
    if (this.#queued === 0 && this.#running === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  /** Starts every batch that is ready while the concurrency allows; schedules the next check. */
  #pump(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const now = performance.now();
    while (this.#running < this.concurrency) {
      const key = this.#readyKey(now);
      if (key === undefined) break;
      this.#start(key);
    }
    if (this.#queued === 0 && this.#running === 0) {
      for (const resolve of this.#idle.splice(0)) resolve();
      return;
    }
    // A finishing batch pumps again, so a timer is only needed while there is room to run.
    if (this.#running < this.concurrency && this.#queued > 0) {
      let due = Infinity;
      for (const queue of this.#queues.values()) due = Math.min(due, queue[0].at + this.maxWaitMs);
      this.#timer = setTimeout(() => this.#pump(), Math.max(0, due - now));
    }
  }

  #readyKey(now: number): string | undefined {
    for (const [key, queue] of this.#queues) {
      // Closing: nobody else is coming, so waiting would only add latency.
      if (this.#closed || queue.length >= this.maxBatch || now - queue[0].at >= this.maxWaitMs) {
        return key;
      }
    }
    return undefined;
  }

  #start(key: string): void {
    const queue = this.#queues.get(key)!;
    const batch = queue.splice(0, this.maxBatch);
    if (queue.length === 0) this.#queues.delete(key);
    this.#queued -= batch.length;
    this.#running++;
    this.#batches++;
    this.#items += batch.length;
    this.#largest = Math.max(this.#largest, batch.length);
    const running: Running<I, O> = { entries: batch, controller: new AbortController() };
    this.#runningBatches.add(running);
    const settle = (results: O[] | null, error: unknown): void => {
      this.#running--;
      this.#runningBatches.delete(running);
      if (results && results.length === batch.length) {
        batch.forEach((entry, i) => entry.resolve(results[i]));
      } else {
        const reason =
          error ??
          new Error(`the runner returned ${results?.length} results for ${batch.length} items`);
        for (const entry of batch) entry.reject(reason);
      }
      this.#pump();
    };
    let promise: Promise<O[]>;
    try {
      promise = this.#run(
        key,
        batch.map((e) => e.item),
        running.controller.signal,
      );
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      (results) => settle(results, null),
      (error: unknown) => settle(null, error),
    );
  }
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(`${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}
