/**
 * UTF-8 conversion between JS strings and the byte strings SentencePiece works on, keeping the
 * byte-to-UTF-16 offset map that turns SentencePiece's byte offsets into JS string offsets.
 */

/**
 * Writes `text` as UTF-8 into `out` (which must hold `3 * text.length` bytes) and, for every byte
 * written, the UTF-16 index of the character it belongs to into `u16At`; `u16At[length]` is set
 * to `text.length`. A lone surrogate is written as U+FFFD, as `TextEncoder` does. Returns the byte
 * length.
 */
export function encodeUtf8(text: string, out: Uint8Array, u16At: Int32Array): number {
  const len = text.length;
  let n = 0;
  for (let i = 0; i < len; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      u16At[n] = i;
      out[n++] = c;
    } else if (c < 0x800) {
      u16At[n] = i;
      u16At[n + 1] = i;
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const lo = i + 1 < len ? text.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
        u16At[n] = i;
        u16At[n + 1] = i;
        u16At[n + 2] = i;
        u16At[n + 3] = i;
        out[n++] = 0xf0 | (c >> 18);
        out[n++] = 0x80 | ((c >> 12) & 0x3f);
        out[n++] = 0x80 | ((c >> 6) & 0x3f);
        out[n++] = 0x80 | (c & 0x3f);
        i++;
      } else {
        u16At[n] = i;
        u16At[n + 1] = i;
        u16At[n + 2] = i;
        out[n++] = 0xef;
        out[n++] = 0xbf;
        out[n++] = 0xbd;
      }
    } else {
      u16At[n] = i;
      u16At[n + 1] = i;
      u16At[n + 2] = i;
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    }
  }
  u16At[n] = len;
  return n;
}

/**
 * Byte length of the UTF-8 character starting with `lead`, by its high nibble, as SentencePiece's
 * `OneCharLen` computes it (a stray continuation byte counts as one).
 */
export function oneCharLen(lead: number): number {
  return CHAR_LEN[lead >> 4];
}

const CHAR_LEN = new Uint8Array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4]);

// ignoreBOM keeps a U+FEFF that starts a piece instead of dropping it as a byte-order mark.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** Decodes `bytes[start, end)`, which must be whole UTF-8 characters. */
export function decodeUtf8(bytes: Uint8Array, start: number, end: number): string {
  return decoder.decode(bytes.subarray(start, end));
}
