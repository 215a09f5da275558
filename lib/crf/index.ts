/**
 * The linear-chain CRF on plain typed arrays: loss and gradients ({@link nll}), n-best Viterbi
 * ({@link decode}) and posterior marginals ({@link marginals}), computed natively
 * (binding/crf) in float32 on the CPU or a CUDA device.
 *
 * Conventions (those of kmkurn/pytorch-crf and of koner's model files): a batch of B sequences
 * padded to T positions over K tags; `emissions[(b * T + t) * K + k]` is the score of tag k at
 * position t of sequence b; `transitions[i * K + j]` the score of tag i followed by tag j;
 * `start[k]` / `end[k]` the scores of beginning / ending with k. Sequence b covers its first
 * `lengths[b]` positions (0 allowed). Inputs are validated here, so every mistake is an Error
 * naming the argument before any native work starts.
 *
 * @module
 */
import { DEVICE_NAMES, parseDevice } from '../device.js';
import { native, type NativeCrfConstrainedOptions } from '../native.js';

/** `'cpu'`, `'cuda'` or `'cuda:N'`. */
export type CrfDevice = 'cpu' | 'cuda' | `cuda:${number}`;

/** How per-sequence losses combine: pytorch-crf's reductions (`mean` is over the batch). */
export type CrfReduction = 'sum' | 'mean' | 'none' | 'token_mean';

/** The dtype the emissions take on the device; the CRF itself always accumulates in float32. */
export type CrfDtype = 'float32' | 'float16' | 'bfloat16';

/** The CRF's parameters for K tags. */
export interface CrfParameters {
  /** [K * K] row-major: `transitions[i * K + j]` scores tag i followed by tag j. */
  transitions: Float32Array;
  /** [K] scores of starting with each tag. */
  start: Float32Array;
  /** [K] scores of ending with each tag. */
  end: Float32Array;
}

/** A batch of emission scores and the parameters to score it with. */
export interface CrfInput extends CrfParameters {
  /** [B * T * K] row-major emission scores. */
  emissions: Float32Array;
  /** [B, T, K]: batch size, padded length, number of tags (K ≥ 1). */
  shape: readonly [number, number, number];
  /** [B] sequence lengths within [0, T]; all T when omitted. */
  lengths?: Int32Array | readonly number[];
  /** Where to compute (default `'cpu'`). */
  device?: CrfDevice;
  /**
   * Round the emissions to this dtype first (default `'float32'`), as a half-precision encoder
   * would hand them over; the CRF still computes in float32.
   */
  dtype?: CrfDtype;
}

/** Allowed transitions, e.g. BIO rules (no `O → I-X`, no `B-X → I-Y`, no start with `I-`). */
export interface CrfConstraints {
  /** [K][K] or [K * K] row-major: `allowed[i][j]` permits tag i followed by tag j. */
  allowed?: Uint8Array | readonly (readonly boolean[])[];
  /** [K]: which tags may start a sequence. */
  allowedStart?: Uint8Array | readonly boolean[];
  /** [K]: which tags may end a sequence. */
  allowedEnd?: Uint8Array | readonly boolean[];
}

export interface CrfNllInput extends CrfInput {
  /** [B * T] gold tags in [0, K) within each length; values beyond a length are ignored. */
  tags: Int32Array | readonly number[];
  /** Default `'mean'`. */
  reduction?: CrfReduction;
}

export interface CrfNllResult {
  /** The loss: the reduction's value; for `'none'`, the sum of {@link CrfNllResult.losses}. */
  loss: number;
  /** [B] per-sequence losses, for `'none'` only. */
  losses?: Float32Array;
  /** Gradients of {@link CrfNllResult.loss}, shaped like the inputs (0 beyond lengths). */
  grad: {
    emissions: Float32Array;
    transitions: Float32Array;
    start: Float32Array;
    end: Float32Array;
  };
}

export interface CrfDecodeInput extends CrfInput {
  /** How many best distinct paths per sequence (default 1). */
  nBest?: number;
  constraints?: CrfConstraints;
}

export interface CrfDecodeResult {
  /**
   * `paths[b][n]`: the n-th best tag path of sequence b (`lengths[b]` tags), best first. A
   * sequence has fewer than `nBest` paths when fewer exist (K^length, or fewer allowed by the
   * constraints; none at all when nothing is allowed). A length-0 sequence has one path, `[]`.
   */
  paths: number[][][];
  /** `scores[b][n]`: the unnormalised score of `paths[b][n]` (a length-0 path scores 0). */
  scores: number[][];
}

export interface CrfMarginalsInput extends CrfInput {
  constraints?: CrfConstraints;
}

