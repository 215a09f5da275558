/**
 * The bodies of `POST /v1/ner` and `POST /v1/explain`: each shape stated once as a TypeBox
 * schema and read by the same reader as the config files (lib/json-config.ts), so a refusal names
 * the field and says why (quoting a wrong value by its kind, never the value, which may be huge),
 * under a stable error code. The limits, which a server sets at run time, are checked after.
 */
import { Type, type TSchema, type Static } from '@sinclair/typebox';

import { kindOf, readConfig } from '../json-config.js';

/** Limits on what one request may ask for. */
export interface RequestLimits {
  /** Most texts in `texts` (default 256). */
  maxTexts: number;
  /** Most UTF-16 code units in one text (default 100 000). */
  maxTextLength: number;
  /**
   * Most UTF-16 code units in all the texts of one request (default 200 000): what a request
   * costs the model grows with its characters, not with its count of texts.
   */
  maxTotalLength: number;
  /** Largest `nBest` (default 10, at most LIMITS.maxNBest): each path costs a Viterbi pass. */
  maxNBest: number;
  /** Most UTF-16 code units in the text of `/v1/explain` (default 500): its answer grows with
   * the square of the text's length. */
  maxExplainLength: number;
}

/** The defaults of {@link RequestLimits}. */
export const DEFAULT_LIMITS: RequestLimits = {
  maxTexts: 256,
  maxTextLength: 100_000,
  maxTotalLength: 200_000,
  maxNBest: 10,
  maxExplainLength: 500,
};

/** A checked request. */
export interface NerRequest {
  texts: string[];
  /** `{ "text": … }` was sent: answer `{ entities }` rather than `{ results }`. */
  single: boolean;
  nBest: number;
  constrained: boolean;
  withProbabilities: boolean;
}

/** An error that becomes an HTTP answer `{ error: { code, message } }` with this status. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The body of `POST /v1/ner`: one text or a list of them, and the decoding options. */
export const NER_BODY = Type.Object({
  text: Type.Optional(Type.String()),
  texts: Type.Optional(Type.Array(Type.String())),
  nBest: Type.Integer({ minimum: 1, default: 1 }),
  constrained: Type.Boolean({ default: true }),
  withProbabilities: Type.Boolean({ default: false }),
});

const INDICES = Type.Optional(Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }));

/** The body of `POST /v1/explain`. */
export const EXPLAIN_BODY = Type.Object({
  text: Type.String(),
  layers: INDICES,
  heads: INDICES,
  topTags: Type.Optional(Type.Integer({ minimum: 1 })),
  constrained: Type.Boolean({ default: true }),
});

function invalid(message: string): HttpError {
  return new HttpError(400, 'invalid_request', message);
}

/** `body` read against `schema`; a 400 naming the first problem (`"texts"[1] must be …`). */
function readBody<S extends TSchema>(schema: S, body: unknown, example: string): Static<S> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid(`the body must be a JSON object such as ${example}, got ${kindOf(body)}`);
  }
  const read = readConfig(schema, body, { baseDir: '/', quote: 'kind' });
  const issue = read.issues[0];
  // The field quoted as the body names it: `"texts"[1]`.
  if (issue) throw invalid(`${issue.field.replace(/^[^.[]+/, (k) => `"${k}"`)} ${issue.problem}`);
  return read.value;
}

function checkLength(text: string, where: string, maxLength: number): void {
  if (text.length > maxLength) {
    throw new HttpError(
      422,
      'text_too_long',
      `${where} has ${text.length} characters; the limit is ${maxLength}`,
    );
  }
}

/** A checked `POST /v1/explain` body. */
export type ExplainRequest = Static<typeof EXPLAIN_BODY>;

/**
 * Checks a parsed `POST /v1/explain` body: `{ text, layers?, heads?, topTags?, constrained? }`.
 *
 * @throws {HttpError} 400 `invalid_request` for a wrong shape or type, 422 `text_too_long`
 */
export function parseExplainRequest(
  body: unknown,
  limits: RequestLimits = DEFAULT_LIMITS,
): ExplainRequest {
  const b = readBody(EXPLAIN_BODY, body, '{"text": "…"}');
  checkLength(b.text, '"text"', limits.maxExplainLength);
  return b;
}

/**
 * Checks a parsed request body.
 *
 * @throws {HttpError} 400 `invalid_request` for a wrong shape or type (with the field named), 422
 *   `too_many_texts` / `text_too_long` / `request_too_long` / `n_best_too_large` for a request
 *   over the limits
 */
export function parseNerRequest(body: unknown, limits: RequestLimits = DEFAULT_LIMITS): NerRequest {
  const b = readBody(NER_BODY, body, '{"text": "…"}');
  if ((b.text === undefined) === (b.texts === undefined)) {
    throw invalid('send exactly one of "text" (a string) and "texts" (an array of strings)');
  }
  const texts = b.texts ?? [b.text as string];
  if (texts.length > limits.maxTexts) {
    throw new HttpError(
      422,
      'too_many_texts',
      `"texts" has ${texts.length} texts; the limit is ${limits.maxTexts} per request`,
    );
  }
  texts.forEach((t, i) =>
    checkLength(t, b.texts ? `"texts"[${i}]` : '"text"', limits.maxTextLength),
  );
  const total = texts.reduce((n, t) => n + t.length, 0);
  if (b.texts && total > limits.maxTotalLength) {
    throw new HttpError(
      422,
      'request_too_long',
      `"texts" have ${total} characters in all; the limit is ${limits.maxTotalLength} per request`,
    );
  }
  if (b.nBest > limits.maxNBest) {
    throw new HttpError(
      422,
      'n_best_too_large',
      `"nBest" is ${b.nBest}; the limit is ${limits.maxNBest}`,
    );
  }
  return {
    texts,
    single: b.text !== undefined,
    nBest: b.nBest,
    constrained: b.constrained,
    withProbabilities: b.withProbabilities,
  };
}
