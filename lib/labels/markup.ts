/**
 * The KMOU inline markup `<text:TAG>`: reading it against the raw sentence, and writing it.
 *
 * The markup line is the raw line plus an inserted `<` before each entity and `:TAG>` after
 * it. Raw text may itself contain `<`, `>` and `:`, so the markup is aligned against the raw
 * line rather than scanned for brackets.
 */
import type { EntitySpan } from '../corpus/types.js';
import { ENTITY_TYPES } from './scheme.js';

/** Markup that cannot be aligned with its raw text. */
export class MarkupError extends Error {
  constructor(
    /** 0-based index into the markup string where the problem was found. */
    readonly index: number,
    readonly reason: string,
  ) {
    super(`${reason} (markup column ${index + 1})`);
    this.name = 'MarkupError';
  }
}

/** Options for {@link parseMarkup}. */
export interface ParseMarkupOptions {
  /** Entity types a `:TAG>` may name (default: the ten KMOU types). */
  types?: readonly string[];
}

/** One alignment state: how far into the raw text, and the entity being read, if any. */
interface Node {
  /** Raw offset reached. */
  i: number;
  /** Raw offset where the open entity starts; -1 outside an entity. */
  open: number;
  /** Markup index of the `<` that opened the entity. */
  openAt: number;
  /** Literal `<` minus literal `>` inside the open entity. */
  net: number;
  /** Unbalanced brackets in the entities closed so far: the tie-break between readings. */
  cost: number;
  /** Readings of least cost that reach this state, capped at 2. */
  ways: number;
  prev: Node | null;
  /** The entity that the step into this node closed. */
  closed: { start: number; end: number; label: string } | null;
}

/**
 * Aligns a markup line against its raw line and returns the entities, with offsets into `raw`.
 *
 * Where a literal `<` makes two readings possible (`<<2>:NOH>` is the entity `<2>`, and
 * `<<트럼보:POH>>` is `트럼보` in brackets), the reading whose entities leave the fewest angle
 * brackets unbalanced wins; a tie that remains is reported as ambiguous rather than guessed.
 *
 * @throws {MarkupError} when the markup is not the raw text plus `<` and `:TAG>` insertions, names
 *   an unknown tag, leaves a `<` open, has an empty entity or is ambiguous.
 */
export function parseMarkup(
  raw: string,
  markup: string,
  options: ParseMarkupOptions = {},
): EntitySpan[] {
  const types = options.types ?? ENTITY_TYPES;
  const closers = types.map((type) => ({ type, token: `:${type}>` }));
  const size = markup.length;
  // Every step consumes markup, so states are visited in order of markup index.
  const buckets: (Node[] | undefined)[] = new Array<Node[] | undefined>(size + 1);
  const push = (j: number, node: Node): void => {
    const bucket = (buckets[j] ??= []);
    const same = bucket.find((n) => n.i === node.i && n.open === node.open && n.net === node.net);
    if (!same) bucket.push(node);
    else if (node.cost < same.cost) Object.assign(same, node);
    else if (node.cost === same.cost) same.ways = Math.min(2, same.ways + node.ways);
  };
  push(0, { i: 0, open: -1, openAt: -1, net: 0, cost: 0, ways: 1, prev: null, closed: null });

  let furthest = 0;
  for (let j = 0; j < size; j++) {
    const bucket = buckets[j];
    if (!bucket) continue;
    furthest = j;
    const c = markup[j];
    for (const node of bucket) {
      const inside = node.open >= 0;
      if (node.i < raw.length && raw[node.i] === c) {
        const net = inside ? node.net + (c === '<' ? 1 : c === '>' ? -1 : 0) : 0;
        push(j + 1, { ...node, i: node.i + 1, net, prev: node, closed: null });
      }
      if (c === '<' && !inside) {
        push(j + 1, { ...node, open: node.i, openAt: j, net: 0, prev: node, closed: null });
      }
      if (c === ':' && inside && node.i > node.open) {
        for (const { type, token } of closers) {
          if (!markup.startsWith(token, j)) continue;
          push(j + token.length, {
            ...node,
            open: -1,
            openAt: -1,
            net: 0,
            cost: node.cost + Math.abs(node.net),
            prev: node,
            closed: { start: node.open, end: node.i, label: type },
          });
        }
      }
    }
  }

  const last = buckets[size] ?? [];
  const end = last.find((n) => n.i === raw.length && n.open < 0);
  if (!end) throw diagnose(raw, markup, types, last, buckets[furthest] ?? [], furthest);
  if (end.ways > 1) {
    throw new MarkupError(0, 'ambiguous markup: more than one reading fits the raw text equally');
  }
  const entities: EntitySpan[] = [];
  for (let node: Node | null = end; node; node = node.prev) {
    if (node.closed)
      entities.push({ ...node.closed, text: raw.slice(node.closed.start, node.closed.end) });
  }
  return entities.reverse();
}

