import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  explainHtml,
  explainView,
  scriptSafeJson,
  type ExplainView,
} from '../lib/explain/index.js';
import { NerModel, type Explanation } from '../lib/model/ner-model.js';
import { packageRoot } from '../lib/native.js';
import { distinctColours, haveChromium, launchChromium } from './fixtures/chromium.js';

const tokenizerDir = path.resolve(packageRoot, '..', 'shared', 'data', 'kobert-tokenizer');
const haveShared = existsSync(tokenizerDir);
if (!haveShared) console.warn(`explain tests skipped: ${tokenizerDir} is absent`);

/** A hand-made explanation: 2 pieces, 2 layers × 1 head, 3 tags. */
function tinyExplanation(text = '부산 <b>'): Explanation {
  const labels = ['O', 'B-LOC', 'I-LOC'];
  const N = 4;
  const map = (seed: number) => {
    const m = new Float32Array(N * N);
    for (let q = 0; q < N; q++) {
      for (let k = 0; k < N; k++) m[q * N + k] = (q + k + seed) % N === 0 ? 0.7 : 0.1;
    }
    return m;
  };
  return {
    text,
    tokens: [
      { piece: '[CLS]', start: 0, end: 0 },
      { piece: '▁부산', start: 0, end: 2 },
      { piece: '▁<b>', start: 2, end: text.length },
      { piece: '[SEP]', start: text.length, end: text.length },
    ],
    layers: [0, 3],
    heads: [1],
    attentions: [[map(0)], [map(1)]],
    windows: [{ start: 0, end: 2 }],
    entities: [{ entity: 'LOC', text: '부산', start: 0, end: 2, score: 0.9 }],
    labels,
    tags: ['O', 'B-LOC', 'O', 'O'],
    marginals: Float32Array.from([1, 0, 0, 0.05, 0.9, 0.05, 0.6, 0.1, 0.3, 1, 0, 0]),
  };
}

