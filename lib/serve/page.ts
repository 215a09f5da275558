/**
 * The demo page served at `GET /`: type Korean text, see the entities highlighted with their type
 * and score, and below them the explain view (lib/explain/render.ts, the renderer `koner explain`
 * uses too): click an entity or a piece to see its tag probabilities and attention. Plain HTML and
 * JavaScript kept in a TypeScript string, so `tsc` alone puts it in dist/ (no copy step, no
 * bundler) and the server never reads a file at run time.
 *
 * The script builds the result with DOM nodes and `textContent` only: the text and entities come
 * from the user, and nothing of theirs is ever parsed as HTML.
 */
import { VIEW_CSS, VIEW_SCRIPT } from '../explain/render.js';

/** The page's HTML document. */
export const PAGE_HTML = `<!doctype html>
<html lang="ko">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>koner — 한국어 개체명 인식</title>
<style>
  :root { --fg: #1d2330; --muted: #5d6678; --line: #d9dee8; --bg: #f6f7fb; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 16px/1.6 'Noto Sans CJK KR', 'Noto Sans KR', 'Apple SD Gothic Neo',
         'Malgun Gothic', system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  main { max-width: 860px; margin: 0 auto; padding: 24px 20px 48px; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  .sub { color: var(--muted); margin: 0 0 20px; font-size: 14px; }
  textarea { width: 100%; min-height: 110px; padding: 12px; font: inherit; border: 1px solid var(--line);
             border-radius: 8px; resize: vertical; background: #fff; }
  .bar { display: flex; gap: 12px; align-items: center; margin: 10px 0 22px; flex-wrap: wrap; }
  button { font: inherit; padding: 8px 20px; border: 0; border-radius: 8px; background: #3158d4;
           color: #fff; cursor: pointer; }
  button:disabled { background: #98a6cf; cursor: progress; }
  label { color: var(--muted); font-size: 14px; }
  #status { color: var(--muted); font-size: 14px; margin-left: auto; }
  #status.error { color: #b3261e; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px;
            margin-bottom: 16px; }
  section h2 { font-size: 14px; color: var(--muted); margin: 0 0 8px; font-weight: 600; }
  #highlighted { white-space: pre-wrap; word-break: break-all; line-height: 2.3; font-size: 18px; }
  table { border-collapse: collapse; width: 100%; font-size: 14px; }
  th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); }
  th { color: var(--muted); font-weight: 600; }
  td.num { font-variant-numeric: tabular-nums; }
  .empty { color: var(--muted); font-size: 14px; }
  #markup { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; font-size: 14px;
            white-space: pre-wrap; word-break: break-all; }
  .legend { display: flex; flex-wrap: wrap; gap: 6px; font-size: 12px; margin-top: 8px; }
  .legend span { padding: 1px 6px; border-radius: 4px; background: var(--c); color: var(--b);
                 font-weight: 600; }
${VIEW_CSS}
</style>
</head>
<body>
<main>
  <h1>koner</h1>
  <p class="sub">한국어 개체명 인식 · Korean named-entity recognition</p>
  <textarea id="input" spellcheck="false" aria-label="text">이순신은 1545년 4월 28일 한성 건천동에서 태어났다.</textarea>
  <div class="bar">
    <button id="run" type="button">분석 (Ctrl+Enter)</button>
    <label><input id="probs" type="checkbox"> 조각별 확률 (piece probabilities)</label>
    <span id="status"></span>
  </div>
  <section>
    <h2>개체 (entities)</h2>
    <div id="highlighted" class="empty">분석 버튼을 누르세요.</div>
    <div class="legend" id="legend"></div>
  </section>
  <section>
    <h2>목록 (list)</h2>
    <div id="list" class="empty">—</div>
  </section>
  <section>
    <h2>마크업 (markup)</h2>
    <div id="markup" class="empty">—</div>
  </section>
  <section>
    <h2>모델 들여다보기 (inside the model: tag probabilities and attention)</h2>
    <div id="explain" class="empty">—</div>
  </section>
</main>
<script>${VIEW_SCRIPT}</script>
<script>
(function () {
  'use strict';
  var colors = konerView.colors;
  var input = document.getElementById('input');
  var run = document.getElementById('run');
  var probs = document.getElementById('probs');
  var status = document.getElementById('status');
  var highlighted = document.getElementById('highlighted');
  var list = document.getElementById('list');
  var markup = document.getElementById('markup');
  var legend = document.getElementById('legend');
  var explain = document.getElementById('explain');
  var explained = null; // the explain view of the text shown, once it has arrived

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function setStatus(text, isError) {
    status.textContent = text;
    status.className = isError ? 'error' : '';
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function show(text, entities) {
    clear(list); clear(markup);
    highlighted.className = ''; list.className = ''; markup.className = '';
    konerView.highlight(highlighted, text, entities, function (e) {
      if (!explained) return;
      explained.selectSpan(e.start, e.end);
      explain.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
    });
    var pos = 0, marked = '';
    entities.forEach(function (e) {
      if (e.start < pos || e.end > text.length) return;
      marked += text.slice(pos, e.start) + '<' + text.slice(e.start, e.end) + ':' + e.entity + '>';
      pos = e.end;
    });
    markup.textContent = marked + text.slice(pos);
    if (entities.length === 0) {
      list.className = 'empty';
      list.textContent = '개체가 없습니다 (no entities).';
      return;
    }
    var table = el('table');
    var head = el('tr');
    ['유형 type', '텍스트 text', '위치 offsets', '점수 score'].forEach(function (h) {
      head.appendChild(el('th', '', h));
    });
    table.appendChild(head);
    entities.forEach(function (e) {
      var row = el('tr');
      var type = el('td');
      var badge = el('span', '', e.entity);
      var c = colors(e.entity);
      badge.style.cssText = 'padding:1px 6px;border-radius:4px;font-weight:600;background:' +
        c[0] + ';color:' + c[1];
      type.appendChild(badge);
      row.appendChild(type);
      var t = el('td', '', e.text);
      if (e.pieces) {
        t.title = e.pieces.map(function (p) {
          return p.piece + ' ' + p.tag + ' ' + p.probability.toFixed(3);
        }).join('\\n');
      }
      row.appendChild(t);
      row.appendChild(el('td', 'num', '[' + e.start + ', ' + e.end + ')'));
      row.appendChild(el('td', 'num', e.score.toFixed(3)));
      table.appendChild(row);
    });
    list.appendChild(table);
  }

  function post(path, body) {
    return fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (answer) {
        if (!response.ok) throw new Error(answer.error ? answer.error.message : response.statusText);
        return answer;
      });
    });
  }

  function showExplanation(text) {
    explained = null;
    explain.className = 'empty';
    explain.textContent = '…';
    return post('v1/explain', { text: text }).then(function (view) {
      explain.className = '';
      explained = konerView.render(explain, view);
    }).catch(function (error) {
      explain.className = 'empty';
      explain.textContent = '설명할 수 없습니다 (cannot explain): ' + error.message;
    });
  }

  function analyse() {
    var text = input.value;
    if (!text.trim()) { setStatus('텍스트를 입력하세요.', true); return; }
    run.disabled = true;
    setStatus('분석 중…', false);
    var started = performance.now();
    post('v1/ner', { text: text, withProbabilities: probs.checked }).then(function (body) {
      show(text, body.entities);
      var ms = Math.round(performance.now() - started);
      setStatus(body.entities.length + '개 개체 · ' + ms + ' ms', false);
      return showExplanation(text);
    }).catch(function (error) {
      setStatus('오류: ' + error.message, true);
    }).finally(function () {
      run.disabled = false;
    });
  }

  run.addEventListener('click', analyse);
  input.addEventListener('keydown', function (event) {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) analyse();
  });
  fetch('healthz').then(function (r) { return r.json(); }).then(function (h) {
    var types = [];
    h.model.labels.forEach(function (l) {
      var m = /^[BI]-(.+)$/.exec(l);
      if (m && types.indexOf(m[1]) < 0) types.push(m[1]);
    });
    types.forEach(function (t) {
      var c = colors(t);
      var s = el('span', '', t);
      s.style.setProperty('--c', c[0]);
      s.style.setProperty('--b', c[1]);
      legend.appendChild(s);
    });
    if (!status.textContent) setStatus((h.model.name || 'model') + ' · ' + h.model.device, false);
  }).catch(function () {});
})();
</script>
</body>
</html>
`;
