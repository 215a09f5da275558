/**
 * Shared plumbing for the evaluation modules: label-format checks, gold/pred alignment, and the
 * numeric and text helpers that let reports match scikit-learn digit for digit.
 *
 * @packageDocumentation
 */

import { parseTag } from '../labels/scheme.js';

/**
 * Piece-level labels: either one flat sequence or one sequence per sentence. Gold and predicted
 * labels must have the same shape.
 */
export type LabelSequences = readonly string[] | readonly (readonly string[])[];

/** A label split into its BIO parts; special tokens (`[CLS]`, `<pad>`) are neither O nor entity. */
export type ParsedLabel =
  | { readonly kind: 'O' }
  | { readonly kind: 'B' | 'I'; readonly type: string }
  | { readonly kind: 'special' };

// The reference label vocabulary carries BERT's special tokens ([CLS], [SEP], [PAD], [MASK]); some
// tokenizers spell them <pad>, <s>. Both are accepted so sequences can be scored as the model
// emits them, but they are never entity labels.
const SPECIAL_RE = /^(?:\[[^\]\s]+\]|<[^>\s]+>)$/u;

/**
 * Parses one piece label: `O`, `B-<TYPE>`, `I-<TYPE>` (as lib/labels' `parseTag` reads them)
 * and bracketed special tokens such as `[CLS]` or `<pad>`.
 *
 * @returns the parsed label, or `undefined` when the string has none of these forms.
 */
export function parseLabel(label: string): ParsedLabel | undefined {
  if (typeof label !== 'string') return undefined;
  const tag = parseTag(label);
  if (tag) return tag.prefix === 'O' ? { kind: 'O' } : { kind: tag.prefix, type: tag.type };
  if (SPECIAL_RE.test(label)) return { kind: 'special' };
  return undefined;
}

/** The message every module uses for a label it cannot read. */
export function unknownLabelMessage(label: unknown, where: string): string {
  const shown = typeof label === 'string' ? JSON.stringify(label) : String(label);
  return (
    `unknown label format ${shown} ${where}: expected "O", "B-<TYPE>", "I-<TYPE>" ` +
    `or a bracketed special token such as "[CLS]"`
  );
}

/** Throws a clear Error unless every label in `labels` parses. */
export function checkLabelList(labels: readonly string[], what: string): void {
  const seen = new Set<string>();
  labels.forEach((label, i) => {
    if (parseLabel(label) === undefined) {
      throw new Error(unknownLabelMessage(label, `in ${what} at index ${i}`));
    }
    // sklearn would count a repeated label twice in every average, which is never what the
    // caller meant.
    if (seen.has(label)) throw new Error(`duplicate label ${JSON.stringify(label)} in ${what}`);
    seen.add(label);
  });
}

/** Gold and predicted labels after shape and format checks, one array per sentence. */
export interface AlignedSequences {
  readonly gold: readonly (readonly string[])[];
  readonly pred: readonly (readonly string[])[];
  /** Distinct labels seen in gold or pred, in first-seen order. */
  readonly seen: ReadonlySet<string>;
  /** Number of piece positions over all sentences. */
  readonly total: number;
}

function isFlat(seqs: LabelSequences, side: string): boolean {
  if (!Array.isArray(seqs)) throw new Error(`${side} labels must be an array`);
  if (seqs.length === 0) return false;
  const flat = typeof seqs[0] === 'string';
  for (let i = 0; i < seqs.length; i++) {
    const item: unknown = seqs[i];
    if (flat ? typeof item !== 'string' : !Array.isArray(item)) {
      throw new Error(
        `${side} labels mix strings and arrays (index ${i}): pass either one flat array of ` +
          `labels or one array per sentence`,
      );
    }
  }
  return flat;
}

/**
 * Checks that gold and pred have the same shape and that every label parses.
 *
 * @throws Error naming the sentence index and both lengths when a sentence's lengths differ, or
 *   the label, side, sentence and position of the first unreadable label.
 */
