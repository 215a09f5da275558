/** koner: Korean named-entity recognition on LibTorch. The public API. */
export {
  runtimeInfo,
  getThreads,
  setThreads,
  releaseLargeAllocations,
  tensorMemory,
  setTensorCacheLimit,
} from './runtime.js';
export { LIMITS } from './limits.js';
export type { RuntimeInfo, TensorMemory } from './runtime.js';
export type { EncoderDtype, NativeCpuFeatures as CpuFeatures } from './native.js';

export {
  collateSyllables,
  DEFAULT_MAX_SYLLABLES,
  pieceSyllables,
  SYLLABLE_PAD,
  SYLLABLE_UNKNOWN,
  SYLLABLE_VOCAB_SIZE,
  syllableId,
  syllableKind,
  Tokenizer,
  TokenizerLoadError,
} from './tokenizer/index.js';
export type {
  Encoding,
  PieceSyllables,
  SpecialIds,
  SyllableBatch,
  SyllableKind,
  TokenizerLoadOptions,
} from './tokenizer/index.js';

export {
  alignMorphemes,
  CorpusError,
  formatConll,
  parseConll,
  parseKmou,
  readConll,
  readKmouCorpus,
  readKmouFile,
  writeConll,
} from './corpus/index.js';
export type {
  ConllReport,
  ConllSentence,
  ConllWriteOptions,
  CorpusWarning,
  EntitySpan,
  KmouParseResult,
  KmouReadOptions,
  KmouSentence,
  MorphemeAlignmentStats,
  MorphemeSpan,
  MorphemeToken,
  Sentence,
} from './corpus/index.js';

export {
  alignEntities,
  createLabelScheme,
  decodeEntities,
  emptyPosTargetStats,
  ENTITY_TYPES,
  KMOU_SCHEME,
  LABEL2ID,
  LABELS,
  MarkupError,
  parseMarkup,
  POS_IGNORE,
  POS_OTHER_ID,
  POS_TAGS,
  pos2id,
  posTargets,
  refineSpan,
  renderMarkup,
} from './labels/index.js';
export type {
  Alignment,
  AlignmentStats,
  DecodedEntity,
  DecodeOptions,
  EntityType,
  LabelScheme,
  PieceOffset,
  PosTag,
  PosTargetStats,
  RefineOptions,
} from './labels/index.js';

export {
  confusionMatrix,
  confusionMatrixSvg,
  entityMetrics,
  entityMetricsFromBio,
  formatClassificationReport,
  formatConfusionMatrix,
  formatEntityReport,
  tokenClassificationReport,
  trainingCurvesSvg,
} from './eval/index.js';
export type {
  ConfusionMatrix,
  EntityReport,
  TokenClassificationReport,
  TokenReportOptions,
} from './eval/index.js';

/** The linear-chain CRF on plain typed arrays: `crf.nll`, `crf.decode`, `crf.marginals`. */
export * as crf from './crf/index.js';

export { NerModel, bioConstraints, MAX_ATTENTION_VALUES } from './model/ner-model.js';
export { defaultModelDir } from './model/default-model.js';
export type {
  AttentionMaps,
  AttentionOptions,
  AttentionToken,
  ExplainOptions,
  Explanation,
  NerEntity,
  NerEntityWithPieces,
  NerModelLoadOptions,
  NerPath,
  PieceProbability,
  PredictOptions,
  TokenizerFiles,
} from './model/ner-model.js';
export { parseModelConfig, readModelConfig, writeModelConfig } from './model/config.js';
export type { HeadKind, ModelConfig } from './model/config.js';
export { importCheckpoint } from './model/import.js';
export type { ImportLayout, ImportOptions, ImportResult } from './model/import.js';

export { explainHtml, explainView } from './explain/index.js';
export type { ExplainView, TagProbability, ViewToken } from './explain/index.js';
