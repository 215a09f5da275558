/**
 * Syllable ids: a fixed, file-free numbering of characters for a syllable (character) channel
 * beside the SentencePiece ids. Every precomposed Hangul syllable has its own id, so the channel
 * sees inside pieces that hide their syllables (`▁김영` + `주`); the rest of the range is kept
 * small: compatibility jamo, printable ASCII, a list of common symbols, and hash buckets.
 *
 * The numbering is part of any model trained on it: changing it changes what a trained syllable
 * embedding means. Append, never reorder.
 *
 * @packageDocumentation
 */
/** No character: padding of a piece's row, and the rows of [CLS], [SEP] and padding pieces. */
export const SYLLABLE_PAD = 0;
/** A character with nothing to learn: whitespace, controls, format characters, lone surrogates. */
export const SYLLABLE_UNKNOWN = 1;

const HANGUL_FIRST = 0xac00; // 가
const HANGUL_COUNT = 11_172; // … 힣 (U+D7A3)
const JAMO_FIRST = 0x3131; // ㄱ
const JAMO_COUNT = 94; // … ㆎ (U+318E): the Hangul compatibility jamo
const ASCII_FIRST = 0x21; // !
const ASCII_COUNT = 94; // … ~ (U+007E); case is kept: KBS, Samsung, iPhone are NER cues
const FULLWIDTH_FIRST = 0xff01; // ！ … ～ (U+FF5E) fold onto ASCII ! … ~

/**
 * Non-ASCII symbols with their own id: quotes, brackets, dots, dashes, units and bullets that are
 * frequent in Korean news and Wikipedia text (from a character count of KMOU train and the first
 * 100,000 kowiki paragraphs; see scripts/stats/syllables.ts).
 */
const SYMBOLS = [
  ...'‘’“”‹›«»', // quotes
  ...'「」『』《》〈〉【】〔〕≪≫⟪⟫', // brackets
  ...'·・‧․∙•…、。', // dots
  ...'∼–—―−‐', // tilde operator, dashes, minus
  ...'°℃℉′″‰×÷±²³½¼¾⅓⅔', // units, math, fractions
  ...'㎡㎢㎥㎞㎝㎜㎖㎏㎎ℓ㈜㈔', // squared units, (주) (사)
  ...'→←↑↓↔▲△▼▽▶▷◀◁★☆○●◎◆◇■□※♥♡☞☎', // arrows, shapes, marks
  ...'①②③④⑤⑥⑦⑧⑨⑩ⅠⅡⅢⅣⅤ', // circled digits, Roman numerals
];

/**
 * How many hash buckets share everything else (Hanja, kana, Greek, Cyrillic, accented Latin…).
 * With 1,024, 86% of the bucketed characters of KMOU train (0.12% of its characters) and 70% of
 * those of kowiki (0.7%, mostly Hanja) are their bucket's most frequent character.
 */
const BUCKETS = 1024;
const BUCKET_BITS = Math.log2(BUCKETS);

const HANGUL_BASE = 2;
const JAMO_BASE = HANGUL_BASE + HANGUL_COUNT;
const ASCII_BASE = JAMO_BASE + JAMO_COUNT;
const SYMBOL_BASE = ASCII_BASE + ASCII_COUNT;
const BUCKET_BASE = SYMBOL_BASE + SYMBOLS.length;

/** Number of syllable ids: every id is in `[0, SYLLABLE_VOCAB_SIZE)`. */
export const SYLLABLE_VOCAB_SIZE = BUCKET_BASE + BUCKETS;

const SYMBOL_IDS = new Map<number, number>(
  SYMBOLS.map((symbol, k) => [symbol.codePointAt(0)!, SYMBOL_BASE + k]),
);

/**
 * Code point ranges `[first, last]` of {@link SYLLABLE_UNKNOWN}, written out so that ids never
 * depend on the Unicode tables of the runtime.
 */
const UNKNOWN_RANGES: readonly (readonly [number, number])[] = [
  [0x0000, 0x0020], // C0 controls, space
  [0x007f, 0x00a0], // DEL, C1 controls, no-break space
  [0x00ad, 0x00ad], // soft hyphen
  [0x1680, 0x1680], // ogham space
  [0x180e, 0x180e], // Mongolian vowel separator
  [0x2000, 0x200f], // spaces, zero-width space and joiners, direction marks
  [0x2028, 0x202f], // line/paragraph separators, embeddings, narrow no-break space
  [0x205f, 0x206f], // math space, word joiner, invisible operators, deprecated format
  [0x3000, 0x3000], // ideographic space
  [0xd800, 0xdfff], // surrogates (lone)
  [0xe000, 0xf8ff], // private use
  [0xfe00, 0xfe0f], // variation selectors
  [0xfeff, 0xfeff], // byte-order mark
  [0xfff0, 0xffff], // specials: replacement character, noncharacters
  [0xe0000, 0xe0fff], // tags, variation selectors supplement
  [0xf0000, 0x10ffff], // supplementary private use
];

