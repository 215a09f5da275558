import { describe, expect, it } from 'vitest';

import {
  batchingFingerprint,
  collate,
  epochBatches,
  iterateBatches,
  padSequences,
  planSteps,
  shard,
  type BatchCursor,
  type BatchingOptions,
} from '../../lib/train/batching.js';
import { Rng } from '../../lib/train/rng.js';

function randomLengths(n: number, seed: number, max = 128): number[] {
  const rng = Rng.fromSeed(seed);
  return Array.from({ length: n }, () => 3 + rng.nextInt(max - 2));
}

const LENGTHS = randomLengths(2000, 1);
const OPTIONS: BatchingOptions = { batchSize: 16, seed: 100 };

function spread(batch: number[], lengths: number[]): number {
  const ls = batch.map((i) => lengths[i]);
  return Math.max(...ls) - Math.min(...ls);
}

describe('batching', () => {
  it('is deterministic in (seed, epoch) and covers every example once per epoch', () => {
    const e0 = epochBatches(LENGTHS, 0, OPTIONS);
    expect(epochBatches(LENGTHS, 0, { ...OPTIONS })).toEqual(e0);
    const e1 = epochBatches(LENGTHS, 1, OPTIONS);
    expect(e1).not.toEqual(e0);
    expect(epochBatches(LENGTHS, 0, { ...OPTIONS, seed: 101 })).not.toEqual(e0);
    for (const epoch of [e0, e1]) {
      expect(
        epoch
          .flat()
          .slice()
          .sort((a, b) => a - b),
      ).toEqual(Array.from({ length: LENGTHS.length }, (_, i) => i));
      expect(Math.max(...epoch.map((b) => b.length))).toBe(16);
    }
    // 2000 examples in chunks of 800: 50 + 50 + 25 batches, every epoch.
    expect(e0.length).toBe(125);
    expect(e1.length).toBe(125);
  });

  it('buckets by length: batches hold similar lengths, unlike plain shuffling', () => {
    const bucketed = epochBatches(LENGTHS, 0, OPTIONS);
    const plain = epochBatches(LENGTHS, 0, { ...OPTIONS, bucketBatches: 1 });
    const mean = (bs: number[][]): number =>
      bs.reduce((s, b) => s + spread(b, LENGTHS), 0) / bs.length;
    expect(mean(bucketed)).toBeLessThan(6);
    expect(mean(plain)).toBeGreaterThan(60);
    for (const b of bucketed) {
      const ls = b.map((i) => LENGTHS[i]);
      expect(ls).toEqual([...ls].sort((x, y) => x - y));
    }
    // Batch order is shuffled: not sorted by length across the epoch.
    const firsts = bucketed.map((b) => LENGTHS[b[0]]);
    expect(firsts).not.toEqual([...firsts].sort((x, y) => x - y));
  });

  it('respects a token budget, giving an over-long example a batch of its own', () => {
    const lengths = [...LENGTHS.slice(0, 500), 400];
    const batches = epochBatches(lengths, 2, { ...OPTIONS, maxTokens: 600 });
    for (const b of batches) {
      const longest = Math.max(...b.map((i) => lengths[i]));
      if (b.length > 1) expect(b.length * longest).toBeLessThanOrEqual(600);
      expect(b.length).toBeLessThanOrEqual(16);
    }
    expect(batches.find((b) => b.includes(500))).toEqual([500]);
    expect(batches.flat().length).toBe(lengths.length);
  });

  it('sorts by length without shuffling for evaluation', () => {
    const lengths = [5, 3, 9, 3, 7];
    const batches = epochBatches(lengths, 4, { batchSize: 2, seed: 0, shuffle: false });
    expect(batches).toEqual([[1, 3], [0, 4], [2]]);
  });

  it('shards into disjoint, equal shares, dropping fewer than worldSize batches', () => {
    const batches = epochBatches(LENGTHS, 0, OPTIONS); // 125 batches
    for (const worldSize of [1, 2, 3, 4, 8]) {
      const shares = Array.from({ length: worldSize }, (_, rank) =>
        shard(batches, rank, worldSize),
      );
      const perRank = Math.floor(batches.length / worldSize);
      for (const s of shares) expect(s.length).toBe(perRank);
      const taken = shares.flat();
      expect(new Set(taken).size).toBe(taken.length);
      // Complete up to the remainder rule: exactly the first perRank × worldSize batches.
      expect(new Set(taken)).toEqual(new Set(batches.slice(0, perRank * worldSize)));
      expect(batches.length - taken.length).toBeLessThan(worldSize);
    }
    expect(() => shard(batches, 2, 2)).toThrow(/rank/);
  });

  it('resumes from a saved cursor with exactly the batches an uninterrupted run sees', () => {
    for (const { rank, worldSize } of [
      { rank: 0, worldSize: 1 },
      { rank: 1, worldSize: 3 },
    ]) {
      const all = [...iterateBatches(LENGTHS, OPTIONS, { rank, worldSize, epochs: 3 })];
      const perEpoch = Math.floor(125 / worldSize);
      expect(all.length).toBe(3 * perEpoch);
      for (const k of [0, 5, perEpoch - 1, perEpoch, perEpoch + 7]) {
        const it = iterateBatches(LENGTHS, OPTIONS, { rank, worldSize, epochs: 3 });
        let cursor: BatchCursor = { epoch: 0, batchIndex: 0 };
        for (let i = 0; i < k; i++) cursor = it.next().value!.next;
        const saved: BatchCursor = JSON.parse(JSON.stringify(cursor));
        const rest = [
          ...iterateBatches(LENGTHS, { ...OPTIONS }, { rank, worldSize, epochs: 3, from: saved }),
        ];
        expect(rest.map((b) => b.indices)).toEqual(all.slice(k).map((b) => b.indices));
        expect(rest[0].cursor).toEqual(saved);
      }
    }
    // The end of an epoch is the start of the next.
    const fromEnd = iterateBatches(LENGTHS, OPTIONS, { from: { epoch: 0, batchIndex: 125 } });
    expect(fromEnd.next().value!.cursor).toEqual({ epoch: 1, batchIndex: 0 });
    const past = iterateBatches(LENGTHS, OPTIONS, { from: { epoch: 0, batchIndex: 126 } });
    expect(() => past.next()).toThrow(/past the 125 batches/);
  });

  it('plans optimizer steps with accumulation, maxSteps and token budgets', () => {
    expect(planSteps(LENGTHS, OPTIONS, { epochs: 3 })).toEqual({
      perEpoch: [125, 125, 125],
      total: 375,
      microBatches: [125, 125, 125],
    });
    const accumulated = planSteps(LENGTHS, OPTIONS, {
      epochs: 2,
      gradAccumulation: 4,
      worldSize: 2,
    });
    expect(accumulated.perEpoch).toEqual([16, 16]); // ceil(62 / 4)
    expect(planSteps(LENGTHS, OPTIONS, { epochs: 10, maxSteps: 300 }).perEpoch).toEqual([
      125, 125, 50,
    ]);
    const budget = { ...OPTIONS, maxTokens: 1000 };
    const plan = planSteps(LENGTHS, budget, { epochs: 3 });
    expect(plan.microBatches).toEqual(
      [0, 1, 2].map((e) => epochBatches(LENGTHS, e, budget).length),
    );
    expect(plan.total).toBe(plan.perEpoch.reduce((a, b) => a + b));
  });

  it('pads ids and labels to the batch maximum', () => {
    const { ids, labels } = collate(
      [
        { ids: [2, 10, 3], labels: [0, 5, 0] },
        { ids: [2, 3], labels: [0, 0] },
      ],
      1,
      -100,
    );
    expect(ids).toEqual({
      data: Int32Array.from([2, 10, 3, 2, 3, 1]),
      lengths: Int32Array.from([3, 2]),
      rows: 2,
      cols: 3,
    });
    expect(Array.from(labels.data)).toEqual([0, 5, 0, 0, 0, -100]);
    expect(padSequences([], 0)).toMatchObject({ rows: 0, cols: 0 });
    expect(() => collate([{ ids: [1], labels: [] }], 1, 0)).toThrow(/1 ids but 0 labels/);
    expect(() => padSequences([[1.5]], 0)).toThrow(/not a 32-bit integer/);
  });

  it('fingerprints the data order', () => {
    const f = batchingFingerprint(LENGTHS, OPTIONS, 2);
    expect(batchingFingerprint([...LENGTHS], { ...OPTIONS }, 2)).toBe(f);
    expect(batchingFingerprint(LENGTHS, { ...OPTIONS, seed: 1 }, 2)).not.toBe(f);
    expect(batchingFingerprint(LENGTHS, OPTIONS, 1)).not.toBe(f);
    expect(batchingFingerprint(LENGTHS.slice(1), OPTIONS, 2)).not.toBe(f);
  });
});