/** Explains why no reading reached the end, from the states that got furthest. */
function diagnose(
  raw: string,
  markup: string,
  types: readonly string[],
  last: readonly Node[],
  stuck: readonly Node[],
  furthest: number,
): MarkupError {
  if (last.length > 0) {
    const open = last.find((n) => n.open >= 0);
    if (open) return new MarkupError(open.openAt, "'<' is never closed by ':TAG>'");
    const short = last.reduce((a, b) => (b.i > a.i ? b : a));
    return new MarkupError(
      markup.length,
      `markup ends before the raw text does (raw continues with ${quote(raw.slice(short.i))})`,
    );
  }
  const rest = markup.slice(furthest);
  const inside = stuck.filter((n) => n.open >= 0);
  const tag = /^:([^\s:<>]*)>/.exec(rest);
  if (tag && !types.includes(tag[1])) {
    return new MarkupError(
      furthest,
      `unknown tag ${quote(tag[1])} (expected one of ${types.join(' ')})`,
    );
  }
  if (tag && inside.length === 0) {
    return new MarkupError(furthest, `${quote(tag[0])} has no opening '<'`);
  }
  if (tag && inside.every((n) => n.i === n.open)) {
    return new MarkupError(furthest, 'empty entity');
  }
  if (rest.startsWith('<') && inside.length === stuck.length) {
    return new MarkupError(
      furthest,
      `'<' inside the entity opened at markup column ${inside[0].openAt + 1} (missing ':TAG>'?)`,
    );
  }
  const best = stuck.reduce((a, b) => (b.i > a.i ? b : a));
  return new MarkupError(
    furthest,
    `markup does not match the raw text: markup has ${quote(rest)}, raw has ${quote(raw.slice(best.i))}`,
  );
}

function quote(text: string): string {
  return JSON.stringify(text.length > 24 ? `${text.slice(0, 24)}…` : text);
}

/** The fields of an entity that markup needs. */
export type MarkupEntity = Pick<EntitySpan, 'start' | 'end' | 'label'>;

/**
 * Renders a sentence as KMOU markup: the text with `<` before and `:TAG>` after each entity.
 *
 * @throws {Error} when entities are out of order, overlap, are empty or fall outside the text,
 *   since such markup could not be read back.
 */
export function renderMarkup(sentence: {
  text: string;
  entities: readonly MarkupEntity[];
}): string {
  const { text } = sentence;
  let out = '';
  let pos = 0;
  for (const entity of sentence.entities) {
    if (!(entity.start >= pos && entity.end > entity.start && entity.end <= text.length)) {
      throw new Error(
        `cannot render entity [${entity.start}, ${entity.end}) ${entity.label}: entities must be non-empty, sorted, non-overlapping and inside the text (length ${text.length})`,
      );
    }
    out += `${text.slice(pos, entity.start)}<${text.slice(entity.start, entity.end)}:${entity.label}>`;
    pos = entity.end;
  }
  return out + text.slice(pos);
}
