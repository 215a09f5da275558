/** Corpus readers and writers: sentences with UTF-16 character-span entities. */
export { parseKmou, readKmouCorpus, readKmouFile } from './kmou.js';
export type { KmouParseResult, KmouReadOptions } from './kmou.js';
export { addMorphemeStats, alignMorphemes, emptyMorphemeStats } from './morphemes.js';
export type { MorphemeAlignmentStats, MorphemeToken } from './morphemes.js';
export { formatConll, fromBio, parseConll, readConll, toBio, writeConll } from './conll.js';
export type { BioSentence, ConllReport, ConllWriteOptions } from './conll.js';
export { CorpusError } from './types.js';
export type {
  ConllSentence,
  CorpusWarning,
  EntitySpan,
  KmouSentence,
  MorphemeSpan,
  Sentence,
} from './types.js';
