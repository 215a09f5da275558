import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readKmouCorpus } from '../lib/corpus/index.js';
import { LABELS, parseTag } from '../lib/labels/index.js';
import { type ModelConfig, writeModelConfig } from '../lib/model/config.js';
import { attachPieces } from '../lib/model/entity-pieces.js';
import type { NerEntity } from '../lib/model/ner-model.js';
import { bioConstraints, MAX_ATTENTION_VALUES, NerModel } from '../lib/model/ner-model.js';
import {
  copyTokenizerFiles,
  KOBERT_FILE_NAMES,
  resolveTokenizerFiles,
  TOKENIZER_FILE_NAMES,
} from '../lib/model/tokenizer-files.js';
import {
  planWindows,
  stitchAttention,
  stitchEmissions,
  tokenSources,
  windowOwners,
} from '../lib/model/windows.js';
import { native, packageRoot } from '../lib/native.js';
import { makeModelDir } from './fixtures/model-dir.js';

const shared = path.resolve(packageRoot, '..', 'shared');
const tokenizerDir = path.join(shared, 'data', 'kobert-tokenizer');
const haveShared = existsSync(tokenizerDir);
if (!haveShared) console.warn(`ner-model tests skipped: ${tokenizerDir} is absent`);

/** Same length, and every value within 1e-5 of the other's: maps of one head, two kernel paths. */
function expectWithinRounding(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  }
  expect(worst).toBeLessThan(1e-5);
}

describe('windows over long texts', () => {
  it('covers every piece with overlapping windows no longer than the limit', () => {
    for (const [n, max, overlap] of [
      [0, 10, 2],
      [10, 10, 3],
      [11, 10, 3],
      [100, 10, 3],
      [57, 7, 6],
      [57, 7, 0],
    ]) {
      const windows = planWindows(n, max, overlap);
      expect(windows[0].start).toBe(0);
      expect(windows[windows.length - 1].end).toBe(n);
      for (const w of windows) expect(w.end - w.start).toBeLessThanOrEqual(max);
      for (let i = 1; i < windows.length; i++) {
        expect(windows[i].start).toBeGreaterThan(windows[i - 1].start);
        expect(windows[i].start).toBeLessThanOrEqual(windows[i - 1].end); // no gap
        expect(windows[i - 1].end - windows[i].start).toBe(Math.min(overlap, max - 1));
      }
    }
    expect(() => planWindows(5, 0, 0)).toThrow(RangeError);
  });

  it('gives each piece to the window where it is farthest from an edge', () => {
    const windows = planWindows(30, 10, 4);
    const owners = windowOwners(30, windows);
    for (let p = 0; p < 30; p++) {
      const margins = windows.map((w) =>
        p >= w.start && p < w.end ? Math.min(p - w.start, w.end - 1 - p) : -1,
      );
      expect(margins[owners[p]]).toBe(Math.max(...margins));
      expect(margins.indexOf(Math.max(...margins))).toBe(owners[p]);
    }
  });

  it('stitches [CLS] from the first window, [SEP] from the last, pieces from their owners', () => {
    const K = 3;
    const n = 25;
    const windows = planWindows(n, 8, 3);
    const owners = windowOwners(n, windows);
    // Row value encodes (window, row) so the source of every stitched row is visible.
    const rows = windows.map((w, wi) => {
      const r = new Float32Array((w.end - w.start + 2) * K);
      for (let i = 0; i < r.length; i++) r[i] = wi * 1000 + Math.floor(i / K);
      return r;
    });
    const out = stitchEmissions(n, K, windows, rows);
    expect(out.length).toBe((n + 2) * K);
    expect(out[0]).toBe(0); // first window's [CLS]
    for (let p = 0; p < n; p++) {
      const w = owners[p];
      expect(out[(p + 1) * K]).toBe(w * 1000 + (p - windows[w].start + 1));
    }
    const last = windows.length - 1;
    expect(out[(n + 1) * K]).toBe(last * 1000 + (windows[last].end - windows[last].start + 1));
  });

  it('stitches attention rows from the rows emissions come from, columns at their tokens', () => {
    const n = 25;
    const windows = planWindows(n, 8, 3);
    const sources = tokenSources(n, windows);
    const rows = stitchEmissions(
      n,
      1,
      windows,
      windows.map((w, wi) =>
        Float32Array.from({ length: w.end - w.start + 2 }, (_, r) => wi * 100 + r),
      ),
    );
    sources.forEach(({ window, row }, q) => expect(rows[q]).toBe(window * 100 + row));
    // Window maps padded to a stride of 12: value = window * 10000 + row * 100 + column.
    const stride = 12;
    const maps = windows.map((_, wi) =>
      Float32Array.from(
        { length: stride * stride },
        (_, i) => wi * 10000 + Math.floor(i / stride) * 100 + (i % stride),
      ),
    );
    const N = n + 2;
    const out = stitchAttention(
      n,
      windows,
      maps,
      windows.map(() => stride),
    );
    expect(out.length).toBe(N * N);
    sources.forEach(({ window, row }, q) => {
      const w = windows[window];
      const size = w.end - w.start + 2;
      for (let k = 0; k < N; k++) {
        const c = k === 0 ? 0 : k === N - 1 ? size - 1 : k - w.start;
        const inside = k === 0 || k === N - 1 || (k > w.start && k <= w.end);
        expect(out[q * N + k], `row ${q} column ${k}`).toBe(
          inside ? window * 10000 + row * 100 + c : 0,
        );
      }
    });
  });
});

