/**
 * Morpheme lines → character spans. A KMOU block lists the morphemes of its sentence, one per
 * line (`surface<TAB>lemma<TAB>POS<TAB>BIO`), with a `_` line between eojeols (words). The
 * surfaces are meant to spell the sentence, but a morphological analysis may write a morpheme
 * in a form the text does not contain (했다 as 하 + 였 + 다), so the spans are found by
 * alignment that tolerates such mismatches rather than by adding up lengths.
 *
 * @packageDocumentation
 */
import type { MorphemeSpan } from './types.js';

/** One morpheme line: what the aligner needs of it. */
export interface MorphemeToken {
  surface: string;
  pos: string;
}

/** How morphemes met the text, counted in UTF-16 code units of non-whitespace characters. */
export interface MorphemeAlignmentStats {
  sentences: number;
  /** Non-whitespace code units of the texts. */
  characters: number;
  /** Characters inside a morpheme whose surface equals the text there. */
  exact: number;
  /** Characters given to a morpheme by the fallback rules of {@link alignMorphemes}. */
  fallback: number;
  /** Characters no morpheme covers (an eojeol without morphemes). */
  uncovered: number;
  /** Morphemes that got no character (their eojeol's text was used up before them). */
  dropped: number;
  /** Sentences whose eojeol count differs between text and morpheme lines. */
  eojeolMismatches: number;
}

/** An all-zero statistics record, to add sentences' statistics into. */
export function emptyMorphemeStats(): MorphemeAlignmentStats {
  return {
    sentences: 0,
    characters: 0,
    exact: 0,
    fallback: 0,
    uncovered: 0,
    dropped: 0,
    eojeolMismatches: 0,
  };
}

/** Adds `more` into `total` and returns `total`. */
export function addMorphemeStats(
  total: MorphemeAlignmentStats,
  more: MorphemeAlignmentStats,
): MorphemeAlignmentStats {
  for (const key of Object.keys(total) as (keyof MorphemeAlignmentStats)[]) {
    total[key] += more[key];
  }
  return total;
}

const WS = /\s/;

/**
 * Character spans of morphemes in `text`.
 *
 * Eojeols are walked in step: the text's whitespace-separated words against the morpheme groups
 * (the lines between `_` lines). When their counts differ, the whole sentence is one range and
 * whitespace between morphemes is skipped. Within a range, each morpheme whose surface is the
 * text at the current point takes those characters (exact). A morpheme that does not match is
 * held; the held run ends at the next morpheme whose surface occurs further on, and the
 * characters in between become one span tagged with the held morphemes' tags joined by `+` —
 * the corpus' own notation for a surface that fuses morphemes (했 as `VV+EP` for 하 + 였).
 * Characters left at a range's end go to the held run, or else extend the range's last span.
 * Held morphemes with no character left are dropped. Never throws: mismatches only show in the
 * statistics.
 *
 * @param eojeols morphemes grouped by eojeol, in text order (empty groups are ignored)
 */
export function alignMorphemes(
  text: string,
  eojeols: readonly (readonly MorphemeToken[])[],
): { morphemes: MorphemeSpan[]; stats: MorphemeAlignmentStats } {
  const stats = emptyMorphemeStats();
  stats.sentences = 1;
  for (let k = 0; k < text.length; k++) if (!WS.test(text[k])) stats.characters++;
  const morphemes: MorphemeSpan[] = [];
  const groups = eojeols.filter((group) => group.length > 0);
  if (groups.length === 0) {
    stats.uncovered = stats.characters;
    return { morphemes, stats };
  }
  const words = [...text.matchAll(/\S+/g)].map((m) => [m.index, m.index + m[0].length] as const);
  if (words.length === groups.length) {
    groups.forEach((group, k) =>
      alignRange(text, words[k][0], words[k][1], group, morphemes, stats),
    );
  } else {
    stats.eojeolMismatches = 1;
    alignRange(text, 0, text.length, groups.flat(), morphemes, stats);
  }
  let covered = 0;
  for (const m of morphemes) covered += contentLength(text, m.start, m.end);
  stats.uncovered = stats.characters - covered;
  return { morphemes, stats };
}

/** Aligns `tokens` to `text[from, to)`, appending spans to `out` (see {@link alignMorphemes}). */
function alignRange(
  text: string,
  from: number,
  to: number,
  tokens: readonly MorphemeToken[],
  out: MorphemeSpan[],
  stats: MorphemeAlignmentStats,
): void {
  const first = out.length;
  let pos = from;
  let held: MorphemeToken[] = [];
  const skipSpace = (): void => {
    while (pos < to && WS.test(text[pos])) pos++;
  };
  const matchesAt = (surface: string, at: number): boolean =>
    at + surface.length <= to && text.startsWith(surface, at);
  const emit = (start: number, end: number, tag: string, exact: boolean): void => {
    while (end > start && WS.test(text[end - 1])) end--;
    if (end <= start) return;
    out.push({ start, end, pos: tag });
    const length = contentLength(text, start, end);
    if (exact) stats.exact += length;
    else stats.fallback += length;
  };
  const joinedTags = (): string => held.map((t) => t.pos).join('+');

  for (const token of tokens) {
    skipSpace();
    if (matchesAt(token.surface, pos)) {
      // Held morphemes before a match at the very same point have no character of their own.
      stats.dropped += held.length;
      held = [];
      emit(pos, pos + token.surface.length, token.pos, true);
      pos += token.surface.length;
      continue;
    }
    if (held.length > 0) {
      let at = text.indexOf(token.surface, pos + 1);
      if (at >= 0 && !matchesAt(token.surface, at)) at = -1;
      if (at >= 0) {
        emit(pos, at, joinedTags(), false);
        held = [];
        emit(at, at + token.surface.length, token.pos, true);
        pos = at + token.surface.length;
        continue;
      }
    }
    held.push(token);
  }
  skipSpace();
  if (pos >= to) {
    stats.dropped += held.length;
  } else if (held.length > 0) {
    emit(pos, to, joinedTags(), false);
  } else if (out.length > first) {
    // Text the morphemes never spelled belongs to the last morpheme of the eojeol.
    const last = out[out.length - 1];
    let end = to;
    while (end > pos && WS.test(text[end - 1])) end--;
    stats.fallback += contentLength(text, last.end, end);
    last.end = end;
  }
}

function contentLength(text: string, start: number, end: number): number {
  let n = 0;
  for (let k = start; k < end; k++) if (!WS.test(text[k])) n++;
  return n;
}
