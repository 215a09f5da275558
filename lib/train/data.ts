/**
 * Corpus → training examples. Sentences are read (KMOU or CoNLL), tokenized, their character-span
 * entities aligned to BIO labels over the pieces ({@link alignEntities}), and each sentence is
 * wrapped as `[CLS] pieces [SEP]` with label `O` on [CLS] and [SEP]: the CRF runs over the whole
 * sequence, exactly as `NerModel` decodes it.
 *
 * A sentence longer than `maxLength − 2` pieces is not truncated but split into consecutive,
 * non-overlapping windows of at most `maxLength − 2` pieces, each its own example (see
 * `TrainConfig.maxLength`). Every example remembers its sentence and piece range, so results can
 * be traced back to the corpus.
 *
 * @packageDocumentation
 */
import { readConll, readKmouCorpus } from '../corpus/index.js';
import type { CorpusWarning, KmouSentence, Sentence } from '../corpus/types.js';
import {
  addAlignmentStats,
  alignEntities,
  emptyAlignmentStats,
  type AlignmentStats,
} from '../labels/align.js';
import {
  ENTITY_TYPES,
  KMOU_SCHEME,
  createLabelScheme,
  type LabelScheme,
} from '../labels/scheme.js';
import { posTargets, POS_IGNORE } from '../labels/pos.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { pieceSyllables, type PieceSyllables } from '../tokenizer/syllables.js';
import type { TokenizedExample } from './batching.js';
import type { CorpusFormat } from './config.js';

/** Options of {@link readSentences}. */
export interface ReadSentencesOptions {
  /** Receives the readers' warnings (default `console.warn` of the message). */
  onWarning?: (warning: CorpusWarning) => void;
}

/**
 * Reads every path of one corpus split, in order: KMOU directories or files, or CoNLL files.
 *
 * @throws CorpusError naming file and line for malformed input.
 */
export async function readSentences(
  format: CorpusFormat,
  paths: readonly string[],
  options: ReadSentencesOptions = {},
): Promise<Sentence[]> {
  const out: Sentence[] = [];
  for (const p of paths) {
    const part =
      format === 'kmou'
        ? await readKmouCorpus(p, { onWarning: options.onWarning })
        : await readConll(p);
    for (const sentence of part) out.push(sentence);
  }
  return out;
}

/**
 * The label scheme a corpus trains: KMOU's 21 labels for KMOU; for CoNLL, `O` plus `B-`/`I-` of
 * every type found in any of the given splits — in KMOU's order when they are all KMOU types (so a
 * CoNLL export of KMOU trains the same label ids), otherwise sorted by code point.
 */
