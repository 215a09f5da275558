/** koner: Korean named-entity recognition on LibTorch. The public API. */
export { runtimeInfo, getThreads, setThreads } from './runtime.js';
export type { RuntimeInfo } from './runtime.js';
