/**
 * Crash-safe checkpoint files. A checkpoint directory (`<output>/best`, `<output>/last`) is never
 * written in place: it is built in a temporary sibling, flushed to disk, and swapped in by
 * renames, so after a crash at any instant the target is either the complete previous checkpoint
 * or the complete new one — never a mix, never half a file.
 *
 * Writing `<dir>`:
 *
 * 1. build everything in `<dir>.tmp-<pid>-<n>`, then fsync every file and directory in it;
 * 2. rename `<dir>` (the previous checkpoint, if any) to `<dir>.old`;
 * 3. rename `<dir>.tmp-<pid>-<n>` to `<dir>` — the commit point;
 * 4. fsync the parent directory, then remove `<dir>.old`.
 *
 * Recovery rule ({@link recoverAtomicDir}, run before reading or writing `<dir>`):
 *
 * - `<dir>` exists: it is complete (renames are atomic and it only ever appears whole), so remove
 *   any `<dir>.old` (a crash in step 4) and any `<dir>.tmp-*` (a crash in step 1 or 2).
 * - `<dir>` is missing but `<dir>.old` exists (a crash between steps 2 and 3): roll back —
 *   rename `<dir>.old` to `<dir>` and remove any `<dir>.tmp-*`. The new checkpoint is lost and
 *   the previous one is kept, as though the crash had come a moment earlier.
 * - Neither exists: remove any `<dir>.tmp-*` (the very first write crashed; there is no
 *   checkpoint).
 *
 * One writer per target at a time: recovery deletes every `<dir>.tmp-*`, including another live
 * writer's. In data-parallel training only rank 0 writes checkpoints.
 *
 * Single files go through {@link writeFileAtomic} (temporary file, fsync, rename), which needs no
 * recovery beyond removing stray temporaries.
 *
 * @packageDocumentation
 */
import { open, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

import { makeDirectory } from '../output-dir.js';
import { checkCursor, type BatchCursor } from './batching.js';
import { checkEarlyStopState, type EarlyStopState } from './early-stop.js';
import { Rng, type RngState } from './rng.js';
import type { ScheduleState } from './schedule.js';

let tmpCounter = 0;

function tmpName(target: string): string {
  return `${target}.tmp-${process.pid}-${tmpCounter++}`;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * fsync a directory so the names in it (renames, new files) survive a power loss. Some platforms
 * cannot open a directory for syncing (Windows); there the rename itself is all we can do.
 */
async function syncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Not supported here; nothing better is available.
  } finally {
    await handle?.close();
  }
}

async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      await syncTree(p);
    } else if (entry.isFile()) {
      const handle = await open(p, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
  }
  await syncDir(dir);
}

async function leftovers(target: string): Promise<string[]> {
  const parent = path.dirname(target);
  const prefix = `${path.basename(target)}.tmp-`;
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return [];
  }
  return names.filter((n) => n.startsWith(prefix)).map((n) => path.join(parent, n));
}

/** What {@link recoverAtomicDir} did. */
export interface RecoveryReport {
  /** `<dir>.old` was renamed back to `<dir>` (the crash came between the two renames). */
  rolledBack: boolean;
  /** Paths removed: `<dir>.old` and `<dir>.tmp-*` leftovers. */
  removed: string[];
}

/**
 * Restores the invariant "`<dir>` is absent or complete, with no leftovers" after a crash during
 * {@link writeAtomicDir}; see the module comment for the rule. Safe to call at any time no write
 * to `dir` is in progress; does nothing when there is nothing to recover.
 */
export async function recoverAtomicDir(dir: string): Promise<RecoveryReport> {
  const target = path.resolve(dir);
  const old = `${target}.old`;
  const report: RecoveryReport = { rolledBack: false, removed: [] };
  if (await exists(target)) {
    if (await exists(old)) {
      await rm(old, { recursive: true, force: true });
      report.removed.push(old);
    }
  } else if (await exists(old)) {
    await rename(old, target);
    await syncDir(path.dirname(target));
    report.rolledBack = true;
  }
  for (const tmp of await leftovers(target)) {
    await rm(tmp, { recursive: true, force: true });
    report.removed.push(tmp);
  }
  return report;
}

/** Points in {@link writeAtomicDir} after which a test can simulate a crash. */
export type AtomicWriteStage = 'filled' | 'synced' | 'moved-old' | 'moved-new' | 'done';

/** Options of {@link writeAtomicDir}. */
export interface AtomicDirOptions {
  /**
   * Called after each stage; a throw here stops the write on the spot with no clean-up, exactly
   * like a crash. For tests only.
   */
  afterStage?: (stage: AtomicWriteStage) => void | Promise<void>;
}

