/** Span ↔ BIO alignment over tokenizer pieces, decoding with boundary refinement, markup. */
export {
  chunkBio,
  createLabelScheme,
  ENTITY_TYPES,
  KMOU_SCHEME,
  LABEL2ID,
  LABELS,
  parseTag,
} from './scheme.js';
export type { BioChunk, EntityType, LabelScheme, ParsedTag } from './scheme.js';
export { addAlignmentStats, alignEntities, emptyAlignmentStats, trimRange } from './align.js';
export type { AlignOptions, Alignment, AlignmentStats, PieceOffset } from './align.js';
export {
  emptyPosTargetStats,
  POS_IGNORE,
  POS_OTHER_ID,
  POS_TAGS,
  pos2id,
  posTargets,
} from './pos.js';
export type { PosTag, PosTargetStats } from './pos.js';
export { decodeEntities, decodePieces } from './decode.js';
export type { DecodedEntity, DecodeOptions, PieceEntity } from './decode.js';
export {
  endCandidates,
  fallbackEnd,
  fallbackStart,
  JOSA,
  refineSpan,
  startCandidates,
} from './refine.js';
export type { RefineEntry, RefineInput, RefineOptions, RefineTable } from './refine.js';
export { REFINE_TABLE } from './refine-table.js';
export { learnRefineTable } from './refine-learn.js';
export type { LearnRefineOptions, RefineSample } from './refine-learn.js';
export { MarkupError, parseMarkup, renderMarkup } from './markup.js';
export type { MarkupEntity, ParseMarkupOptions } from './markup.js';
