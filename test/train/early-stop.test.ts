import { describe, expect, it } from 'vitest';

import { EarlyStopping } from '../../lib/train/early-stop.js';

describe('early stopping', () => {
  it('stops after patience evaluations without improvement', () => {
    const es = new EarlyStopping({ patience: 3 });
    const values = [0.5, 0.6, 0.6, 0.55, 0.59, 0.7];
    const decisions = values.map((v, i) => es.update(v, (i + 1) * 100));
    expect(decisions.map((d) => d.improved)).toEqual([true, true, false, false, false, true]);
    expect(decisions.map((d) => d.stop)).toEqual([false, false, false, false, true, false]);
    expect(es.state()).toEqual({ best: 0.7, bestStep: 600, badEvaluations: 0 });
  });

  it('requires more than minDelta and never takes NaN as best', () => {
    const es = new EarlyStopping({ patience: 2, minDelta: 0.01 });
    expect(es.update(NaN, 1)).toEqual({ improved: false, stop: false, best: null });
    expect(es.update(0.5, 2).improved).toBe(true);
    expect(es.update(0.505, 3).improved).toBe(false);
    expect(es.update(0.52, 4)).toEqual({ improved: true, stop: false, best: 0.52 });
    expect(es.update(NaN, 5).stop).toBe(false);
    expect(es.update(0.1, 6).stop).toBe(true);
    expect(es.shouldStop).toBe(true);
  });

  it('continues identically from a saved state', () => {
    const values = [0.3, 0.4, 0.35, 0.38, 0.41, 0.2, 0.2, 0.2];
    const whole = new EarlyStopping({ patience: 3 });
    const expected = values.map((v, i) => whole.update(v, i));
    const first = new EarlyStopping({ patience: 3 });
    const head = values.slice(0, 4).map((v, i) => first.update(v, i));
    const resumed = new EarlyStopping({ patience: 3 }, JSON.parse(JSON.stringify(first.state())));
    const tail = values.slice(4).map((v, i) => resumed.update(v, i + 4));
    expect([...head, ...tail]).toEqual(expected);
    expect(() => new EarlyStopping({ patience: 0 })).toThrow(/patience/);
    expect(
      () => new EarlyStopping({ patience: 1 }, { best: 0.5, bestStep: null, badEvaluations: 0 }),
    ).toThrow(/both be null/);
  });
});
