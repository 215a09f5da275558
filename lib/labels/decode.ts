/** BIO piece tags to entity spans with exact offsets into the original text. */
import { trimRange, type PieceOffset } from './align.js';
import { refineSpan, type RefineOptions } from './refine.js';
import { chunkBio, KMOU_SCHEME, parseTag, type LabelScheme, type ParsedTag } from './scheme.js';

/** An entity found in text. */
export interface DecodedEntity {
  /** Entity type, e.g. `PER`. */
  entity: string;
  /** `text.slice(start, end)` of the original text. */
  text: string;
  start: number;
  end: number;
  /** Mean of the entity's per-piece scores; 1 when no scores were given. */
  score: number;
}

/** An entity as its pieces give it, before refinement: what {@link refineSpan} works on. */
export interface PieceEntity {
  label: string;
  /** First and last piece index (inclusive) of the entity's tags. */
  firstPiece: number;
  lastPiece: number;
  /** From the first non-whitespace character of the first piece with content… */
  start: number;
  /** …to the end of the last piece with content, trailing whitespace excluded. */
  end: number;
  /** Content range (whitespace trimmed) of the first and the last piece with content. */
  first: [number, number];
  last: [number, number];
  score: number;
}

/** Options for {@link decodeEntities}. */
export interface DecodeOptions {
  /**
   * Per-piece probability or confidence of the tag chosen for each piece (same length as
   * the tags). An entity's score is the arithmetic mean over all of its pieces.
   */
  scores?: ArrayLike<number>;
  /** Scheme that numeric tags index (default KMOU). */
  scheme?: LabelScheme;
  /**
   * Trim particles, endings and punctuation glued into an entity's first or last piece
   * (`13일까지` → `13일`, `(18…` → `18…`); see `refineSpan`. Default true; `false` keeps
   * whole pieces.
   */
  refine?: boolean | RefineOptions;
}

/** Turns tag strings or label ids into parsed tags, checking each one. */
function parseTags(tags: readonly string[] | ArrayLike<number>, scheme: LabelScheme): ParsedTag[] {
  const parsed: ParsedTag[] = [];
  for (let p = 0; p < tags.length; p++) {
    const tag = tags[p];
    const label = typeof tag === 'number' ? scheme.labels[tag] : tag;
    const result = label === undefined ? null : parseTag(label);
    if (!result) throw new Error(`piece ${p}: bad tag ${JSON.stringify(tag)}`);
    parsed.push(result);
  }
  return parsed;
}

/**
 * Groups piece tags into entities with their piece-derived spans, without refinement.
 * Chunks follow `chunkBio`: an `I-X` after `O` or another type starts a new entity (as
 * conlleval does). A chunk whose pieces hold no content (only `▁`, whitespace or zero-width
 * pieces) has no span and is left out.
 *
 * @throws {Error} when tags, offsets and scores differ in length, or for a bad tag
 */
export function decodePieces(
  text: string,
  offsets: readonly PieceOffset[],
  tags: readonly string[] | ArrayLike<number>,
  options: Pick<DecodeOptions, 'scores' | 'scheme'> = {},
): PieceEntity[] {
  if (tags.length !== offsets.length) {
    throw new Error(`${tags.length} tags for ${offsets.length} pieces`);
  }
  const { scores } = options;
  if (scores && scores.length !== offsets.length) {
    throw new Error(`${scores.length} scores for ${offsets.length} pieces`);
  }
  const entities: PieceEntity[] = [];
  for (const chunk of chunkBio(parseTags(tags, options.scheme ?? KMOU_SCHEME))) {
    let first: [number, number] | null = null;
    let last: [number, number] | null = null;
    let sum = 0;
    for (let p = chunk.first; p <= chunk.last; p++) {
      const range = trimRange(text, offsets[p][0], offsets[p][1]);
      if (range[0] < range[1]) {
        first ??= range;
        last = range;
      }
      if (scores) sum += scores[p];
    }
    if (!first || !last) continue;
    entities.push({
      label: chunk.type,
      firstPiece: chunk.first,
      lastPiece: chunk.last,
      start: first[0],
      end: last[1],
      first,
      last,
      score: scores ? sum / (chunk.last - chunk.first + 1) : 1,
    });
  }
  return entities;
}

/**
 * Decodes BIO piece tags into entities with exact UTF-16 offsets into `text`.
 *
 * @param offsets the pieces' `[start, end)` offsets into `text`, as the tokenizer gives them
 * @param tags one tag per piece, as strings (`B-PER`) or label ids in `options.scheme`
 */
export function decodeEntities(
  text: string,
  offsets: readonly PieceOffset[],
  tags: readonly string[] | ArrayLike<number>,
  options: DecodeOptions = {},
): DecodedEntity[] {
  const refine = options.refine ?? true;
  return decodePieces(text, offsets, tags, options).map((piece) => {
    const { start, end } = refine ? refineSpan(text, piece, refine === true ? {} : refine) : piece;
    return { entity: piece.label, text: text.slice(start, end), start, end, score: piece.score };
  });
}