export function schemeForCorpus(
  format: CorpusFormat,
  ...splits: readonly (readonly Sentence[])[]
): LabelScheme {
  if (format === 'kmou') return KMOU_SCHEME;
  const seen = new Set<string>();
  for (const split of splits) for (const s of split) for (const e of s.entities) seen.add(e.label);
  const kmou: readonly string[] = ENTITY_TYPES;
  if ([...seen].every((t) => kmou.includes(t))) return KMOU_SCHEME;
  return createLabelScheme([...seen].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** One training input: `[CLS] pieces [SEP]` ids and label ids, and where it came from. */
export interface TrainingExample extends TokenizedExample {
  ids: Int32Array;
  labels: Int32Array;
  /** POS id per position ({@link POS_IGNORE} on [CLS], [SEP] and pieces without one), when asked. */
  posTags?: Int32Array;
  /** The pieces' syllable ids (pieces × maxSyllables, without [CLS]/[SEP]), when asked. */
  syllables?: PieceSyllables;
  /** A teacher's tag distribution per position (length × K), for distillation (lib/train/distill). */
  softTargets?: Float32Array;
  /** False for unlabelled text: its `labels` are placeholders that train nothing. */
  tagged?: boolean;
  /** Index of the sentence in the list given to {@link prepareExamples}. */
  sentence: number;
  /** Piece range `[start, end)` of the sentence this example covers. */
  start: number;
  end: number;
}

/** The examples of one corpus split and what preparing them found. */
export interface PreparedData {
  examples: TrainingExample[];
  /** `examples[i].ids.length`, for batching. */
  lengths: Int32Array;
  /** Sentences read (including empty ones). */
  sentences: number;
  /** Sentences without a single piece (whitespace only): no example. */
  emptySentences: number;
  /** Sentences longer than `maxLength − 2` pieces, split into several windows. */
  windowedSentences: number;
  /** Pieces over all sentences, [CLS]/[SEP] excluded. */
  pieces: number;
  /** How entity boundaries met piece boundaries (see {@link AlignmentStats}). */
  alignment: AlignmentStats;
}

/** Options of {@link prepareExamples}. */
export interface PrepareOptions {
  scheme: LabelScheme;
  /** Longest example in pieces, [CLS] and [SEP] included (≥ 3). */
  maxLength: number;
  /** Add POS targets from the sentences' gold morphemes (KMOU sentences only). */
  pos?: boolean;
  /** Add each piece's syllable ids, at most this many per piece. */
  maxSyllables?: number;
}

/**
 * Where to cut `n` pieces into windows of at most `maxPieces`: consecutive and non-overlapping.
 * A cut prefers to fall before a word start (`▁…`) outside an entity, then anywhere outside an
 * entity, searching back at most half a window; only when neither exists does it cut inside an
 * entity. Fewer entities cut in two means fewer entities that no window sees whole.
 *
 * @param labels BIO label per piece; @param pieces piece strings (for word starts).
 */
export function splitWindows(
  labels: readonly string[],
  pieces: readonly string[],
  maxPieces: number,
): { start: number; end: number }[] {
  if (!Number.isInteger(maxPieces) || maxPieces < 1) {
    throw new RangeError(`maxPieces must be a positive integer, got ${maxPieces}`);
  }
  const n = labels.length;
  const windows: { start: number; end: number }[] = [];
  let start = 0;
  while (start < n) {
    let end = Math.min(start + maxPieces, n);
    if (end < n) {
      const lowest = start + Math.max(1, Math.ceil(maxPieces / 2));
      const outside = (c: number): boolean => !labels[c].startsWith('I-');
      let cut = -1;
      for (let c = end; c >= lowest && cut < 0; c--) {
        if (outside(c) && pieces[c].startsWith('▁')) cut = c;
      }
      for (let c = end; c >= lowest && cut < 0; c--) if (outside(c)) cut = c;
      if (cut > start) end = cut;
    }
    windows.push({ start, end });
    start = end;
  }
  return windows;
}

/**
 * Tokenizes and labels sentences into training examples (see the module comment). A window that
 * starts inside an entity has its first `I-X` turned into `B-X`: each example is a sequence of its
 * own, and the CRF must never learn `O → I-X` (which constrained decoding forbids).
 *
 * @throws Error when an entity's type is not in the scheme (naming the sentence).
 */
export function prepareExamples(
  sentences: readonly Sentence[],
  tokenizer: Tokenizer,
  options: PrepareOptions,
): PreparedData {
  const { scheme, maxLength, maxSyllables } = options;
  if (!Number.isInteger(maxLength) || maxLength < 3) {
    throw new RangeError(`maxLength must be an integer ≥ 3, got ${maxLength}`);
  }
  const outside = scheme.label2id.O;
  const { cls, sep } = tokenizer.specialIds;
  const examples: TrainingExample[] = [];
  const alignment = emptyAlignmentStats();
  let emptySentences = 0;
  let windowedSentences = 0;
  let pieces = 0;
  sentences.forEach((sentence, index) => {
    const encoding = tokenizer.encode(sentence.text);
    let aligned;
    try {
      aligned = alignEntities(sentence.text, encoding.offsets, sentence.entities, { scheme });
    } catch (error) {
      throw new Error(`sentence ${index} (${describe(sentence)}): ${(error as Error).message}`);
    }
    addAlignmentStats(alignment, aligned.stats);
    const n = encoding.ids.length;
    pieces += n;
    if (n === 0) {
      emptySentences++;
      return;
    }
    const windows = splitWindows(aligned.labels, encoding.pieces, maxLength - 2);
    if (windows.length > 1) windowedSentences++;
    let pos: Int32Array | undefined;
    if (options.pos) {
      const morphemes = (sentence as Partial<KmouSentence>).morphemes;
      if (!morphemes) {
        throw new Error(`sentence ${index} (${describe(sentence)}): no morphemes for POS targets`);
      }
      pos = posTargets(sentence.text, encoding.offsets, morphemes);
    }
    for (const { start, end } of windows) {
      const ids = new Int32Array(end - start + 2);
      const labels = new Int32Array(end - start + 2).fill(outside);
      ids[0] = cls;
      ids.set(encoding.ids.subarray(start, end), 1);
      ids[ids.length - 1] = sep;
      for (let p = start; p < end; p++) {
        let label = aligned.labels[p];
        if (p === start && label.startsWith('I-')) label = `B-${label.slice(2)}`;
        labels[p - start + 1] = scheme.label2id[label];
      }
      const example: TrainingExample = { ids, labels, sentence: index, start, end };
      if (pos) {
        example.posTags = new Int32Array(ids.length).fill(POS_IGNORE);
        example.posTags.set(pos.subarray(start, end), 1);
      }
      if (maxSyllables !== undefined) {
        example.syllables = pieceSyllables(
          sentence.text,
          encoding.offsets.slice(start, end),
          maxSyllables,
        );
      }
      examples.push(example);
    }
  });
  return {
    examples,
    lengths: Int32Array.from(examples, (e) => e.ids.length),
    sentences: sentences.length,
    emptySentences,
    windowedSentences,
    pieces,
    alignment,
  };
}

function describe(sentence: Sentence): string {
  const s = sentence as Sentence & { file?: string; line?: number };
  return s.file !== undefined && s.line !== undefined ? `${s.file}:${s.line}` : 'no location';
}

/** A one-line summary of a prepared split, for the training log. */
export function formatPreparedData(name: string, data: PreparedData): string {
  const a = data.alignment;
  const pct = (x: number): string =>
    a.entities === 0 ? '0%' : `${((100 * x) / a.entities).toFixed(2)}%`;
  const parts = [
    `${name}: ${data.sentences} sentences → ${data.examples.length} examples`,
    `${data.pieces} pieces`,
    `${a.entities} entities (${a.straddling} straddle a piece boundary, ${pct(a.straddling)}; ` +
      `${a.lost} lost, ${pct(a.lost)})`,
  ];
  if (data.windowedSentences > 0) parts.push(`${data.windowedSentences} split into windows`);
  if (data.emptySentences > 0) parts.push(`${data.emptySentences} empty, skipped`);
  return parts.join(', ');
}