/**
 * Writes a directory atomically: `fill` writes the complete contents into the empty temporary
 * directory it is given, and the result then replaces `dir` as one unit (see the module comment).
 * Leftovers of an earlier crash are recovered first.
 *
 * @throws whatever `fill` throws, after removing the temporary directory; `dir` is untouched.
 */
export async function writeAtomicDir(
  dir: string,
  fill: (tmpDir: string) => Promise<void>,
  options: AtomicDirOptions = {},
): Promise<void> {
  const target = path.resolve(dir);
  const old = `${target}.old`;
  const hook = options.afterStage ?? (() => undefined);
  await makeDirectory(path.dirname(target));
  await recoverAtomicDir(target);
  const tmp = tmpName(target);
  await mkdir(tmp);
  try {
    await fill(tmp);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
  await hook('filled');
  await syncTree(tmp);
  await hook('synced');
  const hadOld = await exists(target);
  if (hadOld) {
    await rename(target, old);
    await hook('moved-old');
  }
  await rename(tmp, target);
  await syncDir(path.dirname(target));
  await hook('moved-new');
  if (hadOld) await rm(old, { recursive: true, force: true });
  await hook('done');
}

/**
 * Writes a file atomically: a temporary file beside it, fsync, rename over the target, fsync the
 * directory. Readers see the old content or the new, never a partial file.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const target = path.resolve(file);
  await makeDirectory(path.dirname(target));
  const tmp = tmpName(target);
  try {
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  await syncDir(path.dirname(target));
}

/** Which of a run's two checkpoints. */
export type CheckpointKind = 'best' | 'last';

/** `<output>/best` or `<output>/last`: each a complete model directory plus training state. */
export function checkpointDir(output: string, kind: CheckpointKind): string {
  return path.join(output, kind);
}

/** The training-state file inside a checkpoint directory. */
export const TRAINER_STATE_FILE = 'trainer-state.json';

const STATE_FORMAT = 'koner-trainer-state';
const STATE_VERSION = 1;

/**
 * Everything besides tensors that a resumed run needs to continue exactly where the interrupted
 * one stopped. Saved only at optimizer-step boundaries (never mid-accumulation).
 */
export interface TrainerState {
  /** Optimizer steps taken. */
  step: number;
  /** 0-based epoch in progress; always `cursor.epoch`. */
  epoch: number;
  /** The next batch this worker takes. */
  cursor: BatchCursor;
  /**
   * Random state: `trainer`, koner's TypeScript generator; `native`, LibTorch's generator state as
   * the native side serialises it (opaque here), when it provides one.
   */
  rng: { trainer: RngState; native?: string };
  /** Early-stopping state; null when early stopping is off. */
  earlyStop: EarlyStopState | null;
  /** The learning-rate schedule's state. */
  schedule: ScheduleState;
  /** Best validation value so far of `metric`, and its step; nulls before the first evaluation. */
  best: { metric: string; value: number | null; step: number | null };
  /**
   * {@link batchingFingerprint} of the run's data order; a resume with a different one is refused
   * because the cursor would point into different batches.
   */
  dataFingerprint: string;
  /** Seconds spent training so far (for throughput and ETA across resumes). */
  elapsedSeconds: number;
}

function fail(where: string, field: string, problem: string): never {
  throw new Error(`${where}: field "${field}" ${problem}`);
}

function count(value: unknown, where: string, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    fail(where, field, `must be an integer ≥ 0, got ${JSON.stringify(value)}`);
  }
  return value;
}

function wrap<T>(where: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    throw new Error(`${where}: ${(error as Error).message}`);
  }
}

/**
 * Validates a parsed `trainer-state.json`.
 *
 * @param where names the file in errors.
 * @throws Error naming the file and the field at fault.
 */
