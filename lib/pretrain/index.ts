/** Data for masked-LM and ELECTRA pretraining: streamed text, leak check, whole-word masking, batches. */
export { checkState, DEFAULT_BUFFER_WINDOWS, planBuffer, PretrainBatcher } from './batcher.js';
export type {
  PretrainBatch,
  PretrainBatcherOptions,
  PretrainDataConfig,
  PretrainDataState,
  PretrainDataStats,
} from './batcher.js';
export { buildEvalSet, heldOutSplit } from './eval-set.js';
export type { EvalSet, EvalSetOptions, HeldOutSplit } from './eval-set.js';
export {
  addParagraph,
  DEFAULT_MIN_PIECES,
  emptyTextStats,
  maskBatch,
  paragraphWindows,
  windowOptions,
} from './examples.js';
export type {
  MaskedBatch,
  ParagraphWindows,
  PieceWindow,
  TextStats,
  WindowOptions,
} from './examples.js';
export { removeWhitespace, ValidationLeakGuard } from './leak-guard.js';
export { NOT_JUDGED, replacedBatch } from './replaced.js';
export type { ReplacedBatch } from './replaced.js';
export type { LeakGuardOptions, LeakMatch } from './leak-guard.js';
export { BERT_MASKING, IGNORE_LABEL, startsWord, WholeWordMasker } from './masking.js';
export type { MaskedWindow, MaskingOptions } from './masking.js';
export {
  checkTextFiles,
  countLines,
  readEpochs,
  readParagraphs,
  TEXT_START,
  TextStreamError,
} from './text-stream.js';
export type {
  EpochParagraph,
  EpochPosition,
  Paragraph,
  ReadEpochsOptions,
  ReadParagraphsOptions,
  TextPosition,
} from './text-stream.js';
