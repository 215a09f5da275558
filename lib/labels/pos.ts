/**
 * POS targets over tokenizer pieces, for an auxiliary POS head: each piece takes the Sejong tag
 * of the morpheme under its first character.
 *
 * @packageDocumentation
 */
import type { MorphemeSpan } from '../corpus/types.js';
import type { PieceOffset } from './align.js';

/**
 * The POS classes: every Sejong tag that occurs in the KMOU corpus' morpheme lines (train and
 * val, counted over the tags and over each part of `+`-joined tags), in the Sejong tagset's
 * order, then `OTHER` for anything else. Of the 45 Sejong tags, `NF` and `NV` never occur; the
 * only non-Sejong tag, `XSB` (once), is `OTHER`. Fixed here so POS ids never depend on data.
 */
export const POS_TAGS = [
  ...['NNG', 'NNP', 'NNB', 'NP', 'NR'], // nouns, pronoun, numeral
  ...['VV', 'VA', 'VX', 'VCP', 'VCN'], // predicates
  ...['MM', 'MAG', 'MAJ', 'IC'], // determiner, adverbs, interjection
  ...['JKS', 'JKC', 'JKG', 'JKO', 'JKB', 'JKV', 'JKQ', 'JX', 'JC'], // particles
  ...['EP', 'EF', 'EC', 'ETN', 'ETM'], // endings
  ...['XPN', 'XSN', 'XSV', 'XSA', 'XR'], // affixes, root
  ...['SF', 'SP', 'SS', 'SE', 'SO', 'SW', 'SH', 'SL', 'SN'], // symbols, foreign, Hanja, numbers
  'NA', // not analysed
  'OTHER',
] as const;

/** A POS class name. */
export type PosTag = (typeof POS_TAGS)[number];

/** The id of `OTHER`, the class of tags outside {@link POS_TAGS}. */
export const POS_OTHER_ID = POS_TAGS.length - 1;

/** The target of a piece without a POS (no character of its own, or none under a morpheme). */
export const POS_IGNORE = -1;

const TAG_IDS = new Map<string, number>(POS_TAGS.map((tag, id) => [tag, id]));

/**
 * The POS class of a corpus tag. A `+`-joined tag (`VV+ETM`, for a surface that fuses several
 * morphemes) is its first part, the morpheme that starts the surface; `+EP` (the corpus' way of
 * writing 했 with the 하 left out) is `EP`. Unknown tags are {@link POS_OTHER_ID}.
 */
export function pos2id(tag: string): number {
  const first = tag.split('+').find((part) => part !== '') ?? '';
  return TAG_IDS.get(first) ?? POS_OTHER_ID;
}

/** How pieces met morphemes in one or more sentences. */
export interface PosTargetStats {
  pieces: number;
  /** Pieces without a non-whitespace character (a bare `▁`, the empty spans before `㈜`'s last piece). */
  empty: number;
  /** Pieces whose first character lies under no morpheme. */
  uncovered: number;
  /** Pieces whose characters lie under more than one morpheme: the first one's tag is used. */
  multiMorpheme: number;
}

/** An all-zero statistics record, to add sentences' statistics into. */
export function emptyPosTargetStats(): PosTargetStats {
  return { pieces: 0, empty: 0, uncovered: 0, multiMorpheme: 0 };
}

const WS = /\s/;

/**
 * One POS target per piece: the {@link pos2id} of the morpheme covering the piece's first
 * non-whitespace character, or {@link POS_IGNORE} for a piece without one (or whose character no
 * morpheme covers).
 *
 * @param offsets UTF-16 piece offsets into `text` (the tokenizer's, without [CLS]/[SEP])
 * @param morphemes spans into `text`, in order and not overlapping (as the KMOU reader gives them)
 * @param stats when given, this sentence's counts are added into it
 * @throws {Error} naming the morpheme for one out of order, overlapping or outside the text
 */
export function posTargets(
  text: string,
  offsets: readonly PieceOffset[],
  morphemes: readonly Pick<MorphemeSpan, 'start' | 'end' | 'pos'>[],
  stats?: PosTargetStats,
): Int32Array {
  const owner = new Int32Array(text.length).fill(-1);
  let previousEnd = 0;
  morphemes.forEach((m, k) => {
    if (!(m.start >= previousEnd && m.end >= m.start && m.end <= text.length)) {
      throw new Error(
        `morpheme ${k} [${m.start}, ${m.end}) is out of order, overlapping or outside the text`,
      );
    }
    owner.fill(k, m.start, m.end);
    previousEnd = m.end;
  });
  const ids = morphemes.map((m) => pos2id(m.pos));
  const targets = new Int32Array(offsets.length).fill(POS_IGNORE);
  offsets.forEach(([start, end], p) => {
    let first = -1;
    let morphemeCount = 0;
    let last = -1;
    for (let k = start; k < end; k++) {
      if (WS.test(text[k])) continue;
      if (first < 0) first = k;
      if (owner[k] >= 0 && owner[k] !== last) {
        morphemeCount++;
        last = owner[k];
      }
    }
    if (first >= 0 && owner[first] >= 0) targets[p] = ids[owner[first]];
    if (stats) {
      stats.pieces++;
      if (first < 0) stats.empty++;
      else if (owner[first] < 0) stats.uncovered++;
      if (morphemeCount > 1) stats.multiMorpheme++;
    }
  });
  return targets;
}
