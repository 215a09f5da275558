/** The explain view: its data (view.ts), its renderer (render.ts), the standalone file (html.ts). */
export { DEFAULT_TOP_TAGS, explainView } from './view.js';
export type { ExplainView, TagProbability, ViewToken } from './view.js';
export { VIEW_CSS, VIEW_SCRIPT } from './render.js';
export { explainHtml, scriptSafeJson } from './html.js';