describe('BIO constraints', () => {
  it('forbid O → I-X, B-X → I-Y and a start with I-, and nothing else', () => {
    const { allowed, allowedStart, allowedEnd } = bioConstraints(LABELS);
    const K = LABELS.length;
    for (let j = 0; j < K; j++) {
      const to = parseTag(LABELS[j])!;
      expect(allowedStart[j]).toBe(to.prefix === 'I' ? 0 : 1);
      expect(allowedEnd[j]).toBe(1);
      for (let i = 0; i < K; i++) {
        const from = parseTag(LABELS[i])!;
        const ok =
          to.prefix !== 'I' || (from.prefix !== 'O' && 'type' in from && from.type === to.type);
        expect(allowed[i * K + j]).toBe(ok ? 1 : 0);
      }
    }
  });

  it('treat non-BIO labels (the reference project’s [CLS]) like O', () => {
    const labels = ['[CLS]', 'O', 'B-PER', 'I-PER'];
    const { allowed, allowedStart } = bioConstraints(labels);
    expect(allowedStart[0]).toBe(1);
    expect(allowed[0 * 4 + 3]).toBe(0); // [CLS] → I-PER
    expect(allowed[2 * 4 + 3]).toBe(1); // B-PER → I-PER
  });
});

describe('attachPieces', () => {
  // Pieces of one character each, every tenth a one-piece entity: 20,000 pieces, 2,000 entities.
  const n = 20_000;
  const offsets: [number, number][] = Array.from({ length: n }, (_, p) => [p, p + 1]);
  const pieces = offsets.map((_, p) => `p${p}`);
  const tags = offsets.map((_, p) => (p % 10 === 0 ? 'B-LOC' : 'O'));
  const probs = Float32Array.from(offsets, (_, p) => (p % 100) / 100);
  const entities: NerEntity[] = [];
  for (let p = 0; p < n; p += 10) {
    entities.push({ entity: 'LOC', text: 'x', start: p, end: p + 1, score: 1 });
  }

  it('gives each entity exactly the pieces that overlap it', () => {
    const out = attachPieces(entities.slice(0, 50), pieces, offsets, tags, probs);
    out.forEach((e, i) => {
      expect(e.pieces).toEqual([
        {
          piece: `p${i * 10}`,
          start: i * 10,
          end: i * 10 + 1,
          tag: 'B-LOC',
          probability: probs[i * 10],
        },
      ]);
    });
    // An entity over parts of three pieces (a refined edge) gets all three.
    const wide = attachPieces(
      [{ entity: 'LOC', text: '', start: 4, end: 7, score: 1 }],
      ['a', 'bc', 'de', 'fg', 'h'],
      [
        [0, 1],
        [1, 3],
        [3, 5],
        [5, 7],
        [7, 8],
      ],
      ['O', 'O', 'B-LOC', 'I-LOC', 'O'],
      [0.1, 0.2, 0.3, 0.4, 0.5],
    );
    expect(wide[0].pieces.map((p) => p.piece)).toEqual(['de', 'fg']);
  });

  it('reads each piece a bounded number of times however many entities a long text has', () => {
    // The entity builder once scanned every piece for every entity: 3 s of blocked event loop for
    // a 100,000-character text. Count the reads of the offsets instead of timing them.
    let reads = 0;
    const counted = new Proxy(offsets, {
      get(target, key, receiver) {
        if (typeof key === 'string' && /^\d+$/.test(key)) reads++;
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    const out = attachPieces(entities, pieces, counted, tags, probs);
    expect(out.length).toBe(entities.length);
    expect(out.every((e) => e.pieces.length === 1)).toBe(true);
    // A binary search (17 reads) and a step or two per entity.
    expect(reads).toBeLessThan(entities.length * 25);
  });
});

describe.skipIf(!haveShared)('NerModel', () => {
  let tmp: string;
  let dir: string;
  let config: ModelConfig;
  let model: NerModel;
  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-nermodel-'));
    // A small random model whose classifier always prefers B-LOC: every piece with content
    // becomes a LOC entity, which makes truncation or misplaced offsets visible.
    dir = await makeModelDir(tmp, { tokenizerDir, name: 'loc', label: 'B-LOC', maxPositions: 24 });
    model = await NerModel.load(dir, { threads: 2 });
    config = model.config;
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('loads config, labels, tokenizer and placement', () => {
    expect(model.labels).toEqual(LABELS);
    expect(config.maxPositionEmbeddings).toBe(24);
    expect(model.tokenizer.vocabSize).toBe(8002);
    expect(model.placement).toEqual({ device: 'cpu', dtype: 'float32' });
  });

  it('finds entities with exact offsets and confidence scores', async () => {
    const text = '서울에서 부산까지  3시간 걸렸다.';
    const entities = await model.predict(text);
    expect(entities.length).toBeGreaterThan(0);
    for (const e of entities) {
      expect(e.entity).toBe('LOC');
      expect(text.slice(e.start, e.end)).toBe(e.text);
      expect(e.text.trim()).toBe(e.text);
      expect(e.score).toBeGreaterThan(0.99);
      expect(e.score).toBeLessThanOrEqual(1);
    }
  });

  it('never truncates: a text of many windows gets entities to its very end', async () => {
    const sentence = '대한민국 해양대학교는 부산에 있다. ';
    const text = sentence.repeat(30);
    const pieces = model.tokenizer.encode(text).ids.length;
    expect(pieces).toBeGreaterThan(5 * (config.maxPositionEmbeddings - 2));
    const entities = await model.predict(text, { refine: false });
    // Every non-space character lies in some entity (each piece is its own B-LOC entity).
    const covered = new Uint8Array(text.length);
    for (const e of entities) covered.fill(1, e.start, e.end);
    for (let i = 0; i < text.length; i++) {
      if (text[i] !== ' ') expect(covered[i], `character ${i}`).toBe(1);
    }
    expect(entities[entities.length - 1].end).toBe(text.trimEnd().length);
  });

  it('handles empty, whitespace-only and emoji text', async () => {
    expect(await model.predict('')).toEqual([]);
    expect(await model.predict('   ')).toEqual([]);
    const text = '😀 부산 😀';
    for (const e of await model.predict(text)) expect(text.slice(e.start, e.end)).toBe(e.text);
  });

  it('gives the same answers in a batch, one by one and concurrently', async () => {
    const corpus = await readKmouCorpus(path.join(shared, 'data', 'kmou-ner', 'val'));
    const texts = corpus.slice(0, 40).map((s) => s.text);
    const batched = await model.predict(texts, { batchSize: 7 });
    const single = [];
    for (const t of texts.slice(0, 10)) single.push(await model.predict(t));
    expect(batched.slice(0, 10)).toEqual(single);
    const concurrent = await Promise.all(texts.map((t) => model.predict(t)));
    expect(concurrent).toEqual(batched);
    texts.forEach((t, i) => {
      for (const e of batched[i]) expect(t.slice(e.start, e.end)).toBe(e.text);
    });
  });

  it('attaches pieces with probabilities on request', async () => {
    const text = '부산 해양대학교';
    const entities = await model.predict(text, { withProbabilities: true });
    expect(entities.length).toBeGreaterThan(0);
    for (const e of entities) {
      expect(e.pieces.length).toBeGreaterThan(0);
      for (const p of e.pieces) {
        expect(p.tag).toBe('B-LOC');
        expect(p.probability).toBeGreaterThan(0.99);
        expect(text.slice(p.start, p.end).trimStart()).toBe(p.piece.replace(/^▁/, ''));
      }
    }
  });

  it('returns the n best paths, best first, the first equal to predict', async () => {
    const text = '부산 해양대학교';
    const paths = await model.predictPaths(text, 4);
    expect(paths.length).toBe(4);
    for (let i = 1; i < paths.length; i++) {
      expect(paths[i].score).toBeLessThanOrEqual(paths[i - 1].score);
    }
    expect(paths[0].entities).toEqual(await model.predict(text));
    const many = await model.predictPaths([text, '서울'], 2);
    expect(many.length).toBe(2);
    expect(many[0]).toEqual(paths.slice(0, 2));
  });

  it('returns emissions for id sequences that already carry [CLS] and [SEP]', async () => {
    const { ids } = model.tokenizer.encode('부산에 간다');
    const seq = [2, ...ids, 3];
    const [logits, short] = await model.logits([seq, [2, 3]]);
    expect(logits.length).toBe(seq.length * LABELS.length);
    expect(short.length).toBe(2 * LABELS.length);
    // The classifier is a constant bias over zero weights: every row prefers B-LOC.
    for (let t = 0; t < seq.length; t++) {
      const row = Array.from(logits.subarray(t * LABELS.length, (t + 1) * LABELS.length));
      expect(row.indexOf(Math.max(...row))).toBe(LABELS.indexOf('B-LOC'));
    }
  });

  it('rejects invalid input with clear errors', async () => {
    await expect(model.predict(42 as unknown as string)).rejects.toThrow(TypeError);
    await expect(model.predict([])).rejects.toThrow(/empty array/);
    await expect(model.predict(['a', 7 as unknown as string])).rejects.toThrow(/texts\[1\]/);
    // eslint-disable-next-line no-sparse-arrays
    const sparse = [, '부산'] as string[];
    await expect(model.predict(sparse)).rejects.toThrow(/texts\[0\] is missing/);
    await expect(model.predictPaths(sparse, 2)).rejects.toThrow(/texts\[0\] is missing/);
    await expect(model.predict('a', { batchSize: 0 })).rejects.toThrow(/batchSize/);
    await expect(model.predict('a', { windowOverlap: 22 })).rejects.toThrow(/windowOverlap/);
    await expect(model.predictPaths('a', 0)).rejects.toThrow(/nBest/);
    await expect(model.logits([])).rejects.toThrow(/non-empty/);
    await expect(model.logits([[2, 99999, 3]])).rejects.toThrow(/99999|range|vocab/i);
    await expect(model.logits([new Array(25).fill(5)])).rejects.toThrow(/at most 24/);
  });

  /** The native model on the same weights, to check NerModel's maps against the raw forward. */
  async function rawModel() {
    const raw = new (native().Model)(config);
    await raw.loadWeights(path.join(dir, 'model.safetensors'));
    return raw;
  }
  const withSpecials = (ids: Int32Array) => Int32Array.from([2, ...ids, 3]);

  it('attentions: the tokens with offsets, and every layer and head of the forward', async () => {
    const text = '이순신은 한성에서 태어났다.';
    const maps = await model.attentions(text);
    const { pieces, ids, offsets } = model.tokenizer.encode(text);
    const N = pieces.length + 2;
    expect(maps.text).toBe(text);
    expect(maps.tokens).toEqual([
      { piece: '[CLS]', start: 0, end: 0 },
      ...pieces.map((piece, p) => ({ piece, start: offsets[p][0], end: offsets[p][1] })),
      { piece: '[SEP]', start: text.length, end: text.length },
    ]);
    expect(maps.layers).toEqual([0, 1]);
    expect(maps.heads).toEqual([0, 1, 2, 3]);
    expect(maps.windows).toEqual([{ start: 0, end: pieces.length }]);
    const raw = await rawModel();
    const direct = await raw.attentions(
      withSpecials(ids),
      [1, N],
      Int32Array.of(N),
      [0, 1],
      [0, 1, 2, 3],
    );
    maps.attentions.forEach((perHead, l) =>
      perHead.forEach((map, h) => {
        expect(map).toBeInstanceOf(Float32Array);
        expect(map.length).toBe(N * N);
        const at = (l * 4 + h) * N * N;
        expect(Array.from(map)).toEqual(Array.from(direct.attentions.subarray(at, at + N * N)));
        for (let q = 0; q < N; q++) {
          const sum = map.subarray(q * N, (q + 1) * N).reduce((a, b) => a + b, 0);
          expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
        }
      }),
    );
    // Layer 0 is not captured this time, so it runs oneDNN's fused attention (bert.cc), whose
    // summation order differs from the captured path's: layer 1's input, and so its maps, agree
    // within float32 rounding, not bit for bit (a CI machine differed by one ulp).
    const some = await model.attentions(text, { layers: [1], heads: [3, 0] });
    expect(some.attentions.length).toBe(1);
    expect(some.attentions[0].length).toBe(2);
    expectWithinRounding(some.attentions[0][0], maps.attentions[1][3]);
    expectWithinRounding(some.attentions[0][1], maps.attentions[1][0]);
  });

  it('attentions of a long text: each row from the window predict takes the piece from', async () => {
    const text = '대한민국 해양대학교는 부산에 있다. '.repeat(6);
    const maps = await model.attentions(text, { layers: [1], heads: [2] });
    const { ids } = model.tokenizer.encode(text);
    const n = ids.length;
    const N = n + 2;
    expect(maps.windows).toEqual(planWindows(n, 22, 5));
    expect(maps.windows.length).toBeGreaterThanOrEqual(3);
    const map = maps.attentions[0][0];
    expect(map.length).toBe(N * N);
    const raw = await rawModel();
    const windowMaps: Float32Array[] = [];
    for (const w of maps.windows) {
      const T = w.end - w.start + 2;
      const out = await raw.attentions(
        withSpecials(ids.subarray(w.start, w.end)),
        [1, T],
        Int32Array.of(T),
        [1],
        [2],
      );
      windowMaps.push(out.attentions);
    }
    tokenSources(n, maps.windows).forEach(({ window, row }, q) => {
      const w = maps.windows[window];
      const T = w.end - w.start + 2;
      const local = windowMaps[window].subarray(row * T, (row + 1) * T);
      const stitched = map.subarray(q * N, (q + 1) * N);
      expect(stitched[0]).toBe(local[0]);
      expect(stitched[N - 1]).toBe(local[T - 1]);
      expect(Array.from(stitched.subarray(w.start + 1, w.end + 1))).toEqual(
        Array.from(local.subarray(1, T - 1)),
      );
      const sum = stitched.reduce((a, b) => a + b, 0);
      expect(Math.abs(sum - 1), `row ${q}`).toBeLessThan(1e-5);
    });
  });

  it('explain: the entities predict finds, every token’s tag and marginals, one forward', async () => {
    const text = '서울에서 부산까지 3시간 걸렸다.';
    const explanation = await model.explain(text, { layers: [0], heads: [1] });
    const N = explanation.tokens.length;
    const K = LABELS.length;
    expect(explanation.labels).toEqual(LABELS);
    expect(explanation.tags.length).toBe(N);
    expect(explanation.marginals.length).toBe(N * K);
    // The same entities; scores within float rounding (other batch shapes, other GEMM kernels).
    const expectSame = (a: NerEntity[], b: NerEntity[]) => {
      expect(a.map((e) => ({ ...e, score: 0 }))).toEqual(b.map((e) => ({ ...e, score: 0 })));
      a.forEach((e, i) => expect(e.score).toBeCloseTo(b[i].score, 5));
    };
    expectSame(explanation.entities, await model.predict(text));
    for (let q = 0; q < N; q++) {
      const row = explanation.marginals.subarray(q * K, (q + 1) * K);
      expect(Math.abs(row.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-4);
    }
    // The classifier prefers B-LOC everywhere: every piece's tag, and its likeliest.
    for (let q = 1; q < N - 1; q++) expect(explanation.tags[q]).toBe('B-LOC');
    expect(explanation.attentions.length).toBe(1);
    expect(explanation.attentions[0].length).toBe(1);
    // The empty text is [CLS] [SEP]; a long text explains through the windows.
    const empty = await model.explain('');
    expect(empty.tokens.map((t) => t.piece)).toEqual(['[CLS]', '[SEP]']);
    expect(empty.entities).toEqual([]);
    expect(empty.attentions[1][3].length).toBe(4);
    const long = await model.explain(text.repeat(5), { layers: [1], heads: [0] });
    expect(long.windows.length).toBeGreaterThan(1);
    expectSame(long.entities, await model.predict(text.repeat(5)));
  });

  it('attentions and explain: clear errors for bad text, layers and heads', async () => {
    const bad = (x: unknown) => x as never;
    await expect(model.attentions(bad(42))).rejects.toThrow(/attentions takes a string, got 42/);
    await expect(model.explain(bad(null))).rejects.toThrow(TypeError);
    await expect(model.attentions('부산', { layers: [2] })).rejects.toThrow(
      /layers\[0\] = 2 is out of range: the model has 2 layers \(0 to 1\)/,
    );
    await expect(model.attentions('부산', { layers: [2] })).rejects.toThrow(RangeError);
    await expect(model.attentions('부산', { heads: [0, 4] })).rejects.toThrow(
      /heads\[1\] = 4 is out of range: the model has 4 heads \(0 to 3\)/,
    );
    await expect(model.attentions('부산', { heads: [-1] })).rejects.toThrow(RangeError);
    await expect(model.attentions('부산', { layers: [0.5] })).rejects.toThrow(
      /layers\[0\] must be an integer, got 0.5/,
    );
    await expect(model.attentions('부산', { layers: [] })).rejects.toThrow(/non-empty array/);
    await expect(model.attentions('부산', { heads: bad('all') })).rejects.toThrow(
      /heads must be a non-empty array of head indices, got "all"/,
    );
    await expect(model.explain('부산', bad(5))).rejects.toThrow(/options must be an object/);
    await expect(model.attentions('부산', { windowOverlap: 22 })).rejects.toThrow(/windowOverlap/);
    const huge = '부산 '.repeat(3000);
    await expect(model.attentions(huge)).rejects.toThrow(
      new RegExp(`more than ${MAX_ATTENTION_VALUES}; ask for fewer layers or heads`),
    );
  });

  /** Runs `f` with $KONER_TOKENIZER_DIR set to `value` (or unset), restoring it after. */
  function withTokenizerEnv<T>(value: string | undefined, f: () => T): T {
    const saved = process.env.KONER_TOKENIZER_DIR;
    if (value === undefined) delete process.env.KONER_TOKENIZER_DIR;
    else process.env.KONER_TOKENIZER_DIR = value;
    try {
      return f();
    } finally {
      if (saved === undefined) delete process.env.KONER_TOKENIZER_DIR;
      else process.env.KONER_TOKENIZER_DIR = saved;
    }
  }

  it("finds the tokenizer: the option, then $KONER_TOKENIZER_DIR, then the directory's own", () => {
    const own = {
      model: path.join(dir, TOKENIZER_FILE_NAMES.model),
      vocab: path.join(dir, TOKENIZER_FILE_NAMES.vocab),
    };
    const kobert = {
      model: path.join(tokenizerDir, KOBERT_FILE_NAMES.model),
      vocab: path.join(tokenizerDir, KOBERT_FILE_NAMES.vocab),
    };
    withTokenizerEnv(undefined, () => {
      expect(config.tokenizer).toEqual(TOKENIZER_FILE_NAMES);
      expect(resolveTokenizerFiles(dir, config)).toEqual(own);
      expect(resolveTokenizerFiles(dir, config, kobert)).toEqual(kobert);
      // Without the config field, the conventional names in the directory.
      expect(resolveTokenizerFiles(dir, { ...config, tokenizer: undefined })).toEqual(own);
    });
    withTokenizerEnv(tokenizerDir, () => {
      expect(resolveTokenizerFiles(dir, config)).toEqual(kobert);
      expect(resolveTokenizerFiles(dir, config, own)).toEqual(own);
    });
  });

  it('copies tokenizer files into a directory as ordinary files, never onto themselves', async () => {
    const into = path.join(tmp, 'copied');
    mkdirSync(into);
    const kobert = {
      model: path.join(tokenizerDir, KOBERT_FILE_NAMES.model),
      vocab: path.join(tokenizerDir, KOBERT_FILE_NAMES.vocab),
    };
    expect(await copyTokenizerFiles(into, kobert)).toEqual(TOKENIZER_FILE_NAMES);
    for (const key of ['model', 'vocab'] as const) {
      const copy = path.join(into, TOKENIZER_FILE_NAMES[key]);
      expect(readFileSync(copy)).toEqual(readFileSync(kobert[key]));
      expect(statSync(copy).mode & 0o777).toBe(0o644);
    }
    const own = {
      model: path.join(into, TOKENIZER_FILE_NAMES.model),
      vocab: path.join(into, TOKENIZER_FILE_NAMES.vocab),
    };
    await copyTokenizerFiles(into, own);
    expect(statSync(own.vocab).size).toBe(statSync(kobert.vocab).size);
    await expect(
      copyTokenizerFiles(into, { model: path.join(tmp, 'absent.model'), vocab: own.vocab }),
    ).rejects.toThrow(/absent\.model: cannot read the tokenizer model file \(ENOENT\)/);
  });

  it('explains a missing tokenizer and missing weights', async () => {
    const cfg = { ...config, tokenizer: { model: 'nope.model', vocab: 'nope.json' } };
    withTokenizerEnv(path.join(tmp, 'none'), () =>
      expect(() => resolveTokenizerFiles(tmp, cfg)).toThrow(
        /tokenizer files were not found; looked in: \$KONER_TOKENIZER_DIR \(.*none has neither .*; config\.json "tokenizer" \(.*nope\.model/,
      ),
    );
    const empty = path.join(tmp, 'no-weights');
    mkdirSync(empty);
    await copyTokenizerFiles(empty, resolveTokenizerFiles(dir, config));
    await writeModelConfig(empty, config);
    await expect(NerModel.load(empty)).rejects.toThrow(/model\.safetensors is missing/);
    await expect(NerModel.load(path.join(tmp, 'absent'))).rejects.toThrow(/config\.json/);
  });

  it('stops at the next native call once its signal is aborted', async () => {
    const text = '대한민국 해양대학교는 부산에 있다. '.repeat(40); // many windows
    const controller = new AbortController();
    const pending = model.predict(text, { batchSize: 1, signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toThrow(/abort/i);
    await expect(model.predict('부산', { signal: AbortSignal.abort() })).rejects.toThrow(/abort/i);
    expect((await model.predict('부산')).length).toBeGreaterThan(0);
  });

  it('checks config.json against the weights before building the model, naming the field', async () => {
    const raw = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const variant = async (name: string, patch: Record<string, unknown>) => {
      const d = path.join(tmp, name);
      cpSync(dir, d, { recursive: true });
      writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...raw, ...patch }));
      return d;
    };
    // 1000 layers of this model would be built (and drawn) before the load found the mismatch.
    await expect(
      NerModel.load(await variant('layers', { num_hidden_layers: 1000 })),
    ).rejects.toThrow(
      /field "num_hidden_layers" is 1000, but the weights have 2 \(bert\.encoder\.layer\.0 … /,
    );
    // A vocabulary this size cannot be allocated at all: the field, not LibTorch's message.
    const huge = await NerModel.load(await variant('vocab', { vocab_size: 4_000_000_000 })).catch(
      (e: Error) => e.message,
    );
    expect(huge).toMatch(/field "vocab_size" is 4000000000, but the weights have 8002/);
    expect(huge).not.toMatch(/allocate/);
    const labels = await NerModel.load(
      await variant('labels', { id2label: { 0: 'O', 1: 'B-PER' }, label2id: undefined }),
    ).catch((e: Error) => e.message);
    expect(labels).toMatch(
      /field "id2label \(the number of labels\)" is 2, but the weights have 21/,
    );
  });

  it('reads a config.json that starts with a byte-order mark', async () => {
    const d = path.join(tmp, 'bom');
    cpSync(dir, d, { recursive: true });
    const text = readFileSync(path.join(dir, 'config.json'), 'utf8');
    writeFileSync(path.join(d, 'config.json'), `\uFEFF${text}`);
    const bom = await NerModel.load(d);
    expect(bom.config).toEqual(config);
    await bom.dispose();
  });

  it('cannot be used after dispose', async () => {
    const other = await NerModel.load(dir);
    await other.dispose();
    await expect(other.predict('부산')).rejects.toThrow(/disposed/);
    expect(() => other.placement).toThrow(/disposed/);
    await expect(other.dispose()).resolves.toBeUndefined();
  });
});
