/**
 * The HTTP API (fastify): `POST /v1/ner`, `POST /v1/explain`, `GET /healthz` and the demo page at
 * `GET /`. Texts of
 * concurrent requests are batched into shared model calls by a {@link MicroBatcher}.
 */
import { STATUS_CODES } from 'node:http';
import path from 'node:path';
import type { Duplex } from 'node:stream';

import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';

import { explainView } from '../explain/view.js';
import { LIMITS } from '../limits.js';
import type {
  ExplainOptions,
  Explanation,
  NerEntity,
  NerPath,
  PredictOptions,
} from '../model/ner-model.js';
import { BatcherClosedError, MicroBatcher, QueueFullError } from './batcher.js';
import { PAGE_HTML } from './page.js';
import {
  DEFAULT_LIMITS,
  HttpError,
  parseExplainRequest,
  parseNerRequest,
  type RequestLimits,
} from './request.js';

/**
 * What the server needs of a model: `NerModel` is one. Tests and wrappers (a model that counts
 * its calls, say) can pass their own.
 */
export interface NerPredictor {
  readonly labels: readonly string[];
  /** Where the model runs, for `/healthz`. */
  readonly placement: { device: string; dtype: string };
  /** The model directory, whose base name `/healthz` reports. */
  readonly dir?: string;
  readonly config?: { head: string; maxPositionEmbeddings: number };
  predict(texts: string[], options: PredictOptions): Promise<NerEntity[][]>;
  predictPaths(texts: string[], nBest: number, options: PredictOptions): Promise<NerPath[][]>;
  /** For `POST /v1/explain` (answered 501 `not_implemented` without it). */
  explain?(text: string, options: ExplainOptions): Promise<Explanation>;
}

/** Options of {@link createServer}. */
export interface ServerOptions extends Partial<RequestLimits> {
  /** Most texts in one model call (default 32). */
  maxBatch?: number;
  /** How long a text may wait for others to share its model call, in ms (default 5). */
  maxWaitMs?: number;
  /** Most texts waiting for the model before requests get 503 `overloaded` (default 4096). */
  maxQueue?: number;
  /** Largest request body in bytes (default 1 MiB); larger ones get 413. */
  bodyLimit?: number;
  /** How long a request may take to arrive, headers and body, in ms (default 30 000); then 408. */
  requestTimeoutMs?: number;
  /**
   * Texts longer than this many characters (default 1,000) go through a lane of their own, a few
   * windows per model call, so that a heavy request never holds up the light ones behind it.
   */
  heavyTextLength?: number;
  /** Receives errors that became a 500 answer (default: none; the CLI prints them). */
  onError?: (error: unknown) => void;
}

/** One text's answer. `paths` only when `nBest` > 1. */
export interface NerResult {
  entities: NerEntity[];
  paths?: NerPath[];
}

/** A server made by {@link createServer}. */
export interface NerServer {
  /** The fastify instance (`app.inject` runs a request without a socket). */
  readonly app: FastifyInstance;
  /** The batcher between requests and the model; `batcher.stats` counts model calls. */
  readonly batcher: MicroBatcher<string, NerResult>;
  /** The lane of texts longer than `heavyTextLength`: one text per batch, one batch at a time. */
  readonly heavy: MicroBatcher<string, NerResult>;
  /** Starts listening (default 127.0.0.1:8080; port 0 picks a free one); resolves with the URL. */
  listen(options?: { port?: number; host?: string }): Promise<string>;
  /** Stops accepting, answers the requests in progress, then resolves. */
  close(): Promise<void>;
}

interface BatchOptions {
  nBest: number;
  constrained: boolean;
  withProbabilities: boolean;
}

/** The client closed its connection before its answer: its work was dropped. */
class ClientGoneError extends Error {
  constructor() {
    super('the client closed the connection');
    this.name = 'ClientGoneError';
  }
}

/** Sequences per model call in the heavy lane: each call stays short, so light calls interleave. */
const HEAVY_BATCH = 4;

/**
 * Builds the HTTP server around a loaded model (not yet listening).
 *
 * Every refusal is JSON `{ error: { code, message } }`: 400 `invalid_json` / `invalid_request` /
 * `bad_request`, 404 `not_found`, 408 `request_timeout`, 413 `payload_too_large`, 415
 * `unsupported_media_type`, 422 `too_many_texts` / `text_too_long` / `request_too_long` /
 * `n_best_too_large` / `out_of_range`, 431 `headers_too_large`, 501 `not_implemented`, 503
 * `overloaded` / `shutting_down`, 500 `internal_error`.
 */
