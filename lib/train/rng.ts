/**
 * A small seeded pseudo-random generator (xoshiro128**) whose whole state is four 32-bit words,
 * so a training run can save it in `trainer-state.json` and continue the exact same stream after
 * a resume. `Math.random` can be neither seeded nor saved, which is why training never uses it.
 *
 * @packageDocumentation
 */

/** The generator's state: four unsigned 32-bit words, not all zero. */
export type RngState = [number, number, number, number];

const UINT32 = 0x1_0000_0000;

// splitmix32's finaliser: spreads a 32-bit input over all output bits, so nearby seeds (0, 1, 2…)
// give unrelated xoshiro states.
function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function isUint32(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < UINT32;
}

/**
 * xoshiro128** (Blackman & Vigna): fast, 2^128 − 1 period, good statistical quality, and trivially
 * serialisable. Not for cryptography.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  private constructor(state: RngState) {
    [this.s0, this.s1, this.s2, this.s3] = state.map((x) => x | 0);
  }

  /**
   * A generator for `(seed, stream)`. Different streams of one seed are independent for practical
   * purposes, so each epoch (or worker, or purpose) can draw from its own stream without keeping
   * state: `Rng.fromSeed(seed, epoch)` always yields the same sequence.
   *
   * @param seed an unsigned 32-bit integer.
   * @param stream an unsigned 32-bit integer (default 0).
   */
  static fromSeed(seed: number, stream = 0): Rng {
    if (!isUint32(seed)) throw new RangeError(`seed must be an integer in [0, 2^32), got ${seed}`);
    if (!isUint32(stream)) {
      throw new RangeError(`stream must be an integer in [0, 2^32), got ${stream}`);
    }
    // Run splitmix32 from a counter that depends on both inputs; the `^ mix32(stream)` keeps
    // (seed, stream) and (seed + 1, stream − 1) apart.
    let counter = (mix32(seed) ^ mix32(stream ^ 0x632be5ab)) >>> 0;
    const state: number[] = [];
    for (let i = 0; i < 4; i++) {
      counter = (counter + 0x9e3779b9) >>> 0;
      state.push(mix32(counter));
    }
    if (!state.some((x) => x !== 0)) state[0] = 1;
    return new Rng(state as RngState);
  }

  /** Restores a generator saved with {@link Rng.state}. */
  static fromState(state: RngState): Rng {
    Rng.validateState(state, 'rng state');
    return new Rng(state);
  }

  /**
   * Checks that `value` is a valid {@link RngState}.
   *
   * @throws Error naming `where` when it is not four unsigned 32-bit integers, not all zero.
   */
  static validateState(value: unknown, where: string): asserts value is RngState {
    if (!Array.isArray(value) || value.length !== 4 || !value.every(isUint32)) {
      throw new Error(
        `${where} must be four unsigned 32-bit integers, got ${JSON.stringify(value)}`,
      );
    }
    if (value.every((x) => x === 0)) throw new Error(`${where} must not be all zero`);
  }

  /** A copy of the current state (JSON-serialisable). */
  state(): RngState {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  /** A generator that continues independently from the same state. */
  clone(): Rng {
    return new Rng(this.state());
  }

  /** The next unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A float in [0, 1) with 53 random bits (two draws). */
  nextFloat(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /**
   * A uniform integer in `[0, n)`, without modulo bias (rejection sampling).
   *
   * @param n an integer in `[1, 2^32]`.
   */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > UINT32) {
      throw new RangeError(`nextInt bound must be an integer in [1, 2^32], got ${n}`);
    }
    const limit = UINT32 - (UINT32 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Shuffles `items` in place (Fisher–Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }
}
