/**
 * The learning-rate schedule: linear warmup from 0 to the peak rate, then linear decay to 0 at
 * the last step — the same factor as Hugging Face transformers' `get_linear_schedule_with_warmup`,
 * so a recipe tuned there carries over unchanged.
 *
 * Steps are optimizer steps (after gradient accumulation), not micro-batches. The state is only
 * the number of optimizer steps taken; everything else is recomputed from the config.
 *
 * @packageDocumentation
 */

/** How warmup is specified: a share of the total steps, or a step count. */
export type WarmupSpec =
  | { warmupRatio: number; warmupSteps?: undefined }
  | { warmupSteps: number; warmupRatio?: undefined };

/** What a resumed run needs to continue the schedule: optimizer steps already taken. */
export interface ScheduleState {
  step: number;
}

function checkCount(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`${name} must be an integer ≥ 0, got ${value}`);
  }
}

/**
 * Warmup steps for a spec: `warmupSteps` as given, or `ceil(warmupRatio × totalSteps)` as
 * transformers' `TrainingArguments.get_warmup_steps` computes it.
 */
export function warmupStepsFor(spec: WarmupSpec, totalSteps: number): number {
  checkCount(totalSteps, 'totalSteps');
  if (spec.warmupSteps !== undefined) {
    checkCount(spec.warmupSteps, 'warmupSteps');
    return spec.warmupSteps;
  }
  if (!(spec.warmupRatio >= 0 && spec.warmupRatio <= 1)) {
    throw new RangeError(`warmupRatio must be in [0, 1], got ${spec.warmupRatio}`);
  }
  return Math.ceil(spec.warmupRatio * totalSteps);
}

/**
 * The multiplier of the peak learning rate for the optimizer step that follows `step` steps
 * already taken: `step / warmup` during warmup, then `max(0, (total − step) / (total − warmup))`,
 * with transformers' guards against division by zero (`max(1, …)` in both denominators). So the
 * first optimizer step runs at factor 0 when there is warmup, exactly as in transformers, where
 * `scheduler.step()` follows `optimizer.step()`.
 */
export function linearWarmupDecay(step: number, warmupSteps: number, totalSteps: number): number {
  checkCount(step, 'step');
  checkCount(warmupSteps, 'warmupSteps');
  checkCount(totalSteps, 'totalSteps');
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
}

/** Options of {@link LinearSchedule}. */
export interface LinearScheduleOptions {
  /** The peak learning rate (reached at the end of warmup). */
  peakLr: number;
  /** Optimizer steps of warmup. */
  warmupSteps: number;
  /** Optimizer steps of the whole run; the rate reaches 0 here. */
  totalSteps: number;
}

/**
 * Linear warmup then linear decay, stepping once per optimizer step. Usage per step:
 * `optimizer.step(lr = schedule.lr())` then `schedule.advance()`.
 */
export class LinearSchedule {
  readonly peakLr: number;
  readonly warmupSteps: number;
  readonly totalSteps: number;
  private taken: number;

  /**
   * @param state where a resumed run left off; default the start.
   * @throws RangeError on a non-positive rate, negative counts, or a state past the end.
   */
  constructor(options: LinearScheduleOptions, state: ScheduleState = { step: 0 }) {
    if (!(options.peakLr > 0) || !Number.isFinite(options.peakLr)) {
      throw new RangeError(`peakLr must be a positive number, got ${options.peakLr}`);
    }
    checkCount(options.warmupSteps, 'warmupSteps');
    checkCount(options.totalSteps, 'totalSteps');
    checkCount(state.step, 'schedule step');
    if (state.step > options.totalSteps) {
      throw new RangeError(
        `schedule step ${state.step} is past the end of the schedule (${options.totalSteps} steps)`,
      );
    }
    this.peakLr = options.peakLr;
    this.warmupSteps = options.warmupSteps;
    this.totalSteps = options.totalSteps;
    this.taken = state.step;
  }

  /** Optimizer steps taken so far. */
  get step(): number {
    return this.taken;
  }

  /** The factor for the next optimizer step (see {@link linearWarmupDecay}). */
  factor(): number {
    return linearWarmupDecay(this.taken, this.warmupSteps, this.totalSteps);
  }

  /** The learning rate for the next optimizer step. */
  lr(): number {
    return this.peakLr * this.factor();
  }

  /** Records one optimizer step. */
  advance(): void {
    this.taken++;
  }

  /** The state to save in a checkpoint. */
  state(): ScheduleState {
    return { step: this.taken };
  }
}
