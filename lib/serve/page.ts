/**
 * The demo page served at `GET /`: type Korean text, see the entities highlighted with their type
 * and score. Plain HTML and JavaScript kept in a TypeScript string, so `tsc` alone puts it in
 * dist/ (no copy step, no bundler) and the server never reads a file at run time.
 *
 * The script builds the result with DOM nodes and `textContent` only: the text and entities come
 * from the user, and nothing of theirs is ever parsed as HTML.
 */

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
  mark.ent { border-radius: 5px; padding: 2px 3px; background: var(--c); color: inherit;
             box-shadow: inset 0 -2px 0 var(--b);
             -webkit-box-decoration-break: clone; box-decoration-break: clone; }
  mark.ent .tag { font-size: 11px; font-weight: 700; margin-left: 4px; color: var(--b);
                  vertical-align: 1px; letter-spacing: .02em; }
  mark.ent .score { font-size: 10px; color: var(--muted); margin-left: 2px; vertical-align: 1px; }
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
</main>
<script>
(function () {
  'use strict';
  var COLORS = {
    PER: ['#fde2e1', '#c0392b'], LOC: ['#dff3e4', '#1e8449'], ORG: ['#e1ecfb', '#2457a6'],
    POH: ['#f4e6fb', '#7d3c98'], DAT: ['#fff1d6', '#b9770e'], TIM: ['#ffe9dc', '#c35a12'],
    DUR: ['#e3f6f5', '#148f77'], MNY: ['#eaf6d8', '#5b8c1a'], PNT: ['#fbe3f1', '#b0306f'],
    NOH: ['#e9e9f5', '#4b4f8a']
  };
  var input = document.getElementById('input');
  var run = document.getElementById('run');
  var probs = document.getElementById('probs');
  var status = document.getElementById('status');
  var highlighted = document.getElementById('highlighted');
  var list = document.getElementById('list');
  var markup = document.getElementById('markup');
  var legend = document.getElementById('legend');

  function colors(type) {
    if (COLORS[type]) return COLORS[type];
    var h = 0;
    for (var i = 0; i < type.length; i++) h = (h * 31 + type.charCodeAt(i)) % 360;
    return ['hsl(' + h + ', 70%, 92%)', 'hsl(' + h + ', 55%, 35%)'];
  }
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
    clear(highlighted); clear(list); clear(markup);
    highlighted.className = ''; list.className = ''; markup.className = '';
    var pos = 0, marked = '';
    entities.forEach(function (e) {
      if (e.start < pos || e.end > text.length) return;
      highlighted.appendChild(document.createTextNode(text.slice(pos, e.start)));
      var c = colors(e.entity);
      var m = el('mark', 'ent');
      m.style.setProperty('--c', c[0]);
      m.style.setProperty('--b', c[1]);
      m.dataset.type = e.entity;
      m.title = e.entity + ' ' + e.score.toFixed(3) + ' [' + e.start + ', ' + e.end + ')';
      m.appendChild(document.createTextNode(text.slice(e.start, e.end)));
      m.appendChild(el('span', 'tag', e.entity));
      m.appendChild(el('span', 'score', e.score.toFixed(2)));
      highlighted.appendChild(m);
      marked += text.slice(pos, e.start) + '<' + text.slice(e.start, e.end) + ':' + e.entity + '>';
      pos = e.end;
    });
    highlighted.appendChild(document.createTextNode(text.slice(pos)));
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

  function analyse() {
    var text = input.value;
    if (!text.trim()) { setStatus('텍스트를 입력하세요.', true); return; }
    run.disabled = true;
    setStatus('분석 중…', false);
    var started = performance.now();
    fetch('v1/ner', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: text, withProbabilities: probs.checked })
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
        return body;
      });
    }).then(function (body) {
      show(text, body.entities);
      var ms = Math.round(performance.now() - started);
      setStatus(body.entities.length + '개 개체 · ' + ms + ' ms', false);
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
