/**
 * The bodies of `POST /v1/ner` and `POST /v1/explain`, checked by hand rather than by a JSON schema so every refusal says
 * in plain words which field is wrong and why, under a stable error code.
 */

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

const FIELDS = new Set(['text', 'texts', 'nBest', 'constrained', 'withProbabilities']);

const EXPLAIN_FIELDS = new Set(['text', 'layers', 'heads', 'topTags', 'constrained']);

function invalid(message: string): HttpError {
  return new HttpError(400, 'invalid_request', message);
}

/** What a value is, in words; never the value itself, which may be huge or nested deep. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function checkText(text: unknown, where: string, maxLength: number): string {
  if (typeof text !== 'string') throw invalid(`${where} must be a string, got ${describe(text)}`);
  if (text.length > maxLength) {
    throw new HttpError(
      422,
      'text_too_long',
      `${where} has ${text.length} characters; the limit is ${maxLength}`,
    );
  }
  return text;
}

function optionalBoolean(body: Record<string, unknown>, field: string, fallback: boolean): boolean {
  const value = body[field];
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw invalid(`"${field}" must be true or false, got ${describe(value)}`);
  }
  return value;
}

function checkObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid(`the body must be a JSON object such as {"text": "…"}, got ${describe(body)}`);
  }
  return body as Record<string, unknown>;
}

function checkFields(body: Record<string, unknown>, fields: Set<string>): void {
  for (const field of Object.keys(body)) {
    // A misspelt option (`nbest`) would otherwise be ignored without a word.
    if (!fields.has(field)) {
      throw invalid(`unknown field "${field}" (expected ${[...fields].join(', ')})`);
    }
  }
}

function optionalIndices(body: Record<string, unknown>, field: string): number[] | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    !value.every((v) => typeof v === 'number' && Number.isInteger(v) && v >= 0)
  ) {
    throw invalid(`"${field}" must be a non-empty array of non-negative integers`);
  }
  return value as number[];
}

/** A checked `POST /v1/explain` body. */
export interface ExplainRequest {
  text: string;
  layers?: number[];
  heads?: number[];
  topTags?: number;
  constrained: boolean;
}

/**
 * Checks a parsed `POST /v1/explain` body: `{ text, layers?, heads?, topTags?, constrained? }`.
 *
 * @throws {HttpError} 400 `invalid_request` for a wrong shape or type, 422 `text_too_long`
 */
export function parseExplainRequest(
  body: unknown,
  limits: RequestLimits = DEFAULT_LIMITS,
): ExplainRequest {
  const b = checkObject(body);
  checkFields(b, EXPLAIN_FIELDS);
  const text = checkText(b.text, '"text"', limits.maxExplainLength);
  const topTags = b.topTags;
  if (
    topTags !== undefined &&
    (typeof topTags !== 'number' || !Number.isInteger(topTags) || topTags < 1)
  ) {
    throw invalid(`"topTags" must be a positive integer`);
  }
  return {
    text,
    layers: optionalIndices(b, 'layers'),
    heads: optionalIndices(b, 'heads'),
    topTags: topTags as number | undefined,
    constrained: optionalBoolean(b, 'constrained', true),
  };
}

/**
 * Checks a parsed request body.
 *
 * @throws {HttpError} 400 `invalid_request` for a wrong shape or type (with the field named), 422
 *   `too_many_texts` / `text_too_long` / `request_too_long` / `n_best_too_large` for a request
 *   over the limits
 */
export function parseNerRequest(body: unknown, limits: RequestLimits = DEFAULT_LIMITS): NerRequest {
  const b = checkObject(body);
  checkFields(b, FIELDS);
  const hasText = b.text !== undefined;
  const hasTexts = b.texts !== undefined;
  if (hasText === hasTexts) {
    throw invalid('send exactly one of "text" (a string) and "texts" (an array of strings)');
  }
  let texts: string[];
  if (hasText) {
    texts = [checkText(b.text, '"text"', limits.maxTextLength)];
  } else {
    if (!Array.isArray(b.texts)) {
      throw invalid(`"texts" must be an array of strings, got ${describe(b.texts)}`);
    }
    if (b.texts.length > limits.maxTexts) {
      throw new HttpError(
        422,
        'too_many_texts',
        `"texts" has ${b.texts.length} texts; the limit is ${limits.maxTexts} per request`,
      );
    }
    texts = b.texts.map((t: unknown, i) => checkText(t, `"texts"[${i}]`, limits.maxTextLength));
    const total = texts.reduce((n, t) => n + t.length, 0);
    if (total > limits.maxTotalLength) {
      throw new HttpError(
        422,
        'request_too_long',
        `"texts" have ${total} characters in all; the limit is ${limits.maxTotalLength} per request`,
      );
    }
  }
  let nBest = 1;
  if (b.nBest !== undefined) {
    if (typeof b.nBest !== 'number' || !Number.isInteger(b.nBest) || b.nBest < 1) {
      const got = typeof b.nBest === 'number' ? String(b.nBest) : describe(b.nBest);
      throw invalid(`"nBest" must be a positive integer, got ${got}`);
    }
    if (b.nBest > limits.maxNBest) {
      throw new HttpError(
        422,
        'n_best_too_large',
        `"nBest" is ${b.nBest}; the limit is ${limits.maxNBest}`,
      );
    }
    nBest = b.nBest;
  }
  return {
    texts,
    single: hasText,
    nBest,
    constrained: optionalBoolean(b, 'constrained', true),
    withProbabilities: optionalBoolean(b, 'withProbabilities', false),
  };
}
