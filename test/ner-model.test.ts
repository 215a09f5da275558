import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readKmouCorpus } from '../lib/corpus/index.js';
import { LABELS, parseTag } from '../lib/labels/index.js';
import { type ModelConfig, writeModelConfig } from '../lib/model/config.js';
import { attachPieces } from '../lib/model/entity-pieces.js';
import {
  bioConstraints,
  NerModel,
  resolveTokenizerFiles,
  type NerEntity,
} from '../lib/model/ner-model.js';
import { planWindows, stitchEmissions, windowOwners } from '../lib/model/windows.js';
import { packageRoot } from '../lib/native.js';
import { makeModelDir } from './fixtures/model-dir.js';

const shared = path.resolve(packageRoot, '..', 'shared');
const tokenizerDir = path.join(shared, 'data', 'kobert-tokenizer');
const haveShared = existsSync(tokenizerDir);
if (!haveShared) console.warn(`ner-model tests skipped: ${tokenizerDir} is absent`);

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

  it('explains a missing tokenizer and missing weights', async () => {
    const cfg = { ...config, tokenizer: { model: 'nope.model', vocab: 'nope.json' } };
    expect(() => resolveTokenizerFiles(tmp, cfg, undefined, path.join(tmp, 'none'))).toThrow(
      /tokenizer files .* not found; looked in: config\.json "tokenizer".*none/,
    );
    const empty = path.join(tmp, 'no-weights');
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
      mkdirSync(d, { recursive: true });
      copyFileSync(path.join(dir, 'model.safetensors'), path.join(d, 'model.safetensors'));
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
    mkdirSync(d, { recursive: true });
    copyFileSync(path.join(dir, 'model.safetensors'), path.join(d, 'model.safetensors'));
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
