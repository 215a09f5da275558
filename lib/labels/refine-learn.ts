/** Learns the refinement table from gold-annotated, tokenized sentences. */
import type { EntitySpan } from '../corpus/types.js';
import { alignEntities, trimRange, type PieceOffset } from './align.js';
import { decodePieces } from './decode.js';
import {
  endCandidates,
  fallbackEnd,
  fallbackStart,
  startCandidates,
  type RefineEntry,
  type RefineTable,
} from './refine.js';
import { KMOU_SCHEME, type LabelScheme } from './scheme.js';

/** A tokenized sentence with its gold entities. */
export interface RefineSample {
  text: string;
  offsets: readonly PieceOffset[];
  entities: readonly Pick<EntitySpan, 'start' | 'end' | 'label'>[];
}

/** Options for {@link learnRefineTable}. */
export interface LearnRefineOptions {
  /** Least evidence for a learned decision (default 2). */
  minSeen?: number;
  scheme?: LabelScheme;
}

type Counts = Map<string, { label: string; key: string; cut: number; seen: number }>;

function bump(counts: Counts, label: string, key: string, cut: boolean): void {
  const id = `${label}\t${key}`;
  let entry = counts.get(id);
  if (!entry) counts.set(id, (entry = { label, key, cut: 0, seen: 0 }));
  entry.seen++;
  if (cut) entry.cut++;
}

const trims = (e: { cut: number; seen: number }): boolean => 2 * e.cut > e.seen;

/**
 * Counts, for every cut that refinement could make in a decoded entity's first or last piece,
 * how often the gold entity is really cut there. Gold spans go through the same alignment
 * and decoding as predictions would, so the evidence is exactly what refinement sees.
 *
 * Only decisions that matter are kept: learned cuts, and learned refusals where a general
 * rule would otherwise cut; the rest the general rules decide the same way.
 */
export function learnRefineTable(
  samples: Iterable<RefineSample>,
  options: LearnRefineOptions = {},
): RefineTable {
  const minSeen = options.minSeen ?? 2;
  const scheme = options.scheme ?? KMOU_SCHEME;
  const end: Counts = new Map();
  const endContext: Counts = new Map();
  const start: Counts = new Map();
  for (const { text, offsets, entities } of samples) {
    const { labels } = alignEntities(text, offsets, entities, { scheme });
    const gold = entities.map((e) => ({ label: e.label, range: trimRange(text, e.start, e.end) }));
    for (const piece of decodePieces(text, offsets, labels, { scheme })) {
      const matches = gold.filter(
        ({ label, range }) =>
          label === piece.label && piece.start <= range[0] && range[1] <= piece.end,
      );
      if (matches.length !== 1) continue;
      const [goldStart, goldEnd] = matches[0].range;
      for (const k of endCandidates(piece)) {
        const suffix = text.slice(k, piece.end);
        bump(end, piece.label, suffix, k === goldEnd);
        bump(endContext, piece.label, `${text[k - 1]}\t${suffix}`, k === goldEnd);
      }
      for (const k of startCandidates(piece)) {
        bump(start, piece.label, text.slice(piece.start, k), k === goldStart);
      }
    }
  }

  const keep = (counts: Counts, useful: (label: string, key: string, trim: boolean) => boolean) =>
    [...counts.values()]
      .filter((e) => e.seen >= minSeen && useful(e.label, e.key, trims(e)))
      .sort((a, b) => compare(a.label, b.label) || compare(a.key, b.key))
      .map((e): RefineEntry => [e.label, e.key, e.cut, e.seen]);
  // A context entry matters where it decides otherwise than the suffix-level entry, or, with
  // no such entry, where it cuts or where the general rule might.
  const contextMatters = (label: string, key: string, trim: boolean): boolean => {
    const suffix = key.slice(key.indexOf('\t') + 1);
    const e = end.get(`${label}\t${suffix}`);
    return e && e.seen >= minSeen ? trim !== trims(e) : trim || fallbackEnd('', suffix);
  };
  return {
    minSeen,
    end: keep(end, (_label, suffix, trim) => trim || fallbackEnd('', suffix)),
    endContext: keep(endContext, contextMatters),
    start: keep(start, (_label, prefix, trim) => trim || fallbackStart(prefix, '')),
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