export function alignSequences(gold: LabelSequences, pred: LabelSequences): AlignedSequences {
  const goldFlat = isFlat(gold, 'gold');
  const predFlat = isFlat(pred, 'pred');
  // An empty array is both a flat sequence and a list of zero sentences.
  if (gold.length > 0 && pred.length > 0 && goldFlat !== predFlat) {
    throw new Error(
      `gold is ${goldFlat ? 'a flat label array' : 'one array per sentence'} but pred is ` +
        `${predFlat ? 'a flat label array' : 'one array per sentence'}`,
    );
  }
  const flat = goldFlat || predFlat;
  let g: readonly (readonly string[])[];
  let p: readonly (readonly string[])[];
  if (flat) {
    if (gold.length !== pred.length) {
      throw new Error(
        `gold and pred differ in length: gold has ${gold.length} labels, pred has ${pred.length}`,
      );
    }
    g = [gold as readonly string[]];
    p = [pred as readonly string[]];
  } else {
    g = gold as readonly (readonly string[])[];
    p = pred as readonly (readonly string[])[];
    if (g.length !== p.length) {
      throw new Error(
        `gold and pred differ in sentence count: gold has ${g.length} sentences, ` +
          `pred has ${p.length}`,
      );
    }
    for (let s = 0; s < g.length; s++) {
      if (g[s].length !== p[s].length) {
        throw new Error(
          `sentence ${s}: gold has ${g[s].length} labels but pred has ${p[s].length}`,
        );
      }
    }
  }
  const seen = new Set<string>();
  let total = 0;
  for (let s = 0; s < g.length; s++) {
    total += g[s].length;
    for (const side of [g[s], p[s]]) for (const label of side) seen.add(label);
  }
  for (const label of seen) {
    if (parseLabel(label) === undefined) {
      throw new Error(unknownLabelMessage(label, locate(label, g, p, flat)));
    }
  }
  return { gold: g, pred: p, seen, total };
}

// Only called on failure, so the second scan costs nothing on good input.
function locate(
  label: string,
  gold: readonly (readonly string[])[],
  pred: readonly (readonly string[])[],
  flat: boolean,
): string {
  for (let s = 0; s < gold.length; s++) {
    for (const [side, seq] of [
      ['gold', gold[s]],
      ['pred', pred[s]],
    ] as const) {
      const j = seq.indexOf(label);
      if (j >= 0)
        return flat ? `in ${side} at position ${j}` : `in ${side} sentence ${s}, position ${j}`;
    }
  }
  return '';
}

/**
 * Orders strings by Unicode code point, as Python's `sorted` and NumPy's `unique` do; JavaScript's
 * default sort compares UTF-16 units and disagrees for characters beyond the BMP.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/**
 * Sums like NumPy's `np.sum` on a contiguous float64 array (pairwise, eight accumulators, blocks
 * of 128), so averages come out bit-identical to scikit-learn's, not merely close.
 */
export function numpySum(values: ArrayLike<number>, start = 0, end = values.length): number {
  const n = end - start;
  if (n < 8) {
    let res = 0;
    for (let i = start; i < end; i++) res += values[i];
    return res;
  }
  if (n <= 128) {
    const r = [0, 0, 0, 0, 0, 0, 0, 0];
    for (let j = 0; j < 8; j++) r[j] = values[start + j];
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] += values[start + i + j];
    }
    // NumPy's association order: ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)).
    const lo = r[0] + r[1] + (r[2] + r[3]);
    const hi = r[4] + r[5] + (r[6] + r[7]);
    let res = lo + hi;
    for (; i < n; i++) res += values[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return numpySum(values, start, start + n2) + numpySum(values, start + n2, end);
}

/**
 * Formats like Python's `format(x, '.{digits}f')`. `Number#toFixed` rounds exact halves up while
 * Python rounds them to even, and such halves are common here (a precision of 1/32 is exactly
 * 0.03125), so ties are resolved by hand.
 */
export function formatFixed(x: number, digits: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const neg = x < 0 || Object.is(x, -0);
  const a = Math.abs(x);
  if (a >= 1e21) {
    // toFixed switches to exponent notation here; such values are integers anyway.
    return (neg ? '-' : '') + BigInt(a).toString() + (digits > 0 ? '.' + '0'.repeat(digits) : '');
  }
  // A tie at `digits` decimals is exactly (2k+1) / 2^(digits+1); scaling by a power of two is exact.
  const scaled = a * 2 ** (digits + 1);
  if (!Number.isInteger(scaled) || scaled % 2 !== 1) return (neg ? '-' : '') + a.toFixed(digits);
  let n = (BigInt(scaled) * 5n ** BigInt(digits) - 1n) / 2n;
  if (n % 2n === 1n) n += 1n;
  const s = n.toString().padStart(digits + 1, '0');
  const body = digits > 0 ? `${s.slice(0, s.length - digits)}.${s.slice(s.length - digits)}` : s;
  return (neg ? '-' : '') + body;
}

/** Number of code points, which is what Python's `len` and format widths count. */
export function codePointLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // A low surrogate that follows a high one belongs to the same code point.
    if (c >= 0xdc00 && c <= 0xdfff && i > 0) {
      const h = s.charCodeAt(i - 1);
      if (h >= 0xd800 && h <= 0xdbff) continue;
    }
    n++;
  }
  return n;
}

/** Python's `'{:>{width}}'.format(s)`: right-aligns by code points, never truncates. */
export function padLeft(s: string, width: number): string {
  const len = codePointLength(s);
  return len >= width ? s : ' '.repeat(width - len) + s;
}

/** Shared shape of a precision/recall/F1 row. */
export interface Scores {
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
  /** Gold occurrences (tokens or entities) the row covers. */
  readonly support: number;
}
