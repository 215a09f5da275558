/**
 * Paragraphs → pretraining windows → masked, padded batches. A paragraph longer than the model's
 * input is not truncated (the rest would never be seen) but split into consecutive windows cut
 * at word starts, with `splitWindows`, the rule fine-tuning uses; windows too short to teach much
 * (the tail of a long paragraph) are dropped.
 *
 * @packageDocumentation
 */
import type { Tokenizer } from '../tokenizer/index.js';
import { padSequences } from '../train/batching.js';
import { splitWindows } from '../train/data.js';
import type { Rng } from '../train/rng.js';
import type { ValidationLeakGuard } from './leak-guard.js';
import { IGNORE_LABEL, type WholeWordMasker } from './masking.js';

/** Pieces of one window, without `[CLS]`/`[SEP]`. */
export interface PieceWindow {
  ids: Int32Array;
  /** The piece strings, parallel to `ids` (for word starts). */
  pieces: string[];
}

/** Options of {@link paragraphWindows}. */
export interface WindowOptions {
  /** Longest window in pieces, `[CLS]` and `[SEP]` included (≥ 3). */
  maxLength: number;
  /** Windows with fewer pieces are dropped (default {@link DEFAULT_MIN_PIECES}). */
  minPieces?: number;
}

/** The default of {@link WindowOptions.minPieces}. */
export const DEFAULT_MIN_PIECES = 8;

/** The windows of one paragraph, and what was dropped. */
export interface ParagraphWindows {
  windows: PieceWindow[];
  /** Pieces of the paragraph (all windows, dropped ones included). */
  pieces: number;
  /** Windows dropped for having fewer than `minPieces` pieces. */
  dropped: number;
}

/**
 * Checks {@link WindowOptions} and fills in defaults.
 *
 * @throws RangeError for a `maxLength` under 3 or a `minPieces` that is not in 1..maxLength − 2.
 */
export function windowOptions(options: WindowOptions): Required<WindowOptions> {
  const { maxLength } = options;
  const minPieces = options.minPieces ?? Math.min(DEFAULT_MIN_PIECES, maxLength - 2);
  if (!Number.isInteger(maxLength) || maxLength < 3) {
    throw new RangeError(`maxLength must be an integer ≥ 3, got ${maxLength}`);
  }
  if (!Number.isInteger(minPieces) || minPieces < 1 || minPieces > maxLength - 2) {
    throw new RangeError(`minPieces must be an integer in 1..${maxLength - 2}, got ${minPieces}`);
  }
  return { maxLength, minPieces };
}

/**
 * Tokenizes a paragraph and cuts it into windows of at most `maxLength − 2` pieces (see the
 * module comment).
 */
export function paragraphWindows(
  text: string,
  tokenizer: Tokenizer,
  options: WindowOptions,
): ParagraphWindows {
  const { maxLength, minPieces } = windowOptions(options);
  const { ids, pieces } = tokenizer.encode(text);
  const n = ids.length;
  if (n <= maxLength - 2) {
    return n >= minPieces
      ? { windows: [{ ids, pieces }], pieces: n, dropped: 0 }
      : { windows: [], pieces: n, dropped: n > 0 ? 1 : 0 };
  }
  // splitWindows keeps entities whole; with no entities ('O' everywhere) it cuts at word starts.
  const outside: string[] = new Array<string>(n).fill('O');
  const windows: PieceWindow[] = [];
  let dropped = 0;
  for (const { start, end } of splitWindows(outside, pieces, maxLength - 2)) {
    if (end - start < minPieces) dropped++;
    else windows.push({ ids: ids.slice(start, end), pieces: pieces.slice(start, end) });
  }
  return { windows, pieces: n, dropped };
}

/** What reading text into windows found, for the log. */
export interface TextStats {
  /** Paragraphs read, dropped ones included. */
  paragraphs: number;
  /** Paragraphs dropped because they share text with the validation set. */
  leaks: number;
  /** Windows kept. */
  windows: number;
  /** Windows dropped for having fewer than `minPieces` pieces. */
  shortWindows: number;
  /** Pieces in the windows kept. */
  pieces: number;
}

/** Counters at zero. */
export function emptyTextStats(): TextStats {
  return { paragraphs: 0, leaks: 0, windows: 0, shortWindows: 0, pieces: 0 };
}

/**
 * One paragraph into `out`: dropped (and counted) when `guard` flags it, otherwise cut into
 * windows ({@link paragraphWindows}) that are appended to `out`.
 */
export function addParagraph(
  text: string,
  tokenizer: Tokenizer,
  guard: ValidationLeakGuard | null,
  options: WindowOptions,
  stats: TextStats,
  out: PieceWindow[],
): void {
  stats.paragraphs++;
  if (guard !== null && guard.contains(text)) {
    stats.leaks++;
    return;
  }
  const { windows, dropped } = paragraphWindows(text, tokenizer, options);
  stats.shortWindows += dropped;
  for (const w of windows) {
    stats.windows++;
    stats.pieces += w.ids.length;
    out.push(w);
  }
}

/** A masked-LM batch, ready for the model. */
export interface MaskedBatch {
  /** `B × T` piece ids, row-major: `[CLS] … [SEP]`, then `[PAD]` up to T. */
  ids: Int32Array;
  /** `B × T` labels: the original id at chosen positions, {@link IGNORE_LABEL} elsewhere. */
  labels: Int32Array;
  /** `[B, T]`: rows, and the longest row's length. */
  shape: [number, number];
  /** Each row's length, `[CLS]` and `[SEP]` included. */
  lengths: Int32Array;
  /** Chosen positions in the batch (labels that are not {@link IGNORE_LABEL}). */
  maskedCount: number;
}

/**
 * Masks windows (in order, drawing from `rng`) and pads them into one batch.
 *
 * @throws RangeError when `windows` is empty.
 */
export function maskBatch(
  windows: readonly PieceWindow[],
  masker: WholeWordMasker,
  rng: Rng,
  padId: number,
): MaskedBatch {
  if (windows.length === 0) throw new RangeError('a batch needs at least one window');
  const ids: Int32Array[] = [];
  const labels: Int32Array[] = [];
  let maskedCount = 0;
  for (const w of windows) {
    const m = masker.mask(w.ids, w.pieces, rng);
    ids.push(m.ids);
    labels.push(m.labels);
    maskedCount += m.masked;
  }
  const paddedIds = padSequences(ids, padId);
  return {
    ids: paddedIds.data,
    labels: padSequences(labels, IGNORE_LABEL).data,
    shape: [paddedIds.rows, paddedIds.cols],
    lengths: paddedIds.lengths,
    maskedCount,
  };
}
