/**
 * The data of the explain view: what `koner explain` embeds in its HTML file and what
 * `POST /v1/explain` answers, one JSON shape for both, read by the one renderer in render.ts.
 */
import type { Explanation, NerEntity } from '../model/ner-model.js';

/** A tag and its probability. */
export interface TagProbability {
  tag: string;
  p: number;
}

/** A token of the view: `[CLS]`, a piece or `[SEP]`, with its tag and its likeliest tags. */
export interface ViewToken {
  piece: string;
  /** UTF-16 offsets into the text. */
  start: number;
  end: number;
  /** The best path's tag. */
  tag: string;
  /** The likeliest tags, most probable first (CRF marginals). */
  top: TagProbability[];
}

/** What the renderer draws. JSON as is. */
export interface ExplainView {
  text: string;
  /** The model's name (its directory's base name), shown in the header. */
  model?: string;
  tokens: ViewToken[];
  entities: NerEntity[];
  /** The layers and heads of `attention`, by their index in the model. */
  layers: number[];
  heads: number[];
  /**
   * Base64 of little-endian float32 `[layers][heads][N][N]` (N tokens): row q of a map is how
   * token q spreads its attention over the tokens.
   */
  attention: string;
}

/** How many likeliest tags each token keeps by default. */
export const DEFAULT_TOP_TAGS = 5;

/** The view of an explanation: each token's `topTags` likeliest tags, the maps in base64. */
export function explainView(
  explanation: Explanation,
  options: { topTags?: number; model?: string } = {},
): ExplainView {
  const topTags = options.topTags ?? DEFAULT_TOP_TAGS;
  if (!Number.isInteger(topTags) || topTags < 1) {
    throw new RangeError(`topTags must be a positive integer, got ${String(options.topTags)}`);
  }
  const { labels, marginals, tokens, tags, attentions } = explanation;
  const K = labels.length;
  const viewTokens = tokens.map((t, q) => {
    const row = marginals.subarray(q * K, (q + 1) * K);
    const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b);
    const top = order.slice(0, topTags).map((k) => ({ tag: labels[k], p: row[k] }));
    return { piece: t.piece, start: t.start, end: t.end, tag: tags[q], top };
  });
  const maps = attentions.flat();
  const size = maps.reduce((n, m) => n + m.length, 0);
  const bytes = new DataView(new ArrayBuffer(size * 4));
  let at = 0;
  for (const map of maps) {
    for (const x of map) {
      bytes.setFloat32(at, x, true);
      at += 4;
    }
  }
  return {
    text: explanation.text,
    ...(options.model === undefined ? {} : { model: options.model }),
    tokens: viewTokens,
    entities: explanation.entities,
    layers: explanation.layers,
    heads: explanation.heads,
    attention: Buffer.from(bytes.buffer).toString('base64'),
  };
}
