/**
 * Keeps validation text out of pretraining. The kowiki dump was filtered with one rule (see
 * `../shared/data/README.md`): a paragraph is dropped when it shares a run of 20 characters,
 * whitespace removed, with a KMOU validation sentence. This guard applies the same rule again
 * inside the pipeline, so a different or re-built text source cannot leak the validation set into
 * the encoder.
 *
 * A validation sentence shorter than the run (125 of the 931 have fewer than 20 non-space
 * characters) can never share a 20-character run, so the guard also flags a paragraph that
 * contains such a sentence whole, when it has at least `minSentence` characters; shorter ones
 * ("5일 국내") are common phrases that say nothing about leakage and are left out (counted in
 * {@link ValidationLeakGuard.unchecked}).
 *
 * Speed: one pass over the paragraph's code units with a rolling hash of the first `minSentence`
 * code units of every key; a 2^24-bit filter rejects almost every position with one memory read,
 * and only filter hits compare code units against the keys. Characters are UTF-16 code units
 * (Korean text is all in the Basic Multilingual Plane).
 *
 * @packageDocumentation
 */

/** Options of {@link ValidationLeakGuard}. */
export interface LeakGuardOptions {
  /** Length of a shared run that counts as a leak, whitespace removed (default 20). */
  run?: number;
  /**
   * Shortest validation sentence (whitespace removed) checked whole when it is shorter than
   * `run` (default 10). Must be ≤ `run`.
   */
  minSentence?: number;
}

/** What {@link ValidationLeakGuard.find} found. */
export interface LeakMatch {
  /** Index of the validation sentence in the list the guard was built from. */
  sentence: number;
  /** The shared text, whitespace removed: a `run`-long piece of the sentence, or all of it. */
  shared: string;
}

const FILTER_BITS = 21;
const HASH_BASE = 0x01000193; // FNV's prime: odd, so the rolling hash is invertible mod 2^32

// Whitespace exactly as JavaScript's `\s` defines it, one byte per UTF-16 code unit.
const WHITESPACE = (() => {
  const table = new Uint8Array(0x10000);
  for (let c = 0; c < 0x10000; c++) if (/\s/.test(String.fromCharCode(c))) table[c] = 1;
  return table;
})();

/** Removes all whitespace (`\s`). */
export function removeWhitespace(text: string): string {
  return text.replace(/\s+/g, '');
}

/**
 * Flags paragraphs that share text with the validation sentences (see the module comment).
 * Build it once from the sentences' texts; {@link contains} is cheap enough to run on every
 * paragraph of a 400 MB corpus.
 */
export class ValidationLeakGuard {
  /** Length of a shared run that counts as a leak. */
  readonly run: number;
  /** Shortest sentence checked whole; also the width of the rolling hash. */
  readonly minSentence: number;
  /** Validation sentences too short to check (fewer than `minSentence` characters). */
  readonly unchecked: number;
  /** Distinct keys (runs and whole short sentences) the guard looks for. */
  readonly keys: number;

  private readonly filter = new Uint32Array(1 << (FILTER_BITS - 5));
  /** Rolling hash of a key's first `minSentence` code units → the keys with that hash. */
  private readonly candidates = new Map<number, { key: Uint16Array; sentence: number }[]>();
  /** `HASH_BASE^(minSentence − 1)`, to roll the oldest code unit out. */
  private readonly outFactor: number;
  private buffer = new Uint16Array(1024);

  /**
   * @param sentences the validation sentences' texts.
   * @throws RangeError for a `run` or `minSentence` that is not a positive integer, or
   *   `minSentence > run`.
   */
  constructor(sentences: readonly string[], options: LeakGuardOptions = {}) {
    const run = options.run ?? 20;
    const minSentence = options.minSentence ?? Math.min(10, run);
    if (!Number.isInteger(run) || run < 1) {
      throw new RangeError(`run must be a positive integer, got ${run}`);
    }
    if (!Number.isInteger(minSentence) || minSentence < 1 || minSentence > run) {
      throw new RangeError(`minSentence must be an integer in 1..${run}, got ${minSentence}`);
    }
    this.run = run;
    this.minSentence = minSentence;
    let factor = 1;
    for (let i = 1; i < minSentence; i++) factor = Math.imul(factor, HASH_BASE);
    this.outFactor = factor;

    const seen = new Set<string>();
    let unchecked = 0;
    sentences.forEach((text, sentence) => {
      const compact = removeWhitespace(text);
      if (compact.length < minSentence) {
        unchecked++;
        return;
      }
      const width = Math.min(run, compact.length);
      for (let i = 0; i + width <= compact.length; i++) {
        const key = compact.slice(i, i + width);
        if (seen.has(key)) continue;
        seen.add(key);
        this.addKey(key, sentence);
      }
    });
    this.unchecked = unchecked;
    this.keys = seen.size;
  }

  private addKey(key: string, sentence: number): void {
    // By code unit: iterating a string (`Uint16Array.from(key)`) would go by code point.
    const units = new Uint16Array(key.length);
    for (let i = 0; i < key.length; i++) units[i] = key.charCodeAt(i);
    let h = 0;
    for (let i = 0; i < this.minSentence; i++) h = (Math.imul(h, HASH_BASE) + units[i]) | 0;
    const slot = filterSlot(h);
    this.filter[slot >>> 5] |= 1 << (slot & 31);
    const list = this.candidates.get(h);
    if (list) list.push({ key: units, sentence });
    else this.candidates.set(h, [{ key: units, sentence }]);
  }

  /** Whether `paragraph` shares a run with a validation sentence or contains a short one. */
  contains(paragraph: string): boolean {
    return this.find(paragraph) !== null;
  }

  /** The first match in `paragraph` (see {@link contains}), or null. */
  find(paragraph: string): LeakMatch | null {
    if (paragraph.length > this.buffer.length) {
      this.buffer = new Uint16Array(Math.max(paragraph.length, 2 * this.buffer.length));
    }
    const buf = this.buffer;
    let n = 0;
    for (let i = 0; i < paragraph.length; i++) {
      const c = paragraph.charCodeAt(i);
      if (WHITESPACE[c] === 0) buf[n++] = c;
    }
    const width = this.minSentence;
    if (n < width) return null;
    const filter = this.filter;
    let h = 0;
    for (let i = 0; i < width; i++) h = (Math.imul(h, HASH_BASE) + buf[i]) | 0;
    for (let start = 0; ; start++) {
      // h is the hash of buf[start, start + width).
      const slot = filterSlot(h);
      if ((filter[slot >>> 5] & (1 << (slot & 31))) !== 0) {
        const match = this.confirm(h, buf, start, n);
        if (match) return match;
      }
      if (start + width >= n) return null;
      h =
        (Math.imul(h - Math.imul(buf[start], this.outFactor), HASH_BASE) + buf[start + width]) | 0;
    }
  }

  private confirm(h: number, buf: Uint16Array, start: number, n: number): LeakMatch | null {
    const list = this.candidates.get(h);
    if (!list) return null;
    for (const { key, sentence } of list) {
      if (start + key.length > n) continue;
      let same = true;
      for (let k = 0; k < key.length && same; k++) same = buf[start + k] === key[k];
      if (same) return { sentence, shared: String.fromCharCode(...key) };
    }
    return null;
  }
}

// Spreads the rolling hash's bits (its low bits depend only on the last few code units) before
// taking the top FILTER_BITS as the filter position.
function filterSlot(h: number): number {
  return Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> (32 - FILTER_BITS);
}
