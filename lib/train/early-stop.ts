/**
 * Early stopping on a metric to maximise (validation entity F1): stop after `patience`
 * evaluations in a row without an improvement of more than `minDelta` over the best so far.
 *
 * @packageDocumentation
 */

/** Options of {@link EarlyStopping}. */
export interface EarlyStoppingOptions {
  /** Evaluations without improvement tolerated before stopping (≥ 1). */
  patience: number;
  /** An improvement must exceed the best by more than this (default 0: any increase counts). */
  minDelta?: number;
}

/** What a resumed run needs to continue counting (JSON-serialisable). */
export interface EarlyStopState {
  /** Best value seen; `null` before the first evaluation. */
  best: number | null;
  /** Optimizer step of the best value; `null` before the first evaluation. */
  bestStep: number | null;
  /** Evaluations since the best one (0 right after an improvement). */
  badEvaluations: number;
}

/** The verdict on one evaluation. */
export interface EarlyStopDecision {
  /** This value is the new best (save the best checkpoint). */
  improved: boolean;
  /** Patience has run out: stop training. */
  stop: boolean;
  /** The best value after this evaluation. */
  best: number | null;
}

/** Patience-based early stopping on a maximised metric. */
export class EarlyStopping {
  readonly patience: number;
  readonly minDelta: number;
  private current: EarlyStopState;

  /**
   * @param state where a resumed run left off; default a fresh start.
   * @throws RangeError on a patience below 1, a negative `minDelta` or an invalid state.
   */
  constructor(options: EarlyStoppingOptions, state?: EarlyStopState) {
    if (!Number.isInteger(options.patience) || options.patience < 1) {
      throw new RangeError(`patience must be an integer ≥ 1, got ${options.patience}`);
    }
    const minDelta = options.minDelta ?? 0;
    if (!(minDelta >= 0) || !Number.isFinite(minDelta)) {
      throw new RangeError(`minDelta must be a finite number ≥ 0, got ${minDelta}`);
    }
    this.patience = options.patience;
    this.minDelta = minDelta;
    if (state) checkEarlyStopState(state);
    this.current = state ? { ...state } : { best: null, bestStep: null, badEvaluations: 0 };
  }

  /**
   * Records an evaluation. A NaN value never improves (a diverged run must not become "best").
   */
  update(value: number, step: number): EarlyStopDecision {
    const s = this.current;
    const improved = !Number.isNaN(value) && (s.best === null || value > s.best + this.minDelta);
    if (improved) {
      this.current = { best: value, bestStep: step, badEvaluations: 0 };
    } else {
      this.current = { ...s, badEvaluations: s.badEvaluations + 1 };
    }
    return {
      improved,
      stop: this.current.badEvaluations >= this.patience,
      best: this.current.best,
    };
  }

  /** Whether patience has run out. */
  get shouldStop(): boolean {
    return this.current.badEvaluations >= this.patience;
  }

  /** The best value so far (`null` before the first evaluation). */
  get best(): number | null {
    return this.current.best;
  }

  /** A copy of the state, to save in a checkpoint. */
  state(): EarlyStopState {
    return { ...this.current };
  }
}

/**
 * Checks an {@link EarlyStopState} read from a file.
 *
 * @throws Error naming `where` and the field at fault.
 */
export function checkEarlyStopState(
  value: unknown,
  where = 'early-stop state',
): asserts value is EarlyStopState {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${where} must be an object { best, bestStep, badEvaluations }`);
  }
  const s = value as Record<string, unknown>;
  for (const key of Object.keys(s)) {
    if (!['best', 'bestStep', 'badEvaluations'].includes(key)) {
      throw new Error(`${where}.${key} is not a field`);
    }
  }
  if (s.best !== null && (typeof s.best !== 'number' || !Number.isFinite(s.best))) {
    throw new Error(`${where}.best must be a finite number or null, got ${JSON.stringify(s.best)}`);
  }
  const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  if (s.bestStep !== null && !isCount(s.bestStep)) {
    throw new Error(`${where}.bestStep must be an integer ≥ 0 or null`);
  }
  if ((s.best === null) !== (s.bestStep === null)) {
    throw new Error(`${where}.best and ${where}.bestStep must both be null or both be set`);
  }
  if (!isCount(s.badEvaluations)) {
    throw new Error(`${where}.badEvaluations must be an integer ≥ 0`);
  }
}
