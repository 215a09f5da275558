/**
 * The explain view's renderer: browser JavaScript and CSS kept in TypeScript strings (as the
 * demo page is), written once and used twice: inlined in the file `koner explain` writes and in
 * the page `koner serve` serves. It draws an {@link ExplainView} (view.ts): the tagged sentence,
 * the pieces, each piece's likeliest tags, and a head view (bertviz's): lines from each token to
 * the tokens it attends to, one layer and head at a time.
 *
 * The script defines one global, `konerView`, with `render(container, view)` (returns `{ select,
 * selectSpan, setLayer, setHead }`), `highlight(node, text, entities, onClick)` (entities as
 * `<mark class="ent">`), `colors(type)` and `decode(base64)`. It builds DOM nodes and sets
 * `textContent` only: nothing from the text is ever parsed as HTML. It loads nothing.
 */

/** Styles of the view (and of entity marks), scoped under `.kv` where they could clash. */
export const VIEW_CSS = `
  mark.ent { border-radius: 5px; padding: 2px 3px; background: var(--c); color: inherit;
             box-shadow: inset 0 -2px 0 var(--b); cursor: pointer;
             -webkit-box-decoration-break: clone; box-decoration-break: clone; }
  mark.ent .tag { font-size: 11px; font-weight: 700; margin-left: 4px; color: var(--b);
                  vertical-align: 1px; letter-spacing: .02em; }
  mark.ent .score { font-size: 10px; color: #5d6678; margin-left: 2px; vertical-align: 1px; }
  .kv { color: #1d2330; }
  .kv-sentence { white-space: pre-wrap; word-break: break-all; line-height: 2.3; font-size: 18px;
                 margin-bottom: 8px; }
  .kv-pieces { display: flex; flex-wrap: wrap; gap: 4px; margin-bottom: 14px; }
  .kv-piece { font-size: 13px; padding: 1px 6px; border-radius: 4px; border: 1px solid #d9dee8;
              background: #fff; cursor: pointer; }
  .kv-piece.kv-tagged { background: var(--c); border-color: var(--b); }
  .kv-piece.kv-special { color: #5d6678; font-size: 11px; }
  .kv-piece.kv-on { outline: 2px solid #3158d4; outline-offset: -1px; }
  .kv-table tr.kv-on td { background: #e8eefc; }
  .kv-body { display: grid; grid-template-columns: auto minmax(0, 1fr); gap: 20px;
             align-items: start; }
  @media (max-width: 720px) { .kv-body { grid-template-columns: minmax(0, 1fr); } }
  .kv-controls { display: flex; gap: 10px; align-items: center; font-size: 13px;
                 color: #5d6678; margin-bottom: 6px; flex-wrap: wrap; }
  .kv-controls select { font: inherit; padding: 2px 4px; }
  .kv-caption { font-size: 12px; color: #5d6678; margin: 4px 0 0; }
  .kv-svg { display: block; max-width: 100%; height: auto; }
  .kv-token { font-size: 13px; fill: #1d2330; cursor: pointer; }
  .kv-token.kv-focus { font-weight: 700; fill: #3158d4; }
  .kv-detail { min-height: 90px; margin-bottom: 12px; }
  .kv-detail-head { margin-bottom: 6px; }
  .kv-selected-piece { font-size: 16px; }
  .kv-muted, .kv-hint { color: #5d6678; font-size: 13px; }
  .kv-bar { display: grid; grid-template-columns: 56px minmax(0, 1fr) 52px; gap: 8px;
            align-items: center; font-size: 13px; margin: 2px 0; }
  .kv-bar-track { height: 10px; background: #eef0f5; border-radius: 5px; overflow: hidden; }
  .kv-bar-fill { display: block; height: 100%; background: var(--b, #7a869a); }
  .kv-bar-value { text-align: right; font-variant-numeric: tabular-nums; }
  .kv-attended { font-size: 13px; margin-top: 8px; color: #5d6678; }
  .kv-table { border-collapse: collapse; width: 100%; font-size: 13px; }
  .kv-table th, .kv-table td { text-align: left; padding: 3px 6px;
                               border-bottom: 1px solid #d9dee8; }
  .kv-table th { color: #5d6678; font-weight: 600; }
  .kv-table tr { cursor: pointer; }
  .kv-table td:first-child { white-space: nowrap; }
  .kv-table .kv-p { display: inline-block; color: #5d6678; font-variant-numeric: tabular-nums;
                    margin-right: 6px; white-space: nowrap; }
  .kv-badge { padding: 0 5px; border-radius: 4px; font-weight: 600; background: var(--c);
              color: var(--b); white-space: nowrap; }
`;

