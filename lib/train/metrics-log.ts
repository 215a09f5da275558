/**
 * `<output>/metrics.jsonl`: one JSON object per line per event of a training run (start, train
 * step summaries, evaluations, checkpoints, end), appended and flushed line by line so a crash
 * loses at most the line being written. A reader turns the file back into events and curves.
 *
 * @packageDocumentation
 */
import { closeSync, fdatasyncSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { makeDirectory } from '../output-dir.js';

/** The file name inside the output directory. */
export const METRICS_FILE = 'metrics.jsonl';

/** Fields every event has. */
export interface EventBase {
  /** ISO 8601 wall-clock time; filled in by {@link MetricsLog.append} when absent. */
  time: string;
  /** Optimizer steps taken when the event happened. */
  step: number;
}

/** A run starts or resumes. */
export interface StartEvent extends EventBase {
  type: 'start';
  /** True when continuing from a checkpoint at `step`. */
  resumed: boolean;
  epoch: number;
  /** Optimizer steps the run will take in all. */
  totalSteps: number;
  worldSize?: number;
  /** The resolved training config, for the record. */
  config?: unknown;
}

/** A summary of the training steps since the previous one. */
export interface TrainEvent extends EventBase {
  type: 'train';
  epoch: number;
  /** Mean training loss over the steps since the previous summary. */
  loss: number;
  /** Learning rate of the last step. */
  lr: number;
  /** Gradient norm before clipping, when the native step reports it. */
  gradNorm?: number;
  sentencesPerSecond: number;
  tokensPerSecond?: number;
  /** Seconds of training (not counting evaluation) since the run first started. */
  elapsedSeconds: number;
  /** Pretraining: masked pieces predicted exactly, over masked pieces, since the last summary. */
  mlmAccuracy?: number;
  /** ELECTRA pretraining: the encoder's replaced-token loss and accuracy (`loss` and
   * `mlmAccuracy` are then the generator's). */
  rtdLoss?: number;
  rtdAccuracy?: number;
  /** Each objective's mean loss, when the run trains more than the tags. */
  taggingLoss?: number;
  posLoss?: number;
  distillLoss?: number;
}

/** Precision, recall and F1 of entities, with the number of gold entities. */
export interface EntityPrf {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

/** An evaluation on the validation set. */
export interface EvalEvent extends EventBase {
  type: 'eval';
  epoch: number;
  loss?: number;
  /** Token-level macro F1 over entity tags, as the reference project reports it. */
  tokenMacroF1: number;
  /** Entity-level micro precision/recall/F1 over all types. */
  entity: EntityPrf;
  /** Entity-level scores per type. */
  perType: Record<string, EntityPrf>;
  /** Seconds the evaluation took. */
  seconds: number;
}

/**
 * Pretraining: the masked-LM loss and accuracy on the held-out paragraphs (ELECTRA: the
 * generator's, and the encoder's replaced-token loss and accuracy on the generator's draws).
 */
export interface MlmEvalEvent extends EventBase {
  type: 'mlm-eval';
  epoch: number;
  /** Mean cross entropy per masked piece. */
  loss: number;
  mlmAccuracy: number;
  rtdLoss?: number;
  rtdAccuracy?: number;
  /** Judged pieces the generator's draws replaced, over judged pieces. */
  replacedShare?: number;
  maskedPieces: number;
  seconds: number;
}

/** A checkpoint was written. */
export interface CheckpointEvent extends EventBase {
  type: 'checkpoint';
  which: 'best' | 'last';
  seconds: number;
}

/** The run ended normally. */
export interface EndEvent extends EventBase {
  type: 'end';
  reason: 'completed' | 'early-stop' | 'max-steps';
  elapsedSeconds: number;
  best?: { metric: string; value: number | null; step: number | null };
}

/** Every event of `metrics.jsonl`. */
export type MetricsEvent =
  StartEvent | TrainEvent | EvalEvent | MlmEvalEvent | CheckpointEvent | EndEvent;

/** An event to append; `time` is optional and filled with the current time. */
export type MetricsEventInput = MetricsEvent extends infer E
  ? E extends MetricsEvent
    ? Omit<E, 'time'> & { time?: string }
    : never
  : never;

const EVENT_TYPES = new Set(['start', 'train', 'eval', 'mlm-eval', 'checkpoint', 'end']);

/** Options of {@link MetricsLog.open}. */
export interface MetricsLogOptions {
  /**
   * fdatasync after every line (default true), so even a power loss keeps the line. Events come
   * every `logEvery` steps, so the cost is negligible; turn off only for tests or slow disks.
   */
  sync?: boolean;
  /** Clock for `time` (default `() => new Date()`). */
  now?: () => Date;
}

/** An open `metrics.jsonl`, appended to line by line. */
export class MetricsLog {
  private fd: number | null;

  private constructor(
    readonly file: string,
    fd: number,
    private readonly sync: boolean,
    private readonly now: () => Date,
  ) {
    this.fd = fd;
  }

  /**
   * Opens (creating if needed) `<outputDir>/metrics.jsonl` for appending. When a crash cut the
   * last line short, a newline is added first so the next event starts a line of its own (the
   * reader skips the broken fragment).
   */
  static async open(outputDir: string, options: MetricsLogOptions = {}): Promise<MetricsLog> {
    await makeDirectory(outputDir);
    const file = path.join(outputDir, METRICS_FILE);
    const fd = openSync(file, 'a+');
    try {
      const size = fstatSync(fd).size;
      if (size > 0) {
        const last = Buffer.alloc(1);
        readSync(fd, last, 0, 1, size - 1);
        if (last[0] !== 0x0a) writeSync(fd, '\n');
      }
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    return new MetricsLog(file, fd, options.sync ?? true, options.now ?? (() => new Date()));
  }

  /**
   * Appends one event as one line. Synchronous on purpose: one small `write` per event keeps
   * lines whole and in order even when the process dies right after.
   *
   * Non-finite numbers (a diverged loss) are written as `null`, since JSON has no NaN; a log
   * line must never be the thing that stops a run.
   *
   * @throws Error when the log is closed.
   */
  append(event: MetricsEventInput): void {
    if (this.fd === null) throw new Error(`${this.file}: metrics log is closed`);
    const record = { time: this.now().toISOString(), ...event };
    const line = JSON.stringify(record);
    writeSync(this.fd, line + '\n');
    if (this.sync) fdatasyncSync(this.fd);
  }

  /** Closes the file; later appends throw. */
  close(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
  }
}

/** Options of {@link readMetrics}. */
export interface ReadMetricsOptions {
  /**
   * Drop events a resumed run replaces (default true): a `start` event with `resumed: true` at
   * step s discards the earlier events after step s, since they came from the stretch of the run
   * lost to the interruption and are logged again by the resumed run.
   */
  resolveResumes?: boolean;
}

/** What {@link readMetrics} found. */
export interface MetricsRead {
  events: MetricsEvent[];
  /** Lines that were not valid events (a line cut by a crash, an unknown event type). */
  skipped: { line: number; reason: string }[];
}

/**
 * Reads `metrics.jsonl` (a file path, or an output directory holding one). Lenient by design: a
 * crash may cut a line, and a plot should still show everything else.
 */
export async function readMetrics(
  fileOrDir: string,
  options: ReadMetricsOptions = {},
): Promise<MetricsRead> {
  const file = fileOrDir.endsWith('.jsonl') ? fileOrDir : path.join(fileOrDir, METRICS_FILE);
  const text = await readFile(file, 'utf8');
  return parseMetrics(text, options);
}

/** Parses the text of a `metrics.jsonl`; see {@link readMetrics}. */
export function parseMetrics(text: string, options: ReadMetricsOptions = {}): MetricsRead {
  let events: MetricsEvent[] = [];
  const skipped: MetricsRead['skipped'] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      skipped.push({ line: i + 1, reason: 'not valid JSON (cut short by a crash?)' });
      return;
    }
    const e = value as Record<string, unknown>;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      skipped.push({ line: i + 1, reason: 'not a JSON object' });
    } else if (typeof e.type !== 'string' || !EVENT_TYPES.has(e.type)) {
      skipped.push({ line: i + 1, reason: `unknown event type ${JSON.stringify(e.type)}` });
    } else if (typeof e.step !== 'number' || !Number.isInteger(e.step) || e.step < 0) {
      skipped.push({ line: i + 1, reason: 'no integer "step"' });
    } else {
      const event = value as MetricsEvent;
      if ((options.resolveResumes ?? true) && event.type === 'start' && event.resumed) {
        events = events.filter((earlier) => earlier.step <= event.step);
      }
      events.push(event);
    }
  });
  return { events, skipped };
}

/** A point of a curve, as the SVG plots take it. */
export interface MetricPoint {
  x: number;
  y: number;
}

/**
 * One curve from the events: `pick` returns the y value of an event (undefined, or null where a
 * non-finite value was logged, skips it); x is the optimizer step.
 *
 * @example metricCurve(events, 'eval', (e) => e.entity.f1)
 */
export function metricCurve<T extends MetricsEvent['type']>(
  events: readonly MetricsEvent[],
  type: T,
  pick: (event: Extract<MetricsEvent, { type: T }>) => number | null | undefined,
): MetricPoint[] {
  const out: MetricPoint[] = [];
  for (const e of events) {
    if (e.type !== type) continue;
    const y: unknown = pick(e as Extract<MetricsEvent, { type: T }>);
    // null is how a non-finite value was written: a gap, not a zero.
    if (typeof y === 'number') out.push({ x: e.step, y });
  }
  return out;
}
