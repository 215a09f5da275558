/** Entity spans to BIO labels over tokenizer pieces. */
import type { EntitySpan } from '../corpus/types.js';
import { KMOU_SCHEME, type LabelScheme } from './scheme.js';

/** A piece's UTF-16 offsets `[start, end)` into the text; `start === end` for a zero-width piece. */
export type PieceOffset = readonly [number, number];

/** How entity boundaries met piece boundaries in one or more sentences. */
export interface AlignmentStats {
  entities: number;
  /** Entities whose first piece has content before the entity's content starts (`▁(18` for `18…`). */
  startInsidePiece: number;
  /** Entities whose last piece goes on after the entity's content ends (`일까지` for `…일`). */
  endInsidePiece: number;
  /** Entities with either boundary inside a piece: decoding the labels cannot give their exact span. */
  straddling: number;
  /** Entities that got no piece, because their pieces belong to an earlier entity or none exist. */
  lost: number;
}

/** Labels per piece and the statistics of how well the spans fit the pieces. */
export interface Alignment {
  labels: string[];
  /** Label ids in the scheme. */
  ids: number[];
  stats: AlignmentStats;
}

/** Options for {@link alignEntities}. */
export interface AlignOptions {
  /** Label scheme (default: KMOU's 21 labels); entity labels must be among its types. */
  scheme?: LabelScheme;
}

const WS = /\s/;

/** The range `[start, end)` less whitespace at either end. */
export function trimRange(text: string, start: number, end: number): [number, number] {
  while (start < end && WS.test(text[start])) start++;
  while (end > start && WS.test(text[end - 1])) end--;
  return [start, end];
}

function hasContent(text: string, start: number, end: number): boolean {
  for (let k = start; k < end; k++) if (!WS.test(text[k])) return true;
  return false;
}

/** An all-zero statistics record, to add sentences' statistics into. */
export function emptyAlignmentStats(): AlignmentStats {
  return { entities: 0, startInsidePiece: 0, endInsidePiece: 0, straddling: 0, lost: 0 };
}

/** Adds `more` into `total` and returns `total`. */
export function addAlignmentStats(total: AlignmentStats, more: AlignmentStats): AlignmentStats {
  total.entities += more.entities;
  total.startInsidePiece += more.startInsidePiece;
  total.endInsidePiece += more.endInsidePiece;
  total.straddling += more.straddling;
  total.lost += more.lost;
  return total;
}

/**
 * Labels pieces with BIO tags from entity spans.
 *
 * A piece belongs to an entity when it overlaps the entity's content (its span less leading and
 * trailing whitespace) in at least one non-whitespace character, or lies between two pieces
 * that do; so a `▁` piece or the `▁` of `▁일본` never pulls an entity's start back to the
 * space before it. The entity's first piece is `B-`, the rest `I-`. A piece overlapping two
 * entities stays with the earlier one. A zero-width piece (from a character the normalizer
 * expanded into several pieces, or a bare `▁`) takes the owner of the next piece when that
 * piece starts at the same offset, else of the previous piece when it ends there, else `O`.
 *
 * @param offsets UTF-16 piece offsets into `text`, in text order
 * @param entities sorted, non-overlapping entity spans into `text`
 * @throws {Error} for entities out of order or overlapping, or a label outside the scheme
 */
export function alignEntities(
  text: string,
  offsets: readonly PieceOffset[],
  entities: readonly Pick<EntitySpan, 'start' | 'end' | 'label'>[],
  options: AlignOptions = {},
): Alignment {
  const scheme = options.scheme ?? KMOU_SCHEME;
  const owner = new Array<number>(offsets.length).fill(-1);
  const stats = emptyAlignmentStats();
  let previousEnd = 0;
  entities.forEach((entity, e) => {
    if (entity.start < previousEnd || entity.end < entity.start || entity.end > text.length) {
      throw new Error(
        `entity ${e} [${entity.start}, ${entity.end}) is out of order, overlapping or outside the text`,
      );
    }
    if (!scheme.types.includes(entity.label)) {
      throw new Error(`entity ${e} has label ${JSON.stringify(entity.label)}, not in the scheme`);
    }
    previousEnd = entity.end;
    stats.entities++;
    const [start, end] = trimRange(text, entity.start, entity.end);
    const members: number[] = [];
    offsets.forEach(([a, b], p) => {
      if (a < b && a < end && b > start) members.push(p);
    });
    // Whitespace-only overlap counts only between content pieces.
    const content = (p: number): boolean =>
      hasContent(text, Math.max(offsets[p][0], start), Math.min(offsets[p][1], end));
    while (members.length > 0 && !content(members[0])) members.shift();
    while (members.length > 0 && !content(members[members.length - 1])) members.pop();
    let owned = 0;
    for (const p of members) {
      if (owner[p] < 0) {
        owner[p] = e;
        owned++;
      }
    }
    if (owned === 0) {
      stats.lost++;
      return;
    }
    const [firstStart] = trimRange(text, ...offsets[members[0]]);
    const [, lastEnd] = trimRange(text, ...offsets[members[members.length - 1]]);
    const startInside = firstStart < start;
    const endInside = lastEnd > end;
    if (startInside) stats.startInsidePiece++;
    if (endInside) stats.endInsidePiece++;
    if (startInside || endInside) stats.straddling++;
  });

  followNeighbours(offsets, owner);
  const labels = owner.map((e, p) => {
    if (e < 0) return 'O';
    return `${p > 0 && owner[p - 1] === e ? 'I' : 'B'}-${entities[e].label}`;
  });
  return { labels, ids: labels.map((label) => scheme.label2id[label]), stats };
}

/** Gives each zero-width piece the owner of the piece it sticks to (see {@link alignEntities}). */
function followNeighbours(offsets: readonly PieceOffset[], owner: number[]): void {
  for (let p = 0; p < offsets.length; p++) {
    const [a, b] = offsets[p];
    if (a !== b) continue;
    let next = p + 1;
    while (next < offsets.length && offsets[next][0] === offsets[next][1]) next++;
    let prev = p - 1;
    while (prev >= 0 && offsets[prev][0] === offsets[prev][1]) prev--;
    if (next < offsets.length && offsets[next][0] === a) owner[p] = owner[next];
    else if (prev >= 0 && offsets[prev][1] === a) owner[p] = owner[prev];
    else owner[p] = -1;
  }
}