/**
 * Negative log-likelihood of the gold `tags` and its gradients w.r.t. emissions, transitions,
 * start and end (the native backward pass is fused: forward–backward marginals).
 *
 * @example
 * const { loss, grad } = nll({ emissions, shape: [B, T, K], lengths, tags, ...params });
 */
export function nll(input: CrfNllInput): CrfNllResult {
  const v = validate(input);
  const reduction = input.reduction ?? 'mean';
  if (!REDUCTIONS.includes(reduction)) {
    throw new TypeError(
      `reduction: expected one of ${REDUCTIONS.map((r) => `'${r}'`).join(', ')}, got ${show(reduction)}`,
    );
  }
  const tags = intArray(input.tags, 'tags', v.B * v.T);
  for (let b = 0; b < v.B; b++) {
    for (let t = 0; t < v.lengths[b]; t++) {
      const y = tags[b * v.T + t];
      if (y < 0 || y >= v.K) {
        throw new RangeError(
          `tags[${b * v.T + t}] (sequence ${b}, position ${t}) = ${y} is outside [0, ${v.K})`,
        );
      }
    }
  }
  const r = native().crfNll(
    input.emissions,
    [v.B, v.T, v.K],
    tags,
    v.lengths,
    input.transitions,
    input.start,
    input.end,
    reduction,
    v.options,
  );
  let loss = 0;
  for (const x of r.nll) loss += x;
  return {
    loss,
    ...(reduction === 'none' ? { losses: r.nll } : {}),
    grad: {
      emissions: r.gradEmissions,
      transitions: r.gradTransitions,
      start: r.gradStart,
      end: r.gradEnd,
    },
  };
}

/**
 * The `nBest` highest-scoring distinct tag paths of each sequence (Viterbi), optionally under
 * allowed-transition constraints. Equal scores come out in a deterministic order.
 */
export function decode(input: CrfDecodeInput): CrfDecodeResult {
  const v = validate(input);
  const nBest = input.nBest ?? 1;
  if (!Number.isInteger(nBest) || nBest < 1 || nBest > 65536) {
    throw new RangeError(`nBest: expected an integer from 1 to 65536, got ${show(nBest)}`);
  }
  const r = native().crfDecode(
    input.emissions,
    [v.B, v.T, v.K],
    v.lengths,
    input.transitions,
    input.start,
    input.end,
    { ...v.options, ...constraints(input.constraints, v.K), nBest },
  );
  const paths: number[][][] = [];
  const scores: number[][] = [];
  for (let b = 0; b < v.B; b++) {
    const seqPaths: number[][] = [];
    const seqScores: number[] = [];
    for (let n = 0; n < nBest; n++) {
      const score = r.scores[b * nBest + n];
      if (score === -Infinity) break; // missing paths come last
      const offset = (b * nBest + n) * v.T;
      seqPaths.push(Array.from(r.tags.subarray(offset, offset + v.lengths[b])));
      seqScores.push(score);
    }
    paths.push(seqPaths);
    scores.push(seqScores);
  }
  return { paths, scores };
}

/**
 * Posterior marginals P(y_t = k | emissions): `result[b][t][k]` for t < `lengths[b]`; each row
 * sums to 1 (all 0 when the constraints leave a sequence no allowed path).
 */
