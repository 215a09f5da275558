/**
 * The self-contained HTML document `koner explain` writes: the view's data as JSON in the page,
 * the renderer and its styles inline. It loads nothing (no scripts, fonts or images from
 * elsewhere), so it opens offline, from a file.
 */
import { VIEW_CSS, VIEW_SCRIPT } from './render.js';
import type { ExplainView } from './view.js';

/** JSON that can sit inside a `<script>` element: `<` escaped, so no `</script>` can end it. */
export function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

/** The document for one view. */
export function explainHtml(view: ExplainView): string {
  const title = `koner explain — ${view.text.length > 40 ? `${view.text.slice(0, 40)}…` : view.text}`;
  return `<!doctype html>
<html lang="ko">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { margin: 0; font: 15px/1.5 'Noto Sans CJK KR', 'Noto Sans KR', 'NanumGothic',
         'Apple SD Gothic Neo', 'Malgun Gothic', system-ui, sans-serif; background: #f6f7fb; }
  main { max-width: 900px; margin: 0 auto; padding: 20px; }
  header { display: flex; align-items: baseline; gap: 12px; margin-bottom: 10px; }
  h1 { font-size: 18px; margin: 0; }
  header span { color: #5d6678; font-size: 13px; }
  #view { background: #fff; border: 1px solid #d9dee8; border-radius: 8px; padding: 16px; }
${VIEW_CSS}
</style>
</head>
<body>
<main>
<header><h1>koner explain</h1><span id="model"></span></header>
<div id="view"></div>
</main>
<script type="application/json" id="koner-view">${scriptSafeJson(view)}</script>
<script>${VIEW_SCRIPT}
(function () {
  var view = JSON.parse(document.getElementById('koner-view').textContent);
  document.getElementById('model').textContent = view.model ? 'model ' + view.model : '';
  konerView.render(document.getElementById('view'), view);
})();
</script>
</body>
</html>
`;
}
