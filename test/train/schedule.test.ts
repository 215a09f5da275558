import { describe, expect, it } from 'vitest';

import { LinearSchedule, linearWarmupDecay, warmupStepsFor } from '../../lib/train/schedule.js';
import { minimal, parse } from '../fixtures/train-config.js';

// transformers' get_linear_schedule_with_warmup lr_lambda, transcribed.
function hfLinear(current: number, warmup: number, total: number): number {
  if (current < warmup) return current / Math.max(1, warmup);
  return Math.max(0, (total - current) / Math.max(1, total - warmup));
}

describe('schedule', () => {
  it('matches transformers’ linear schedule with warmup', () => {
    for (const [warmup, total] of [
      [10, 100],
      [0, 50],
      [7, 7],
      [1, 2],
    ]) {
      for (const step of [
        0,
        1,
        warmup - 1,
        warmup,
        warmup + 1,
        total >> 1,
        total - 1,
        total,
        total + 5,
      ]) {
        if (step < 0) continue;
        expect(linearWarmupDecay(step, warmup, total)).toBeCloseTo(
          hfLinear(step, warmup, total),
          15,
        );
      }
    }
    expect(linearWarmupDecay(0, 10, 100)).toBe(0);
    expect(linearWarmupDecay(5, 10, 100)).toBe(0.5);
    expect(linearWarmupDecay(10, 10, 100)).toBe(1);
    expect(linearWarmupDecay(55, 10, 100)).toBe(0.5);
    expect(linearWarmupDecay(100, 10, 100)).toBe(0);
  });

  it('computes warmup steps as transformers does (ceil of the ratio)', () => {
    expect(warmupStepsFor({ warmupRatio: 0.1 }, 1005)).toBe(101);
    expect(warmupStepsFor({ warmupRatio: 0 }, 1005)).toBe(0);
    expect(warmupStepsFor({ warmupSteps: 30 }, 1005)).toBe(30);
    // A parsed config's schedule is a spec as it stands.
    expect(warmupStepsFor(parse(minimal()).schedule, 95)).toBe(10);
  });

  it('steps and resumes from its state', () => {
    const options = { peakLr: 5e-5, warmupSteps: 4, totalSteps: 20 };
    const a = new LinearSchedule(options);
    const lrs: number[] = [];
    for (let i = 0; i < 20; i++) {
      lrs.push(a.lr());
      a.advance();
    }
    expect(lrs[0]).toBe(0);
    expect(lrs[4]).toBe(5e-5);
    expect(lrs[12]).toBeCloseTo(5e-5 * (8 / 16), 18);
    const b = new LinearSchedule(options);
    for (let i = 0; i < 9; i++) b.advance();
    const resumed = new LinearSchedule(options, JSON.parse(JSON.stringify(b.state())));
    expect(resumed.step).toBe(9);
    expect(resumed.lr()).toBe(lrs[9]);
    expect(() => new LinearSchedule(options, { step: 21 })).toThrow(/past the end/);
    expect(() => new LinearSchedule({ ...options, peakLr: 0 })).toThrow(/peakLr/);
  });
});