export function createServer(model: NerPredictor, options: ServerOptions = {}): NerServer {
  const limits: RequestLimits = {
    maxTexts: options.maxTexts ?? DEFAULT_LIMITS.maxTexts,
    maxTextLength: options.maxTextLength ?? DEFAULT_LIMITS.maxTextLength,
    maxTotalLength: options.maxTotalLength ?? DEFAULT_LIMITS.maxTotalLength,
    maxNBest: options.maxNBest ?? DEFAULT_LIMITS.maxNBest,
    maxExplainLength: options.maxExplainLength ?? DEFAULT_LIMITS.maxExplainLength,
  };
  if (!(
    Number.isInteger(limits.maxNBest) &&
    limits.maxNBest >= 1 &&
    limits.maxNBest <= LIMITS.maxNBest
  )) {
    throw new RangeError(`maxNBest must be an integer from 1 to ${LIMITS.maxNBest}`);
  }
  const maxBatch = options.maxBatch ?? 32;
  const heavyTextLength = options.heavyTextLength ?? 1000;
  const requestTimeout = options.requestTimeoutMs ?? 30_000;
  const runner =
    (batchSize: number) =>
    async (key: string, texts: string[], signal: AbortSignal): Promise<NerResult[]> => {
      const { nBest, constrained, withProbabilities } = JSON.parse(key) as BatchOptions;
      const predictOptions: PredictOptions = { batchSize, constrained, withProbabilities, signal };
      if (nBest === 1) {
        const entities = await model.predict(texts, predictOptions);
        return entities.map((e) => ({ entities: e }));
      }
      const paths = await model.predictPaths(texts, nBest, predictOptions);
      return paths.map((p) => ({ entities: p[0]?.entities ?? [], paths: p }));
    };
  const maxQueue = options.maxQueue ?? 4096;
  const batcher = new MicroBatcher<string, NerResult>(runner(maxBatch), {
    maxBatch,
    maxWaitMs: options.maxWaitMs ?? 5,
    maxQueue,
  });
  const heavy = new MicroBatcher<string, NerResult>(runner(HEAVY_BATCH), {
    maxBatch: 1,
    maxWaitMs: 0,
    maxQueue,
  });

  const app = Fastify({
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // A client that trickles its request in must not hold a connection for ever.
    requestTimeout,
    // Node checks that timeout only every connectionsCheckingInterval (30 s by default), and a
    // request whose headers have arrived expires by headersTimeout (60 s) rather than by it:
    // the 30 s timeout fired after 57–69 s.
    // (A timeout of 0 turns the check off, as in Node.)
    http:
      requestTimeout > 0
        ? {
            connectionsCheckingInterval: Math.min(1000, requestTimeout),
            headersTimeout: requestTimeout,
          }
        : undefined,
    // Refusals before fastify sees a request (a garbage request line, 408, 431) in the API's shape.
    clientErrorHandler: clientError,
    // And those fastify makes before routing (a URL that does not decode, `GET /%`).
    frameworkErrors: (error, _request, reply) => {
      const { status, code, message } = classify(error);
      void (reply as FastifyReply).code(status).send({ error: { code, message } });
    },
    logger: false,
  });
  let closing = false;
  // Only JSON is an API body; fastify would otherwise hand a text/plain body over as a string.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((error: FastifyError | Error, _request, reply) => {
    const { status, code, message } = classify(error);
    if (status >= 500 && status !== 503) options.onError?.(error);
    if (code === 'overloaded') void reply.header('retry-after', '1');
    void reply.code(status).send({ error: { code, message } });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({
      error: { code: 'not_found', message: `no route for ${request.method} ${request.url}` },
    });
  });

  app.get('/', (_request, reply) => {
    void reply
      .header('content-type', 'text/html; charset=utf-8')
      .header(
        'content-security-policy',
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
          "connect-src 'self'; img-src data:",
      )
      .header('x-content-type-options', 'nosniff')
      .send(PAGE_HTML);
  });

  app.get('/healthz', () => {
    const placement = model.placement;
    return {
      status: closing ? 'closing' : 'ok',
      model: {
        name: model.dir ? path.basename(model.dir) : undefined,
        head: model.config?.head,
        maxPositions: model.config?.maxPositionEmbeddings,
        labels: model.labels,
        device: placement.device,
        dtype: placement.dtype,
      },
      batching: {
        maxBatch: batcher.maxBatch,
        maxWaitMs: batcher.maxWaitMs,
        ...batcher.stats,
        heavy: { textLength: heavyTextLength, ...heavy.stats },
      },
      limits: { ...limits, bodyLimit: options.bodyLimit ?? 1024 * 1024, requestTimeout },
    };
  });

  app.post('/v1/ner', async (request, reply) => {
    const req = parseNerRequest(request.body, limits);
    const key = JSON.stringify({
      nBest: req.nBest,
      constrained: req.constrained,
      withProbabilities: req.withProbabilities,
    } satisfies BatchOptions);
    // A client that hangs up takes its work with it: queued texts leave the queue, and a model
    // call running for it alone stops at its next native call.
    const gone = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableFinished) gone.abort(new ClientGoneError());
    };
    reply.raw.once('close', onClose);
    try {
      const lanes = req.texts.map((t) => (t.length > heavyTextLength ? heavy : batcher));
      const light = req.texts.filter((_, i) => lanes[i] === batcher);
      const long = req.texts.filter((_, i) => lanes[i] === heavy);
      const [lightResults, heavyResults] = await Promise.all([
        batcher.submit(key, light, gone.signal),
        heavy.submit(key, long, gone.signal),
      ]);
      let l = 0;
      let h = 0;
      const results = lanes.map((lane) =>
        lane === batcher ? lightResults[l++] : heavyResults[h++],
      );
      return req.single ? results[0] : { results };
    } finally {
      reply.raw.off('close', onClose);
    }
  });

  // Not batched: one text's attention maps, straight from the model (which queues its calls).
  app.post('/v1/explain', async (request) => {
    const req = parseExplainRequest(request.body, limits);
    if (!model.explain) {
      throw new HttpError(501, 'not_implemented', 'this model cannot explain its predictions');
    }
    let explanation: Explanation;
    try {
      explanation = await model.explain(req.text, {
        layers: req.layers,
        heads: req.heads,
        constrained: req.constrained,
      });
    } catch (error) {
      // A layer or head the model does not have.
      if (error instanceof RangeError) throw new HttpError(422, 'out_of_range', error.message);
      throw error;
    }
    return explainView(explanation, {
      topTags: req.topTags,
      model: model.dir ? path.basename(model.dir) : undefined,
    });
  });

  app.addHook('preClose', async () => {
    closing = true;
  });
  // While closing, answers end their connection: an idle keep-alive connection would otherwise
  // hold the close up until the client's keep-alive timeout.
  app.addHook('onSend', async (_request, reply) => {
    if (closing) void reply.header('connection', 'close');
  });
  app.addHook('onClose', async () => {
    await Promise.all([batcher.close(), heavy.close()]);
  });

  return {
    app,
    batcher,
    heavy,
    async listen({ port = 8080, host = '127.0.0.1' } = {}) {
      await app.listen({ port, host });
      const address = app.server.address();
      if (address === null || typeof address === 'string') return String(address);
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return `http://${shown}:${address.port}`;
    },
    async close() {
      await app.close();
    },
  };
}