export function parseTrainerState(raw: unknown, where = TRAINER_STATE_FILE): TrainerState {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`${where}: expected a JSON object`);
  }
  const r = raw as Record<string, unknown>;
  if (r.format !== STATE_FORMAT) {
    fail(where, 'format', `must be "${STATE_FORMAT}", got ${JSON.stringify(r.format)}`);
  }
  if (r.version !== STATE_VERSION) {
    fail(
      where,
      'version',
      `must be ${STATE_VERSION} (this koner's format), got ${JSON.stringify(r.version)}`,
    );
  }
  const known = [
    'format',
    'version',
    'step',
    'epoch',
    'cursor',
    'rng',
    'earlyStop',
    'schedule',
    'best',
    'dataFingerprint',
    'elapsedSeconds',
  ];
  for (const key of Object.keys(r)) {
    if (!known.includes(key)) fail(where, key, 'is not a known field');
  }
  const step = count(r.step, where, 'step');
  const epoch = count(r.epoch, where, 'epoch');
  wrap(where, () => checkCursor(r.cursor, 'cursor'));
  const cursor = r.cursor as BatchCursor;
  if (cursor.epoch !== epoch) {
    fail(where, 'epoch', `(${epoch}) must equal cursor.epoch (${cursor.epoch})`);
  }
  const rng = r.rng as Record<string, unknown>;
  if (typeof rng !== 'object' || rng === null || Array.isArray(rng)) {
    fail(where, 'rng', 'must be an object { trainer, native? }');
  }
  for (const key of Object.keys(rng)) {
    if (key !== 'trainer' && key !== 'native') fail(where, `rng.${key}`, 'is not a known field');
  }
  wrap(where, () => Rng.validateState(rng.trainer, 'rng.trainer'));
  if (rng.native !== undefined && typeof rng.native !== 'string') {
    fail(where, 'rng.native', 'must be a string (the native generator state)');
  }
  let earlyStop: EarlyStopState | null = null;
  if (r.earlyStop !== null) {
    wrap(where, () => checkEarlyStopState(r.earlyStop, 'earlyStop'));
    earlyStop = { ...(r.earlyStop as EarlyStopState) };
  }
  const schedule = r.schedule as Record<string, unknown>;
  if (typeof schedule !== 'object' || schedule === null || Array.isArray(schedule)) {
    fail(where, 'schedule', 'must be an object { step }');
  }
  const scheduleStep = count(schedule.step, where, 'schedule.step');
  const best = r.best as Record<string, unknown>;
  if (typeof best !== 'object' || best === null || Array.isArray(best)) {
    fail(where, 'best', 'must be an object { metric, value, step }');
  }
  if (typeof best.metric !== 'string' || best.metric === '') {
    fail(where, 'best.metric', 'must be a metric name');
  }
  if (best.value !== null && (typeof best.value !== 'number' || !Number.isFinite(best.value))) {
    fail(where, 'best.value', `must be a finite number or null, got ${JSON.stringify(best.value)}`);
  }
  const bestStep = best.step === null ? null : count(best.step, where, 'best.step');
  if ((best.value === null) !== (bestStep === null)) {
    fail(where, 'best', 'value and step must both be null or both be set');
  }
  if (bestStep !== null && bestStep > step) {
    fail(where, 'best.step', `(${bestStep}) must not be after step (${step})`);
  }
  if (typeof r.dataFingerprint !== 'string' || r.dataFingerprint === '') {
    fail(where, 'dataFingerprint', 'must be a non-empty string');
  }
  if (
    typeof r.elapsedSeconds !== 'number' ||
    !Number.isFinite(r.elapsedSeconds) ||
    r.elapsedSeconds < 0
  ) {
    fail(where, 'elapsedSeconds', `must be a number ≥ 0, got ${JSON.stringify(r.elapsedSeconds)}`);
  }
  const state: TrainerState = {
    step,
    epoch,
    cursor: { epoch: cursor.epoch, batchIndex: cursor.batchIndex },
    rng: { trainer: [...(rng.trainer as RngState)] as RngState },
    earlyStop,
    schedule: { step: scheduleStep },
    best: { metric: best.metric as string, value: best.value as number | null, step: bestStep },
    dataFingerprint: r.dataFingerprint,
    elapsedSeconds: r.elapsedSeconds,
  };
  if (rng.native !== undefined) state.rng.native = rng.native as string;
  return state;
}

/** The JSON text of a trainer state (validated first, so nothing invalid is ever written). */
export function trainerStateToJson(state: TrainerState): string {
  const json = { format: STATE_FORMAT, version: STATE_VERSION, ...state };
  parseTrainerState(JSON.parse(JSON.stringify(json)), 'trainer state to write');
  return JSON.stringify(json, null, 2) + '\n';
}

/** Writes `<dir>/trainer-state.json` atomically. */
export async function writeTrainerState(dir: string, state: TrainerState): Promise<void> {
  await writeFileAtomic(path.join(dir, TRAINER_STATE_FILE), trainerStateToJson(state));
}

/**
 * Reads and validates `<dir>/trainer-state.json`.
 *
 * @throws Error naming the file (and the field) when it is missing, not JSON or invalid.
 */
export async function readTrainerState(dir: string): Promise<TrainerState> {
  const file = path.join(dir, TRAINER_STATE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new Error(
      `${file}: cannot read the trainer state (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message})`);
  }
  return parseTrainerState(raw, file);
}
