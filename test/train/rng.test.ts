import { describe, expect, it } from 'vitest';

import { Rng } from '../../lib/train/rng.js';

describe('rng', () => {
  it('matches the xoshiro128** reference implementation', () => {
    const rng = Rng.fromState([1, 2, 3, 4]);
    const out = Array.from({ length: 10 }, () => rng.nextUint32());
    // From the authors' C code (xoshiro128starstar.c) with s = {1, 2, 3, 4}.
    expect(out).toEqual([
      11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849, 3729100597,
      4258142804,
    ]);
    expect(rng.state()).toEqual([939045227, 1864939416, 1451579149, 2199351389]);
  });

  it('is deterministic per (seed, stream) and continues from a saved state', () => {
    const a = Rng.fromSeed(100, 3);
    const b = Rng.fromSeed(100, 3);
    expect(Array.from({ length: 5 }, () => a.nextUint32())).toEqual(
      Array.from({ length: 5 }, () => b.nextUint32()),
    );
    const saved = JSON.parse(JSON.stringify(a.state()));
    const restored = Rng.fromState(saved);
    expect(Array.from({ length: 5 }, () => restored.nextFloat())).toEqual(
      Array.from({ length: 5 }, () => a.nextFloat()),
    );
    const streams = [Rng.fromSeed(100, 0), Rng.fromSeed(100, 1), Rng.fromSeed(101, 0)];
    const firsts = streams.map((r) => r.nextUint32());
    expect(new Set(firsts).size).toBe(3);
  });

  it('draws unbiased bounded integers and floats in [0, 1)', () => {
    const rng = Rng.fromSeed(7);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60000; i++) counts[rng.nextInt(6)]++;
    for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(500);
    for (let i = 0; i < 1000; i++) {
      const x = rng.nextFloat();
      expect(x >= 0 && x < 1).toBe(true);
    }
    expect(rng.shuffle([1, 2, 3, 4, 5]).sort()).toEqual([1, 2, 3, 4, 5]);
  });

  it('rejects invalid seeds and states', () => {
    expect(() => Rng.fromSeed(-1)).toThrow(/seed/);
    expect(() => Rng.fromSeed(1.5)).toThrow(/seed/);
    expect(() => Rng.fromState([0, 0, 0, 0])).toThrow(/all zero/);
    expect(() => Rng.fromState([1, 2, 3] as never)).toThrow(/four unsigned/);
    expect(() => Rng.fromState([1, 2, 3, 2 ** 32])).toThrow(/four unsigned/);
  });
});