/** The renderer; defines the global `konerView`. */
export const VIEW_SCRIPT = `
var konerView = (function () {
  'use strict';
  var COLORS = {
    PER: ['#fde2e1', '#c0392b'], LOC: ['#dff3e4', '#1e8449'], ORG: ['#e1ecfb', '#2457a6'],
    POH: ['#f4e6fb', '#7d3c98'], DAT: ['#fff1d6', '#b9770e'], TIM: ['#ffe9dc', '#c35a12'],
    DUR: ['#e3f6f5', '#148f77'], MNY: ['#eaf6d8', '#5b8c1a'], PNT: ['#fbe3f1', '#b0306f'],
    NOH: ['#e9e9f5', '#4b4f8a']
  };
  var HEAD_COLORS = ['#3158d4', '#c0392b', '#1e8449', '#7d3c98', '#b9770e', '#148f77',
                     '#b0306f', '#4b4f8a', '#c35a12', '#2457a6', '#5b8c1a', '#8e44ad'];
  var SVG = 'http://www.w3.org/2000/svg';
  // Lines thinner than this share of a row's attention are not drawn.
  var MIN_WEIGHT = 0.01;

  function colors(type) {
    if (COLORS[type]) return COLORS[type];
    var h = 0;
    for (var i = 0; i < type.length; i++) h = (h * 31 + type.charCodeAt(i)) % 360;
    return ['hsl(' + h + ', 70%, 92%)', 'hsl(' + h + ', 55%, 35%)'];
  }
  function typeOf(tag) {
    var m = /^[BI]-(.+)$/.exec(tag || '');
    return m ? m[1] : null;
  }
  function paint(node, type) {
    if (!type) return;
    var c = colors(type);
    node.style.setProperty('--c', c[0]);
    node.style.setProperty('--b', c[1]);
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svgEl(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function percent(p) { return (p * 100).toFixed(1) + '%'; }

  // Base64 of little-endian float32 values.
  function decode(base64) {
    var raw = atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    var data = new DataView(bytes.buffer);
    var out = new Float32Array(raw.length / 4);
    for (var j = 0; j < out.length; j++) out[j] = data.getFloat32(j * 4, true);
    return out;
  }

  // The text into node, each entity as <mark class="ent"> with its type and score.
  function highlight(node, text, entities, onClick) {
    clear(node);
    var pos = 0;
    entities.forEach(function (e) {
      if (e.start < pos || e.end > text.length) return;
      node.appendChild(document.createTextNode(text.slice(pos, e.start)));
      var m = el('mark', 'ent');
      paint(m, e.entity);
      m.dataset.type = e.entity;
      m.dataset.start = String(e.start);
      m.dataset.end = String(e.end);
      m.title = e.entity + ' ' + e.score.toFixed(3) + ' [' + e.start + ', ' + e.end + ')';
      m.appendChild(document.createTextNode(text.slice(e.start, e.end)));
      m.appendChild(el('span', 'tag', e.entity));
      m.appendChild(el('span', 'score', e.score.toFixed(2)));
      if (onClick) m.addEventListener('click', function () { onClick(e); });
      node.appendChild(m);
      pos = e.end;
    });
    node.appendChild(document.createTextNode(text.slice(pos)));
  }

  function render(container, view) {
    clear(container);
    container.className = 'kv';
    var tokens = view.tokens;
    var N = tokens.length;
    var maps = decode(view.attention);
    var state = { layer: 0, head: 0, selected: -1, hover: -1 };
    function row(q) {
      var at = ((state.layer * view.heads.length + state.head) * N + q) * N;
      return maps.subarray(at, at + N);
    }

    var sentence = el('div', 'kv-sentence');
    highlight(sentence, view.text, view.entities, function (e) { selectSpan(e.start, e.end); });
    container.appendChild(sentence);

    var pieces = el('div', 'kv-pieces');
    var chips = tokens.map(function (t, q) {
      var chip = el('span', 'kv-piece', t.piece);
      if (typeOf(t.tag)) {
        chip.classList.add('kv-tagged');
        paint(chip, typeOf(t.tag));
      }
      if (q === 0 || q === N - 1) chip.classList.add('kv-special');
      chip.dataset.index = String(q);
      chip.title = t.tag + ' ' + percent(t.top[0] ? t.top[0].p : 0);
      chip.addEventListener('click', function () { select(q); });
      pieces.appendChild(chip);
      return chip;
    });
    container.appendChild(pieces);

    var body = el('div', 'kv-body');
    container.appendChild(body);

    // The head view.
    var heads = el('div', 'kv-heads');
    body.appendChild(heads);
    var controls = el('div', 'kv-controls');
    function selector(label, cls, values, onChange) {
      var wrap = el('label', '', label + ' ');
      var select = el('select', cls);
      values.forEach(function (v, i) {
        var option = el('option', '', String(v));
        option.value = String(i);
        select.appendChild(option);
      });
      select.addEventListener('change', function () { onChange(Number(select.value)); });
      wrap.appendChild(select);
      controls.appendChild(wrap);
      return select;
    }
    var layerSelect = selector('층 layer', 'kv-layer', view.layers, function (i) { setLayer(i); });
    var headSelect = selector('헤드 head', 'kv-head', view.heads, function (i) { setHead(i); });
    heads.appendChild(controls);

    var ROW = 20, LEFT = 100, GAP = 120, RIGHT = 100, PAD = 6;
    var width = LEFT + GAP + RIGHT, height = 2 * PAD + N * ROW;
    var svg = svgEl('svg', { 'class': 'kv-svg', width: width, height: height,
                             viewBox: '0 0 ' + width + ' ' + height, role: 'img' });
    var bars = svgEl('g', {});
    var lines = svgEl('g', { 'class': 'kv-lines' });
    svg.appendChild(bars);
    svg.appendChild(lines);
    function y(q) { return PAD + q * ROW + ROW / 2; }
    var keyBars = [], queryLabels = [];
    tokens.forEach(function (t, q) {
      keyBars.push(svgEl('rect', { x: LEFT + GAP, y: y(q) - ROW / 2 + 2, width: RIGHT,
                                   height: ROW - 4, rx: 3, opacity: 0 }));
      bars.appendChild(keyBars[q]);
      var query = svgEl('text', { x: LEFT - 6, y: y(q), 'text-anchor': 'end',
                                  'dominant-baseline': 'central', 'class': 'kv-token kv-query' });
      query.textContent = t.piece;
      query.addEventListener('mouseenter', function () { state.hover = q; draw(); });
      query.addEventListener('mouseleave', function () { state.hover = -1; draw(); });
      query.addEventListener('click', function () { select(q); });
      svg.appendChild(query);
      queryLabels.push(query);
      var key = svgEl('text', { x: LEFT + GAP + 6, y: y(q), 'dominant-baseline': 'central',
                                'class': 'kv-token kv-key' });
      key.textContent = t.piece;
      key.addEventListener('click', function () { select(q); });
      svg.appendChild(key);
    });
    heads.appendChild(svg);
    var caption = el('p', 'kv-caption');
    heads.appendChild(caption);

    // The probabilities.
    var probs = el('div', 'kv-probs');
    body.appendChild(probs);
    var detail = el('div', 'kv-detail');
    probs.appendChild(detail);
    var table = el('table', 'kv-table');
    var headRow = el('tr');
    ['조각 piece', '태그 tag', '확률 probabilities'].forEach(function (h) {
      headRow.appendChild(el('th', '', h));
    });
    table.appendChild(headRow);
    var rows = tokens.map(function (t, q) {
      if (q === 0 || q === N - 1) return null;
      var tr = el('tr');
      tr.dataset.index = String(q);
      tr.appendChild(el('td', '', t.piece));
      var tag = el('td');
      var badge = el('span', 'kv-badge', t.tag);
      paint(badge, typeOf(t.tag));
      tag.appendChild(badge);
      tr.appendChild(tag);
      var top = el('td');
      t.top.slice(0, 3).forEach(function (x) {
        top.appendChild(el('span', 'kv-p', x.tag + ' ' + percent(x.p)));
      });
      tr.appendChild(top);
      tr.addEventListener('click', function () { select(q); });
      table.appendChild(tr);
      return tr;
    });
    probs.appendChild(table);

    function draw() {
      clear(lines);
      var focus = state.hover >= 0 ? state.hover : state.selected;
      var color = HEAD_COLORS[view.heads[state.head] % HEAD_COLORS.length];
      for (var q = 0; q < N; q++) {
        if (focus >= 0 && q !== focus) continue;
        var weights = row(q);
        for (var k = 0; k < N; k++) {
          var w = weights[k];
          if (w < MIN_WEIGHT) continue;
          lines.appendChild(svgEl('line', {
            x1: LEFT, y1: y(q), x2: LEFT + GAP, y2: y(k), stroke: color,
            'stroke-width': focus >= 0 ? (1 + 4 * w).toFixed(2) : 1.5,
            'stroke-opacity': (focus >= 0 ? 0.25 + 0.75 * w : 0.85 * w).toFixed(3)
          }));
        }
      }
      var focused = focus >= 0 ? row(focus) : null;
      keyBars.forEach(function (bar, k) {
        bar.setAttribute('fill', color);
        bar.setAttribute('opacity', focused ? (0.5 * focused[k]).toFixed(3) : '0');
      });
      queryLabels.forEach(function (label, q) { label.classList.toggle('kv-focus', q === focus); });
      caption.textContent = '층 layer ' + view.layers[state.layer] + ' · 헤드 head ' +
        view.heads[state.head] + (focus >= 0 ? ' · ' + tokens[focus].piece + ' →' :
        ' · 조각을 누르세요 (click a piece)');
    }

    function showDetail() {
      clear(detail);
      var q = state.selected;
      if (q < 0) {
        detail.appendChild(el('p', 'kv-hint',
          '조각이나 개체를 누르면 태그 확률과 어텐션이 보입니다. ' +
          '(Click a piece or an entity to see its tag probabilities and attention.)'));
        return;
      }
      var t = tokens[q];
      var head = el('div', 'kv-detail-head');
      head.appendChild(el('strong', 'kv-selected-piece', t.piece));
      head.appendChild(el('span', 'kv-muted', '  ' + t.tag + ' · [' + t.start + ', ' + t.end + ')'));
      detail.appendChild(head);
      t.top.forEach(function (x) {
        var bar = el('div', 'kv-bar');
        bar.appendChild(el('span', 'kv-bar-tag', x.tag));
        var track = el('span', 'kv-bar-track');
        var fill = el('span', 'kv-bar-fill');
        paint(fill, typeOf(x.tag));
        fill.style.width = (100 * x.p).toFixed(1) + '%';
        track.appendChild(fill);
        bar.appendChild(track);
        bar.appendChild(el('span', 'kv-bar-value', percent(x.p)));
        detail.appendChild(bar);
      });
      var weights = row(q);
      var order = Array.prototype.map.call(weights, function (_, k) { return k; });
      order.sort(function (a, b) { return weights[b] - weights[a]; });
      detail.appendChild(el('div', 'kv-attended', '가장 주목한 조각 (most attended, layer ' +
        view.layers[state.layer] + ', head ' + view.heads[state.head] + '): ' +
        order.slice(0, 3).map(function (k) {
          return tokens[k].piece + ' ' + percent(weights[k]);
        }).join(' · ')));
    }

    function select(q) {
      state.selected = q;
      chips.forEach(function (chip, i) { chip.classList.toggle('kv-on', i === q); });
      rows.forEach(function (tr, i) { if (tr) tr.classList.toggle('kv-on', i === q); });
      showDetail();
      draw();
    }
    // Selects the first piece that overlaps [start, end).
    function selectSpan(start, end) {
      for (var q = 1; q < N - 1; q++) {
        if (tokens[q].end > start && tokens[q].start < end) { select(q); return; }
      }
    }
    function setLayer(i) { state.layer = i; layerSelect.value = String(i); showDetail(); draw(); }
    function setHead(i) { state.head = i; headSelect.value = String(i); showDetail(); draw(); }

    showDetail();
    draw();
    return { select: select, selectSpan: selectSpan, setLayer: setLayer, setHead: setHead };
  }

  return { colors: colors, highlight: highlight, render: render, decode: decode };
})();
`;