function decodeAttention(view: ExplainView): Float32Array {
  const bytes = Buffer.from(view.attention, 'base64');
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

describe('the view data', () => {
  it('keeps each token’s likeliest tags in order and every map, exactly', () => {
    const explanation = tinyExplanation();
    const view = explainView(explanation, { topTags: 2, model: 'tiny' });
    expect(view.model).toBe('tiny');
    expect(view.layers).toEqual([0, 3]);
    expect(view.heads).toEqual([1]);
    expect(view.tokens[1]).toEqual({
      piece: '▁부산',
      start: 0,
      end: 2,
      tag: 'B-LOC',
      top: [
        { tag: 'B-LOC', p: Math.fround(0.9) },
        { tag: 'O', p: Math.fround(0.05) },
      ],
    });
    expect(view.tokens[2].top.map((t) => t.tag)).toEqual(['O', 'I-LOC']);
    const maps = decodeAttention(view);
    expect(Array.from(maps)).toEqual([
      ...explanation.attentions[0][0],
      ...explanation.attentions[1][0],
    ]);
    // JSON as is.
    expect(JSON.parse(JSON.stringify(view))).toEqual(view);
    expect(() => explainView(explanation, { topTags: 0 })).toThrow(/topTags/);
  });

  it('writes a document that loads nothing and whose text cannot end its script', () => {
    const text = '</script><script>alert(1)</script> 부산';
    const html = explainHtml(explainView(tinyExplanation(text)));
    // Nothing is fetched: no script or style from elsewhere, no URL but the SVG namespace.
    const fetched = html.replaceAll('http://www.w3.org/2000/svg', '');
    expect(fetched).not.toMatch(/<script[^>]+src=|<link|@import|url\(|https?:\/\//i);
    expect(html.match(/<\/script>/g)?.length).toBe(2); // the data's and the renderer's own
    const json = /<script type="application\/json" id="koner-view">(.*?)<\/script>/s.exec(html);
    expect((JSON.parse(json![1]) as ExplainView).text).toBe(text);
    expect(scriptSafeJson({ a: '<\u2028' })).toBe('{"a":"\\u003c\\u2028"}');
  });
});

describe.skipIf(!haveShared || !haveChromium)('the view in headless Chromium', () => {
  let tmp: string;
  let model: NerModel;
  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-explain-'));
    model = await NerModel.loadDefault({ threads: 1 });
  });
  afterAll(() => {
    model?.dispose();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('draws the sentence, the probabilities and a head view that follows the selectors', async () => {
    const text = '이순신은 1545년 한성에서 태어났다.';
    const explanation = await model.explain(text);
    const view = explainView(explanation, { model: 'kmou-small' });
    const file = path.join(tmp, 'explain.html');
    writeFileSync(file, explainHtml(view));
    const N = view.tokens.length;

    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 900, height: 900 } });
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      page.on('request', (request) => requests.push(request.url()));
      await page.goto(pathToFileURL(file).href);
      await page.waitForSelector('.kv-svg');

      // The tagged sentence: the model's entities, as marks.
      const marks = await page.$$eval('.kv-sentence mark.ent', (nodes) =>
        nodes.map((n) => (n as unknown as { dataset: Record<string, string> }).dataset.type),
      );
      expect(marks).toEqual(explanation.entities.map((e) => e.entity));
      expect(marks.length).toBeGreaterThan(0);
      expect(await page.$$eval('.kv-piece', (n) => n.length)).toBe(N);
      expect(await page.$$eval('.kv-table tr', (n) => n.length)).toBe(N - 2 + 1);
      // Two columns of N token labels; lines for every weight of at least 1%.
      expect(await page.$$eval('.kv-svg text', (n) => n.length)).toBe(2 * N);
      const lineCount = (layer: number, head: number, row?: number) => {
        let count = 0;
        const at = (layer * view.heads.length + head) * N * N;
        const maps = decodeAttention(view);
        for (let q = 0; q < N; q++) {
          if (row !== undefined && q !== row) continue;
          for (let k = 0; k < N; k++) if (maps[at + q * N + k] >= 0.01) count++;
        }
        return count;
      };
      const lines = () => page.$$eval('.kv-lines line', (n) => n.length);
      expect(await lines()).toBe(lineCount(0, 0));
      const layerOptions = await page.$$eval('select.kv-layer option', (n) => n.length);
      const headOptions = await page.$$eval('select.kv-head option', (n) => n.length);
      expect(layerOptions).toBe(model.config.numHiddenLayers);
      expect(headOptions).toBe(model.config.numAttentionHeads);
      await page.selectOption('select.kv-layer', '3');
      await page.selectOption('select.kv-head', '2');
      expect(await lines()).toBe(lineCount(3, 2));
      expect(await page.textContent('.kv-caption')).toContain('layer 3 · 헤드 head 2');

      // Clicking an entity selects its first piece: its probabilities and its row of lines.
      await page.click('.kv-sentence mark.ent');
      const first = explanation.entities[0];
      const q = view.tokens.findIndex(
        (t, i) => i > 0 && t.end > first.start && t.start < first.end,
      );
      expect(await page.textContent('.kv-selected-piece')).toBe(view.tokens[q].piece);
      const bars = await page.$$eval('.kv-detail .kv-bar-value', (n) =>
        n.map((x) => x.textContent),
      );
      expect(bars).toEqual(view.tokens[q].top.map((t) => `${(t.p * 100).toFixed(1)}%`));
      expect(await lines()).toBe(lineCount(3, 2, q));
      // Clicking a piece chip selects that piece.
      await page.click(`.kv-piece[data-index="${N - 2}"]`);
      expect(await page.textContent('.kv-selected-piece')).toBe(view.tokens[N - 2].piece);
      expect(await lines()).toBe(lineCount(3, 2, N - 2));

      const shot = await page.screenshot({ fullPage: true });
      expect(await distinctColours(browser, shot)).toBeGreaterThan(20);
      expect(requests.filter((u) => !u.startsWith('file:'))).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
