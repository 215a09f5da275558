/** The HTTP API and demo page: `createServer(model).listen()`. */
export { createServer } from './server.js';
export type { NerPredictor, NerResult, NerServer, ServerOptions } from './server.js';
export { BatcherClosedError, MicroBatcher, QueueFullError } from './batcher.js';
export type { MicroBatcherOptions, MicroBatcherStats } from './batcher.js';
export { DEFAULT_LIMITS, HttpError, parseExplainRequest, parseNerRequest } from './request.js';
export type { ExplainRequest, NerRequest, RequestLimits } from './request.js';
export { PAGE_HTML } from './page.js';