export function marginals(input: CrfMarginalsInput): number[][][] {
  const v = validate(input);
  const flat = native().crfMarginals(
    input.emissions,
    [v.B, v.T, v.K],
    v.lengths,
    input.transitions,
    input.start,
    input.end,
    { ...v.options, ...constraints(input.constraints, v.K) },
  );
  const out: number[][][] = [];
  for (let b = 0; b < v.B; b++) {
    const rows: number[][] = [];
    for (let t = 0; t < v.lengths[b]; t++) {
      const offset = (b * v.T + t) * v.K;
      rows.push(Array.from(flat.subarray(offset, offset + v.K)));
    }
    out.push(rows);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Validation

const REDUCTIONS: readonly CrfReduction[] = ['sum', 'mean', 'none', 'token_mean'];
const DTYPES: readonly CrfDtype[] = ['float32', 'float16', 'bfloat16'];

interface Validated {
  B: number;
  T: number;
  K: number;
  lengths: Int32Array;
  options: { device: string; dtype: CrfDtype };
}

function show(x: unknown): string {
  if (typeof x === 'string') return `'${x}'`;
  if (Array.isArray(x)) return `[${x.map(show).join(', ')}]`;
  if (ArrayBuffer.isView(x)) return `a ${x.constructor.name}`;
  return String(x);
}

function validate(input: CrfInput): Validated {
  if (typeof input !== 'object' || input === null) {
    throw new TypeError('crf: expected an input object');
  }
  const { shape } = input;
  if (
    !Array.isArray(shape) ||
    shape.length !== 3 ||
    !shape.every((d) => Number.isInteger(d) && d >= 0)
  ) {
    throw new TypeError(`shape: expected [B, T, K] of non-negative integers, got ${show(shape)}`);
  }
  const [B, T, K] = shape;
  if (K < 1) throw new RangeError(`shape: K (the number of tags) must be at least 1, got ${K}`);
  floatArray(input.emissions, 'emissions', B * T * K, `[B, T, K] = [${B}, ${T}, ${K}]`);
  floatArray(input.transitions, 'transitions', K * K, `[K, K] = [${K}, ${K}]`);
  floatArray(input.start, 'start', K, `[K] = [${K}]`);
  floatArray(input.end, 'end', K, `[K] = [${K}]`);
  let lengths: Int32Array;
  if (input.lengths === undefined) {
    lengths = new Int32Array(B).fill(T);
  } else {
    lengths = intArray(input.lengths, 'lengths', B);
    lengths.forEach((n, b) => {
      if (n < 0 || n > T) {
        throw new RangeError(`lengths[${b}] = ${n} is outside [0, T] for T = ${T}`);
      }
    });
  }
  const device = input.device ?? 'cpu';
  if (typeof device !== 'string' || parseDevice(device) === null) {
    throw new TypeError(`device: expected ${DEVICE_NAMES}, got ${show(device)}`);
  }
  const dtype = input.dtype ?? 'float32';
  if (!DTYPES.includes(dtype)) {
    throw new TypeError(
      `dtype: expected one of ${DTYPES.map((d) => `'${d}'`).join(', ')}, got ${show(dtype)}`,
    );
  }
  return { B, T, K, lengths, options: { device, dtype } };
}

function floatArray(x: unknown, name: string, length: number, shape: string): void {
  if (!(x instanceof Float32Array)) {
    throw new TypeError(`${name}: expected a Float32Array, got ${show(x)}`);
  }
  if (x.length !== length) {
    throw new RangeError(`${name}: shape ${shape} needs ${length} values, got ${x.length}`);
  }
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) throw new RangeError(`${name}[${i}] = ${x[i]} is not finite`);
  }
}

function intArray(x: unknown, name: string, length: number): Int32Array {
  let out: Int32Array;
  if (x instanceof Int32Array) {
    out = x;
  } else if (Array.isArray(x)) {
    x.forEach((n, i) => {
      if (!Number.isInteger(n) || n < -(2 ** 31) || n >= 2 ** 31) {
        throw new TypeError(`${name}[${i}]: expected an integer, got ${show(n)}`);
      }
    });
    out = Int32Array.from(x as number[]);
  } else {
    throw new TypeError(`${name}: expected an Int32Array or an array of integers, got ${show(x)}`);
  }
  if (out.length !== length) {
    throw new RangeError(`${name}: expected ${length} values, got ${out.length}`);
  }
  return out;
}

function boolArray(x: unknown, name: string, K: number, square: boolean): Uint8Array {
  const shape = square ? `[K, K] = [${K}, ${K}]` : `[K] = [${K}]`;
  const length = square ? K * K : K;
  let flat: ArrayLike<unknown>;
  if (x instanceof Uint8Array) {
    flat = x;
  } else if (Array.isArray(x) && square && x.some((row) => Array.isArray(row))) {
    if (x.length !== K || !x.every((row) => Array.isArray(row) && row.length === K)) {
      throw new RangeError(`${name}: expected ${K} rows of ${K} booleans (${shape})`);
    }
    flat = (x as unknown[][]).flat();
  } else if (Array.isArray(x)) {
    flat = x;
  } else {
    throw new TypeError(`${name}: expected a Uint8Array or an array of booleans, got ${show(x)}`);
  }
  if (flat.length !== length) {
    throw new RangeError(`${name}: shape ${shape} needs ${length} values, got ${flat.length}`);
  }
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const v = flat[i];
    if (v === true || v === 1) out[i] = 1;
    else if (!(v === false || v === 0)) {
      throw new TypeError(`${name}[${i}]: expected a boolean (or 0/1), got ${show(v)}`);
    }
  }
  return out;
}

function constraints(c: CrfConstraints | undefined, K: number): NativeCrfConstrainedOptions {
  if (c === undefined) return {};
  if (typeof c !== 'object' || c === null) {
    throw new TypeError('constraints: expected an object');
  }
  const out: NativeCrfConstrainedOptions = {};
  if (c.allowed !== undefined) out.allowed = boolArray(c.allowed, 'allowed', K, true);
  if (c.allowedStart !== undefined) {
    out.allowedStart = boolArray(c.allowedStart, 'allowedStart', K, false);
  }
  if (c.allowedEnd !== undefined) out.allowedEnd = boolArray(c.allowedEnd, 'allowedEnd', K, false);
  return out;
}
