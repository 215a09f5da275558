/**
 * Read-only access to a darts-clone double-array trie, the structure SentencePiece stores inside a
 * precompiled normalization charsmap. Only the lookup the normalizer needs is implemented: the
 * longest key that is a prefix of the input bytes.
 */

/** Thrown when the double-array bytes cannot be a darts-clone array. */
export class DartsError extends Error {
  override name = 'DartsError';
}

/** A darts-clone `DoubleArray` over 32-bit units. */
export class DartsTrie {
  /** The value of the key found by the last successful `longestPrefix`. */
  value = 0;

  private readonly units: Uint32Array;

  /** `bytes` are the little-endian units as SentencePiece serializes them. */
  constructor(bytes: Uint8Array) {
    // Like darts-clone's set_array, trailing bytes short of a whole unit are ignored.
    if (bytes.length < 4) throw new DartsError(`double array of ${bytes.length} bytes is empty`);
    // Copied, because the blob sits at an arbitrary (unaligned) offset inside the model file.
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.units = new Uint32Array(Math.floor(bytes.length / 4));
    for (let i = 0; i < this.units.length; i++) this.units[i] = view.getUint32(i * 4, true);
  }

  /**
   * Finds the longest key that is a prefix of `input[start, end)`, walking the array exactly as
   * darts-clone's `commonPrefixSearch` does. Returns the key's length in bytes (0 when no key
   * matches) and stores its value in `this.value`.
   */
  longestPrefix(input: Uint8Array, start: number, end: number): number {
    const units = this.units;
    const n = units.length;
    let unit = units[0];
    let nodePos = offsetOf(unit);
    let bestLength = 0;
    for (let i = start; i < end; i++) {
      const c = input[i];
      nodePos ^= c;
      if (nodePos >= n) break;
      unit = units[nodePos];
      // label() keeps the leaf flag (bit 31), so a leaf unit never matches an input byte.
      if ((unit & 0x800000ff) !== c) break;
      nodePos ^= offsetOf(unit);
      if (nodePos >= n) break;
      if ((unit >>> 8) & 1) {
        bestLength = i + 1 - start;
        this.value = units[nodePos] & 0x7fffffff;
      }
    }
    return bestLength;
  }
}

function offsetOf(unit: number): number {
  return (unit >>> 10) << ((unit & 0x200) >>> 6);
}