function within(codePoint: number, first: number, count: number): boolean {
  return codePoint >= first && codePoint < first + count;
}

function isUnknown(codePoint: number): boolean {
  for (const [first, last] of UNKNOWN_RANGES) {
    if (codePoint < first) return false;
    if (codePoint <= last) return true;
  }
  return false;
}

/**
 * The syllable id of a character, in `[1, SYLLABLE_VOCAB_SIZE)`:
 *
 * - `1` ({@link SYLLABLE_UNKNOWN}): whitespace, controls, format characters, lone surrogates,
 *   private use, U+FFFD;
 * - `2 …`: the 11,172 precomposed Hangul syllables U+AC00 … U+D7A3, in code point order;
 * - then the 94 Hangul compatibility jamo U+3131 … U+318E;
 * - then printable ASCII U+0021 … U+007E, case kept; fullwidth forms U+FF01 … U+FF5E share their
 *   ASCII character's id;
 * - then a fixed list of common non-ASCII symbols (quotes, brackets, dots, units, bullets);
 * - then 1,024 hash buckets (a multiplicative hash of the code point) for every other character.
 *
 * `0` ({@link SYLLABLE_PAD}) is never a character's id.
 *
 * @throws {RangeError} for a value that is not a code point (an integer in 0 … 0x10FFFF)
 */
export function syllableId(codePoint: number): number {
  if (!Number.isInteger(codePoint) || codePoint < 0 || codePoint > 0x10ffff) {
    throw new RangeError(`not a code point: ${codePoint}`);
  }
  if (within(codePoint, HANGUL_FIRST, HANGUL_COUNT)) return HANGUL_BASE + codePoint - HANGUL_FIRST;
  if (within(codePoint, ASCII_FIRST, ASCII_COUNT)) return ASCII_BASE + codePoint - ASCII_FIRST;
  if (within(codePoint, FULLWIDTH_FIRST, ASCII_COUNT)) {
    return ASCII_BASE + codePoint - FULLWIDTH_FIRST;
  }
  if (within(codePoint, JAMO_FIRST, JAMO_COUNT)) return JAMO_BASE + codePoint - JAMO_FIRST;
  const symbol = SYMBOL_IDS.get(codePoint);
  if (symbol !== undefined) return symbol;
  if (isUnknown(codePoint)) return SYLLABLE_UNKNOWN;
  return BUCKET_BASE + (Math.imul(codePoint, 0x9e3779b1) >>> (32 - BUCKET_BITS));
}

/** Which part of the numbering an id belongs to (for statistics and tests). */
export type SyllableKind = 'pad' | 'unknown' | 'hangul' | 'jamo' | 'ascii' | 'symbol' | 'bucket';

/** The part of the numbering `id` belongs to; a RangeError outside `[0, SYLLABLE_VOCAB_SIZE)`. */
export function syllableKind(id: number): SyllableKind {
  if (!Number.isInteger(id) || id < 0 || id >= SYLLABLE_VOCAB_SIZE) {
    throw new RangeError(`not a syllable id: ${id}`);
  }
  if (id === SYLLABLE_PAD) return 'pad';
  if (id === SYLLABLE_UNKNOWN) return 'unknown';
  if (id < JAMO_BASE) return 'hangul';
  if (id < ASCII_BASE) return 'jamo';
  if (id < SYMBOL_BASE) return 'ascii';
  if (id < BUCKET_BASE) return 'symbol';
  return 'bucket';
}

/**
 * Syllables kept per piece by default: none is lost on KMOU. Pieces have 1.44 characters on
 * average on KMOU train; 0.17% have more than 4, 23 of 803,593 more than 6, the longest 8. On
 * 10,000 kowiki paragraphs, 14 of 1.1 million pieces have more than 8 (scripts/stats/syllables.ts).
 */
export const DEFAULT_MAX_SYLLABLES = 8;

/** The syllable ids of a sequence of pieces. */
export interface PieceSyllables {
  /** `pieces × maxSyllables`, row-major: piece p's ids, then {@link SYLLABLE_PAD} to the row's end. */
  ids: Int32Array;
  /** Per piece, how many ids its row holds (after truncation): 0 for a piece without a character. */
  counts: Int32Array;
  maxSyllables: number;
}

