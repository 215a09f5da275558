/**
 * Boundary refinement on decode. A piece can hold both the end of an entity and what follows
 * it (`일까지` in `<13일:DAT>까지`), or what precedes it and its start (`▁(18` in
 * `(<1867~1916:DUR>)`), so whole-piece spans miss about one entity in ten. Refinement cuts
 * such a first or last piece where the training data says entities of that type are cut,
 * and otherwise where a general rule says so: a particle/ending from {@link JOSA} or
 * punctuation that the entity's own brackets and quotes do not need.
 */
import { REFINE_TABLE } from './refine-table.js';

/**
 * Training evidence for one cut, `[label, key, cut, seen]`: of `seen` entities whose edge piece
 * offered this cut, `cut` were really cut there.
 */
export type RefineEntry = readonly [label: string, key: string, cut: number, seen: number];

/** Learned cut statistics (see `scripts/fixtures/labels_refine_table.ts`). */
export interface RefineTable {
  /** Evidence below this count is ignored and the general rules decide. */
  readonly minSeen: number;
  /** Keyed by the suffix cut off an entity's last piece. */
  readonly end: readonly RefineEntry[];
  /** Keyed by the character before the cut, a tab, and the suffix; consulted first. */
  readonly endContext: readonly RefineEntry[];
  /** Keyed by the prefix cut off an entity's first piece. */
  readonly start: readonly RefineEntry[];
}

/** Options for {@link refineSpan}. */
export interface RefineOptions {
  /**
   * Learned statistics (default: the table generated from the KMOU training split); `null` for
   * the general rules only.
   */
  table?: RefineTable | null;
  /** Apply the general rules where the table has too little evidence (default true). */
  fallback?: boolean;
}

/** What refinement needs to know of a decoded entity (a `PieceEntity` fits). */
export interface RefineInput {
  label: string;
  start: number;
  end: number;
  /** Content range of the entity's first and last piece. */
  first: readonly [number, number];
  last: readonly [number, number];
}

/** Common particles (josa) and endings that glue onto a noun, longest first where it matters. */
export const JOSA: readonly string[] = [
  '에서부터',
  '에서는',
  '으로는',
  '으로도',
  '에게서',
  '까지는',
  '부터는',
  '에서도',
  '께서는',
  '이라는',
  '이라고',
  '까지',
  '에서',
  '에게',
  '한테',
  '으로',
  '부터',
  '에는',
  '에도',
  '에만',
  '께서',
  '보다',
  '처럼',
  '만큼',
  '이나',
  '이며',
  '이고',
  '이다',
  '이었',
  '라는',
  '라고',
  '로는',
  '로도',
  '와는',
  '과는',
  '만에',
  '에',
  '로',
  '은',
  '는',
  '이',
  '가',
  '을',
  '를',
  '의',
  '와',
  '과',
  '도',
  '만',
  '께',
  '나',
];

