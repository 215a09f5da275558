/**
 * SentencePiece's normalizer (normalizer.cc), byte for byte: the precompiled charsmap rules,
 * user-defined symbols kept verbatim, and the whitespace options of the `NormalizerSpec`, together
 * with `norm_to_orig`, the map from each normalized byte back to an original byte offset.
 */
import type { ByteTrie } from './byte-trie.js';
import { DartsTrie } from './darts.js';
import type { NormalizerSpec } from './model-proto.js';
import { oneCharLen } from './utf8.js';

/** Thrown when the precompiled charsmap is malformed. */
export class CharsmapError extends Error {
  override name = 'CharsmapError';
}

const SPACE = 0x20;
// U+2581 LOWER ONE EIGHTH BLOCK, the escaped whitespace.
const WS0 = 0xe2;
const WS1 = 0x96;
const WS2 = 0x81;

/** Normalizes UTF-8 byte strings; one instance reuses its output buffers across calls. */
export class Normalizer {
  /** Normalized bytes of the last `normalize` call. */
  out = new Uint8Array(256);
  /**
   * For each normalized byte of the last call, the original byte offset it came from; one extra
   * entry after the last byte holds the original offset where the normalized text ends.
   */
  normToOrig = new Int32Array(257);

  private readonly charsmap: DartsTrie | null = null;
  private readonly replacements: Uint8Array = new Uint8Array(0);
  private readonly addDummyPrefix: boolean;
  private readonly removeExtraWhitespaces: boolean;
  private readonly escapeWhitespaces: boolean;
  // Where the replacement found by the last `prefix` call lies: `repSrc[repStart, repEnd)`.
  private repSrc: Uint8Array = this.out;
  private repStart = 0;
  private repEnd = 0;

  /**
   * @param spec the model's normalizer spec.
   * @param treatWhitespaceAsSuffix the trainer spec flag that moves the dummy space to the end.
   * @param userDefined user-defined symbols, matched before the charsmap and kept unnormalized.
   */
  constructor(
    spec: NormalizerSpec,
    private readonly treatWhitespaceAsSuffix: boolean,
    private readonly userDefined: ByteTrie | null,
  ) {
    this.addDummyPrefix = spec.addDummyPrefix;
    this.removeExtraWhitespaces = spec.removeExtraWhitespaces;
    this.escapeWhitespaces = spec.escapeWhitespaces;
    const blob = spec.precompiledCharsmap;
    if (blob.length > 0) {
      // Layout: <uint32 LE trie size><darts-clone units><NUL-terminated replacement strings>.
      if (blob.length <= 4) throw new CharsmapError('precompiled charsmap is too short');
      const trieSize = new DataView(blob.buffer, blob.byteOffset, 4).getUint32(0, true);
      if (trieSize >= blob.length) {
        throw new CharsmapError(
          `precompiled charsmap trie size ${trieSize} exceeds the blob size ${blob.length}`,
        );
      }
      this.charsmap = new DartsTrie(blob.subarray(4, 4 + trieSize));
      this.replacements = blob.subarray(4 + trieSize);
    }
  }

  /**
   * Normalizes `input[0, len)` (valid UTF-8) into `this.out` and `this.normToOrig`, growing them
   * as needed, and returns the normalized length in bytes.
   */
  normalize(input: Uint8Array, len: number): number {
    let pos = 0;
    if (this.removeExtraWhitespaces) {
      // Leading whitespace: whatever normalizes to exactly one space.
      while (pos < len) {
        const consumed = this.prefix(input, pos, len);
        if (this.repEnd - this.repStart !== 1 || this.repSrc[this.repStart] !== SPACE) break;
        pos += consumed;
      }
    }
    if (pos >= len) return 0;

    this.reserve(3 * (len - pos) + 8);
    let n = 0;
    if (!this.treatWhitespaceAsSuffix && this.addDummyPrefix) n = this.addSpace(n, pos);

    const escape = this.escapeWhitespaces;
    let isPrevSpace = this.removeExtraWhitespaces;
    while (pos < len) {
      const consumed = this.prefix(input, pos, len);
      const src = this.repSrc;
      let s = this.repStart;
      const e = this.repEnd;
      if (isPrevSpace) while (s < e && src[s] === SPACE) s++;
      if (s < e) {
        if (n + 3 * (e - s) + 4 > this.out.length) this.reserve(2 * (n + 3 * (e - s)) + 8);
        const out = this.out;
        const map = this.normToOrig;
        for (let k = s; k < e; k++) {
          const b = src[k];
          if (escape && b === SPACE) {
            out[n] = WS0;
            out[n + 1] = WS1;
            out[n + 2] = WS2;
            map[n] = pos;
            map[n + 1] = pos;
            map[n + 2] = pos;
            n += 3;
          } else {
            out[n] = b;
            map[n++] = pos;
          }
        }
        isPrevSpace = src[e - 1] === SPACE;
      }
      pos += consumed;
      if (!this.removeExtraWhitespaces) isPrevSpace = false;
    }

    let consumed = pos;
    if (this.removeExtraWhitespaces) {
      const out = this.out;
      if (escape) {
        while (n >= 3 && out[n - 3] === WS0 && out[n - 2] === WS1 && out[n - 1] === WS2) {
          n -= 3;
          consumed = this.normToOrig[n];
        }
      } else {
        while (n >= 1 && out[n - 1] === SPACE) {
          n -= 1;
          consumed = this.normToOrig[n];
        }
      }
    }
    if (this.treatWhitespaceAsSuffix && this.addDummyPrefix) n = this.addSpace(n, consumed);
    this.normToOrig[n] = consumed;
    return n;
  }

  /**
   * Finds the normalization of the longest rule matching at `input[pos]` (a user-defined symbol,
   * else a charsmap rule, else the character itself), points `repSrc/repStart/repEnd` at it, and
   * returns the number of input bytes it consumes.
   */
  private prefix(input: Uint8Array, pos: number, len: number): number {
    if (this.userDefined !== null) {
      const m = this.userDefined.longestPrefix(input, pos, len);
      if (m > 0) return this.verbatim(input, pos, m);
    }
    if (this.charsmap !== null) {
      const m = this.charsmap.longestPrefix(input, pos, len);
      if (m > 0) {
        const rep = this.replacements;
        const start = this.charsmap.value;
        let end = start;
        while (end < rep.length && rep[end] !== 0) end++;
        this.repSrc = rep;
        this.repStart = Math.min(start, end);
        this.repEnd = end;
        return m;
      }
    }
    return this.verbatim(input, pos, Math.min(oneCharLen(input[pos]), len - pos));
  }

  private verbatim(input: Uint8Array, pos: number, length: number): number {
    this.repSrc = input;
    this.repStart = pos;
    this.repEnd = pos + length;
    return length;
  }

  private addSpace(n: number, orig: number): number {
    if (this.escapeWhitespaces) {
      this.out[n] = WS0;
      this.out[n + 1] = WS1;
      this.out[n + 2] = WS2;
      this.normToOrig[n] = orig;
      this.normToOrig[n + 1] = orig;
      this.normToOrig[n + 2] = orig;
      return n + 3;
    }
    this.out[n] = SPACE;
    this.normToOrig[n] = orig;
    return n + 1;
  }

  private reserve(size: number): void {
    if (size + 4 <= this.out.length) return;
    const cap = Math.max(size + 4, 2 * this.out.length);
    const out = new Uint8Array(cap);
    out.set(this.out);
    const map = new Int32Array(cap + 1);
    map.set(this.normToOrig);
    this.out = out;
    this.normToOrig = map;
  }
}