/** Maps an error to its HTTP status, code and message. */
function classify(error: FastifyError | Error): { status: number; code: string; message: string } {
  if (error instanceof HttpError) {
    return { status: error.statusCode, code: error.code, message: error.message };
  }
  if (error instanceof QueueFullError) {
    return { status: 503, code: 'overloaded', message: error.message };
  }
  if (error instanceof BatcherClosedError) {
    return { status: 503, code: 'shutting_down', message: 'the server is shutting down' };
  }
  if (error instanceof ClientGoneError) {
    // Nobody reads this answer; 499 as nginx logs it.
    return { status: 499, code: 'client_closed', message: error.message };
  }
  const e = error as FastifyError;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'payload_too_large', message: e.message };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, code: 'invalid_json', message: e.message };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        code: 'unsupported_media_type',
        message: 'send the body as application/json',
      };
  }
  // fastify's other refusals (a bad content-length, say) carry their own 4xx status.
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, code: 'bad_request', message: e.message };
  }
  return { status: 500, code: 'internal_error', message: e.message || 'internal error' };
}

/**
 * Answers what Node's HTTP parser refuses before any route runs, in the API's error shape:
 * 408 when the request did not arrive in time, 431 for headers over Node's limit, 400 else.
 */
function clientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  // A connection reset leaves nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'request_timeout', 'the request did not arrive in time']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', 'the request headers are larger than the server accepts']
        : [400, 'bad_request', `malformed HTTP request (${error.code ?? error.message})`];
  const body = JSON.stringify({ error: { code, message } });
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
        'content-type: application/json; charset=utf-8\r\n' +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  } else {
    socket.destroy();
  }
}