const WS = /\s/;

function checkMaxSyllables(maxSyllables: number): void {
  if (!Number.isInteger(maxSyllables) || maxSyllables < 1) {
    throw new RangeError(`maxSyllables must be a positive integer, got ${maxSyllables}`);
  }
}

/**
 * Per piece, the {@link syllableId}s of the characters of `text.slice(start, end)`, whitespace
 * left out, a surrogate pair as one character, the first `maxSyllables` kept.
 *
 * @param offsets UTF-16 piece offsets into `text` (the tokenizer's; a window's slice of them)
 * @throws {RangeError} for a piece outside the text or with end before start, or a bad
 *   `maxSyllables`
 */
export function pieceSyllables(
  text: string,
  offsets: readonly (readonly [number, number])[],
  maxSyllables: number = DEFAULT_MAX_SYLLABLES,
): PieceSyllables {
  checkMaxSyllables(maxSyllables);
  const ids = new Int32Array(offsets.length * maxSyllables);
  const counts = new Int32Array(offsets.length);
  offsets.forEach(([start, end], p) => {
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end)) {
      throw new RangeError(`piece ${p} has offsets [${start}, ${end}): not a span`);
    }
    if (end > text.length) {
      throw new RangeError(`piece ${p} [${start}, ${end}) ends after the text (${text.length})`);
    }
    let n = 0;
    for (let k = start; k < end && n < maxSyllables; k++) {
      let codePoint = text.charCodeAt(k);
      if (codePoint >= 0xd800 && codePoint < 0xdc00 && k + 1 < end) {
        const low = text.charCodeAt(k + 1);
        if (low >= 0xdc00 && low < 0xe000) {
          codePoint = 0x10000 + ((codePoint - 0xd800) << 10) + (low - 0xdc00);
          k++;
        }
      } else if (WS.test(text[k])) {
        continue;
      }
      ids[p * maxSyllables + n++] = syllableId(codePoint);
    }
    counts[p] = n;
  });
  return { ids, counts, maxSyllables };
}

/** A batch of syllable ids, laid out like the batch of piece ids it goes with. */
export interface SyllableBatch {
  /** `[batch, length, syllables]` row-major; rows of [CLS], [SEP] and padding are all 0. */
  ids: Int32Array;
  /** `[batch, length]`: ids per row (0 for [CLS], [SEP] and padding). */
  counts: Int32Array;
  batch: number;
  /** Positions per example: [CLS], the pieces, [SEP], padding. */
  length: number;
  syllables: number;
}

/**
 * Pads examples' piece syllables into one `[B, T, S]` batch for `[CLS] pieces [SEP]` sequences:
 * example b's piece p goes to row `(b, p + 1)`; row 0, the row after the last piece and the
 * padding rows stay {@link SYLLABLE_PAD}.
 *
 * @param length T (default: the most pieces of any example + 2)
 * @throws {RangeError} for no examples, examples of different `maxSyllables`, or a `length` too
 *   short for an example
 */
export function collateSyllables(
  examples: readonly PieceSyllables[],
  length?: number,
): SyllableBatch {
  if (examples.length === 0) throw new RangeError('collateSyllables needs at least one example');
  const syllables = examples[0].maxSyllables;
  checkMaxSyllables(syllables);
  let longest = 0;
  examples.forEach((example, b) => {
    if (example.maxSyllables !== syllables) {
      throw new RangeError(
        `example ${b} has maxSyllables ${example.maxSyllables}, example 0 has ${syllables}`,
      );
    }
    if (example.ids.length !== example.counts.length * syllables) {
      throw new RangeError(
        `example ${b}: ids hold ${example.ids.length} values, not ${example.counts.length} × ${syllables}`,
      );
    }
    longest = Math.max(longest, example.counts.length);
  });
  const T = length ?? longest + 2;
  if (!Number.isInteger(T) || T < longest + 2) {
    throw new RangeError(
      `length ${T} is too short: an example has ${longest} pieces, plus [CLS] and [SEP]`,
    );
  }
  const ids = new Int32Array(examples.length * T * syllables);
  const counts = new Int32Array(examples.length * T);
  examples.forEach((example, b) => {
    ids.set(example.ids, (b * T + 1) * syllables);
    counts.set(example.counts, b * T + 1);
  });
  return { ids, counts, batch: examples.length, length: T, syllables };
}
