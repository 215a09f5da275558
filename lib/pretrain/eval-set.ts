/**
 * A fixed held-out set for pretraining: the last lines of the last file, masked once with a fixed
 * seed, so the masked-LM loss and accuracy of every evaluation are measured on the very same
 * batches, and on text the training stream never reads (it stops where the held-out part
 * begins, see {@link heldOutSplit}).
 *
 * @packageDocumentation
 */
import type { Tokenizer } from '../tokenizer/index.js';
import { Rng } from '../train/rng.js';
import {
  addParagraph,
  emptyTextStats,
  maskBatch,
  windowOptions,
  type MaskedBatch,
  type PieceWindow,
  type TextStats,
} from './examples.js';
import type { ValidationLeakGuard } from './leak-guard.js';
import { BERT_MASKING, WholeWordMasker, type MaskingOptions } from './masking.js';
import { readParagraphs, type TextPosition } from './text-stream.js';

/** Where training text ends and held-out text begins. */
export interface HeldOutSplit {
  /** Pass as `until` to the training stream: it stops before the held-out lines. */
  trainUntil: TextPosition;
  /** The first held-out line; the held-out part runs to the end of the last file. */
  evalFrom: TextPosition;
}

/**
 * Holds out the last `lines` lines of the last file (kowiki has no blank lines, so lines are
 * paragraphs).
 *
 * @param lastFileLines the last file's line count ({@link countLines}; cache it, it takes a pass).
 * @throws RangeError when `lines` is not in 1..lastFileLines − 1 (training needs a line too).
 */
export function heldOutSplit(
  files: readonly string[],
  lastFileLines: number,
  lines: number,
): HeldOutSplit {
  if (files.length === 0) throw new RangeError('files must name at least one file');
  if (!Number.isInteger(lastFileLines) || lastFileLines < 2) {
    throw new RangeError(`lastFileLines must be an integer ≥ 2, got ${lastFileLines}`);
  }
  if (!Number.isInteger(lines) || lines < 1 || lines >= lastFileLines) {
    throw new RangeError(
      `held-out lines must be an integer in 1..${lastFileLines - 1} ` +
        `(the last file has ${lastFileLines} lines), got ${lines}`,
    );
  }
  const at = { file: files.length - 1, line: lastFileLines - lines };
  return { trainUntil: at, evalFrom: { ...at } };
}

/** Options of {@link buildEvalSet}. */
export interface EvalSetOptions {
  files: readonly string[];
  /** The first held-out line (`heldOutSplit(…).evalFrom`); read to the end of the last file. */
  from: TextPosition;
  tokenizer: Tokenizer;
  /** As for training: held-out text sharing text with the validation set is dropped too. */
  guard: ValidationLeakGuard | null;
  maxLength: number;
  minPieces?: number;
  batchSize: number;
  /** Seed of the masking (default 0). Keep it fixed across a run and its resumes. */
  seed?: number;
  masking?: MaskingOptions;
}

/** The held-out batches and what reading them found. */
export interface EvalSet {
  /** Sorted by length (little padding), masked; the same for the same options. */
  batches: MaskedBatch[];
  stats: TextStats & { maskedPieces: number };
}

/**
 * Reads the held-out paragraphs, cuts them into windows as training does, sorts them by length,
 * batches them and masks each batch, in order, from `Rng.fromSeed(seed)`.
 *
 * @throws TextStreamError for unreadable text; RangeError for bad options or an empty set.
 */
export async function buildEvalSet(options: EvalSetOptions): Promise<EvalSet> {
  const windowOpts = windowOptions(options);
  const { batchSize, tokenizer } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  const masker = new WholeWordMasker(
    tokenizer.specialIds,
    tokenizer.vocabSize,
    options.masking ?? BERT_MASKING,
  );
  const stats = { ...emptyTextStats(), maskedPieces: 0 };
  const windows: PieceWindow[] = [];
  for await (const p of readParagraphs(options.files, options.from)) {
    addParagraph(p.text, tokenizer, options.guard, windowOpts, stats, windows);
  }
  if (windows.length === 0) {
    throw new RangeError(
      `no held-out window from file ${options.from.file}, line ${options.from.line + 1} on`,
    );
  }
  windows.sort((a, b) => a.ids.length - b.ids.length);
  const rng = Rng.fromSeed(options.seed ?? 0);
  const batches: MaskedBatch[] = [];
  for (let i = 0; i < windows.length; i += batchSize) {
    const batch = maskBatch(windows.slice(i, i + batchSize), masker, rng, tokenizer.specialIds.pad);
    stats.maskedPieces += batch.maskedCount;
    batches.push(batch);
  }
  return { batches, stats };
}