const JOSA_SET = new Set(JOSA);
/** Closing brackets and quotes, and punctuation that ends a clause. */
const TRAILING = /^[\p{Pe}\p{Pf}"'＂＇,，;:!?！？]+$/u;
/** Opening brackets and quotes, and the dashes and tildes of ranges. */
const LEADING = /^[\p{Ps}\p{Pi}"'＂＇~～\-–—－]+$/u;
const PAIRS: Readonly<Record<string, string>> = {
  '(': ')',
  '[': ']',
  '{': '}',
  '<': '>',
  '（': '）',
  '［': '］',
  '｛': '｝',
  '〈': '〉',
  '《': '》',
  '「': '」',
  '『': '』',
  '【': '】',
  '〔': '〕',
  '‘': '’',
  '“': '”',
};
const CLOSER_OF = new Map(Object.entries(PAIRS));
const OPENER_OF = new Map(Object.entries(PAIRS).map(([open, close]) => [close, open]));

function count(text: string, char: string): number {
  let n = 0;
  for (const c of text) if (c === char) n++;
  return n;
}

/** Whether removing `removed` would leave a bracket or quote in `kept` without its partner. */
function neededBy(kept: string, removed: string): boolean {
  for (const c of removed) {
    const opener = OPENER_OF.get(c);
    if (opener !== undefined && count(kept, opener) > count(kept, c)) return true;
    const closer = CLOSER_OF.get(c);
    if (closer !== undefined && count(kept, closer) > count(kept, c)) return true;
    if ((c === '"' || c === "'") && count(kept, c) % 2 === 1) return true;
  }
  return false;
}

/** The general rule for cutting `suffix` off the end of an entity that keeps `kept`. */
export function fallbackEnd(kept: string, suffix: string): boolean {
  if (JOSA_SET.has(suffix)) return true;
  const punct = /[^\p{L}\p{N}]+$/u.exec(suffix)?.[0] ?? '';
  const word = suffix.slice(0, suffix.length - punct.length);
  if (punct === '' || !TRAILING.test(punct) || !(word === '' || JOSA_SET.has(word))) return false;
  return !neededBy(kept, punct);
}

/** The general rule for cutting `prefix` off the start of an entity that keeps `kept`. */
export function fallbackStart(prefix: string, kept: string): boolean {
  return LEADING.test(prefix) && !neededBy(kept, prefix);
}

/**
 * Offsets where the end of the entity may be cut: inside its last piece, keeping at least one
 * of that piece's characters; ascending, so the longest suffix comes first.
 */
export function endCandidates(span: RefineInput): number[] {
  const cuts: number[] = [];
  for (let k = Math.max(span.last[0], span.start) + 1; k < span.last[1]; k++) cuts.push(k);
  return span.last[1] === span.end ? cuts : [];
}

/** Offsets where the start of the entity may be cut: inside its first piece, before `end`. */
export function startCandidates(span: RefineInput, end: number = span.end): number[] {
  const cuts: number[] = [];
  if (span.first[0] !== span.start) return cuts;
  for (let k = span.first[0] + 1; k < Math.min(span.first[1], end); k++) cuts.push(k);
  return cuts;
}

interface Evidence {
  cut: number;
  seen: number;
}
interface Compiled {
  minSeen: number;
  end: Map<string, Evidence>;
  endContext: Map<string, Evidence>;
  start: Map<string, Evidence>;
}

const compiled = new WeakMap<RefineTable, Compiled>();

function compile(table: RefineTable): Compiled {
  let result = compiled.get(table);
  if (!result) {
    const toMap = (entries: readonly RefineEntry[]): Map<string, Evidence> =>
      new Map(entries.map(([label, key, cut, seen]) => [`${label}\t${key}`, { cut, seen }]));
    result = {
      minSeen: table.minSeen,
      end: toMap(table.end),
      endContext: toMap(table.endContext),
      start: toMap(table.start),
    };
    compiled.set(table, result);
  }
  return result;
}

/**
 * A cut's score: the learned share of real cuts (above one half to cut) from the first entry
 * with enough evidence, 0 for a general-rule cut, `null` for no cut.
 */
function decide(
  evidence: readonly (Evidence | undefined)[],
  minSeen: number,
  fallback: () => boolean,
): number | null {
  for (const e of evidence) {
    if (e && e.seen >= minSeen) return 2 * e.cut > e.seen ? e.cut / e.seen : null;
  }
  return fallback() ? 0 : null;
}

/**
 * Refines a decoded entity's boundaries (see the module comment). Never empties the entity;
 * never moves a boundary that is not inside a piece. Among possible cuts, the one with the
 * best learned share wins, then the longer cut; general-rule cuts come after learned ones.
 */
export function refineSpan(
  text: string,
  span: RefineInput,
  options: RefineOptions = {},
): { start: number; end: number } {
  const table = options.table === undefined ? REFINE_TABLE : options.table;
  const useFallback = options.fallback ?? true;
  const learned = table ? compile(table) : null;
  const minSeen = learned?.minSeen ?? Infinity;
  const { label } = span;

  let end = span.end;
  let best: [number, number] | null = null;
  for (const k of endCandidates(span)) {
    const suffix = text.slice(k, span.end);
    const score = decide(
      [
        learned?.endContext.get(`${label}\t${text[k - 1]}\t${suffix}`),
        learned?.end.get(`${label}\t${suffix}`),
      ],
      minSeen,
      () => useFallback && fallbackEnd(text.slice(span.start, k), suffix),
    );
    if (score !== null && (!best || score > best[0])) best = [score, k];
  }
  if (best) end = best[1];

  let start = span.start;
  best = null;
  for (const k of startCandidates(span, end)) {
    const prefix = text.slice(span.start, k);
    const score = decide(
      [learned?.start.get(`${label}\t${prefix}`)],
      minSeen,
      () => useFallback && fallbackStart(prefix, text.slice(k, end)),
    );
    // Ascending cuts with a strict comparison keep the shorter prefix on ties: unlike a
    // suffix, a longer prefix is rarely all junk.
    if (score !== null && (!best || score > best[0])) best = [score, k];
  }
  if (best) start = best[1];
  return { start, end };
}
