import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { LABELS } from '../lib/labels/index.js';
import { NerModel, type NerEntity, type PredictOptions } from '../lib/model/ner-model.js';
import { packageRoot } from '../lib/native.js';
import type { ExplainView } from '../lib/explain/index.js';
import {
  BatcherClosedError,
  createServer,
  MicroBatcher,
  parseExplainRequest,
  parseNerRequest,
  QueueFullError,
  type NerPredictor,
  type NerServer,
} from '../lib/serve/index.js';
import { distinctColours, haveChromium, launchChromium } from './fixtures/chromium.js';
import { makeModelDir } from './fixtures/model-dir.js';

const tokenizerDir = path.resolve(packageRoot, '..', 'shared', 'data', 'kobert-tokenizer');
const haveShared = existsSync(tokenizerDir);
if (!haveShared) console.warn(`serve tests skipped: ${tokenizerDir} is absent`);

/** The little of the DOM the page checks use (the TypeScript config has no DOM library). */
interface DomNode {
  textContent: string | null;
  firstChild: DomNode | null;
  dataset: Record<string, string | undefined>;
  querySelector(selector: string): DomNode | null;
  querySelectorAll(selector: string): { forEach(f: (n: { remove(): void }) => void): void };
  cloneNode(deep: boolean): DomNode;
}

/**
 * A small random model whose classifier always prefers B-PER: every piece with content is its
 * own PER entity, so every answer has entities whose offsets can be checked.
 */
function perModelDir(tmp: string): Promise<string> {
  return makeModelDir(tmp, { tokenizerDir, name: 'per', label: 'B-PER', maxPositions: 64 });
}

function expectValidEntities(text: string, entities: NerEntity[]): void {
  for (const e of entities) {
    expect(e.entity).toBe('PER');
    expect(Number.isInteger(e.start) && Number.isInteger(e.end)).toBe(true);
    expect(0 <= e.start && e.start < e.end && e.end <= text.length).toBe(true);
    expect(text.slice(e.start, e.end)).toBe(e.text);
    expect(e.score).toBeGreaterThan(0);
    expect(e.score).toBeLessThanOrEqual(1);
  }
}

describe('MicroBatcher', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('batches concurrent submissions per key and returns each caller its own results', async () => {
    const calls: [string, number[]][] = [];
    const batcher = new MicroBatcher<number, string>(
      async (key, items) => {
        calls.push([key, items]);
        await sleep(2);
        return items.map((i) => `${key}:${i}`);
      },
      { maxBatch: 4, maxWaitMs: 20 },
    );
    const results = await Promise.all([
      batcher.submit('a', [1, 2]),
      batcher.submit('b', [3]),
      batcher.submit('a', [4, 5, 6]),
      batcher.submit('a', []),
    ]);
    expect(results).toEqual([['a:1', 'a:2'], ['b:3'], ['a:4', 'a:5', 'a:6'], []]);
    // Keys never share a call; a full batch goes at once and the rest follows.
    for (const [key, items] of calls) {
      expect(items.length).toBeLessThanOrEqual(4);
      expect(new Set(items.map((i) => (i === 3 ? 'b' : 'a')))).toEqual(new Set([key]));
    }
    expect(
      calls
        .map((c) => c[1])
        .flat()
        .sort(),
    ).toEqual([1, 2, 3, 4, 5, 6]);
    expect(batcher.stats).toMatchObject({ items: 6, queued: 0, running: 0, largestBatch: 4 });
  });

  it('waits at most maxWaitMs for a partial batch', async () => {
    const batcher = new MicroBatcher<number, number>(async (_k, items) => items, {
      maxBatch: 100,
      maxWaitMs: 10,
    });
    const started = performance.now();
    expect(await batcher.submit('k', [1])).toEqual([1]);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('rejects a full queue, passes runner errors to every caller of the batch, drains on close', async () => {
    let fail = false;
    const batcher = new MicroBatcher<number, number>(
      async (_k, items) => {
        await sleep(5);
        if (fail) throw new Error('model failed');
        return items.map((i) => i * 2);
      },
      { maxBatch: 2, maxWaitMs: 1, maxQueue: 3 },
    );
    // [1, 2] is a full batch and runs at once; [3, 4, 5] waits behind it and fills the queue.
    const first = batcher.submit('k', [1, 2]);
    const second = batcher.submit('k', [3, 4, 5]);
    await expect(batcher.submit('k', [6])).rejects.toBeInstanceOf(QueueFullError);
    expect(await first).toEqual([2, 4]);
    expect(await second).toEqual([6, 8, 10]);
    fail = true;
    const [a, b] = [batcher.submit('k', [1]), batcher.submit('k', [2])];
    await expect(a).rejects.toThrow('model failed');
    await expect(b).rejects.toThrow('model failed');
    fail = false;
    const pending = batcher.submit('k', [5]);
    await batcher.close();
    expect(await pending).toEqual([10]);
    await expect(batcher.submit('k', [1])).rejects.toBeInstanceOf(BatcherClosedError);
  });

  it('drops the items of a caller that gives up, and stops a batch nobody waits for', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const seen: number[][] = [];
    const signals: AbortSignal[] = [];
    const batcher = new MicroBatcher<number, number>(
      async (_k, items, signal) => {
        seen.push(items);
        signals.push(signal);
        await gate;
        return items;
      },
      { maxBatch: 2, maxWaitMs: 0 },
    );
    const a = new AbortController();
    const b = new AbortController();
    const first = batcher.submit('k', [1, 2], a.signal); // runs at once, alone in the runner
    const second = batcher.submit('k', [3], b.signal); // waits behind it
    await new Promise((r) => setTimeout(r, 5));
    b.abort(new Error('client gone'));
    await expect(second).rejects.toThrow('client gone');
    expect(batcher.stats.queued).toBe(0);
    a.abort(new Error('client gone'));
    await expect(first).rejects.toThrow('client gone');
    expect(signals[0].aborted).toBe(true);
    release();
    await batcher.close();
    expect(seen).toEqual([[1, 2]]);
    await expect(batcher.submit('k', [1], AbortSignal.abort())).rejects.toThrow();
  });

  it('rejects when the runner returns the wrong number of results', async () => {
    const batcher = new MicroBatcher<number, number>(async () => [1], { maxWaitMs: 0 });
    await expect(batcher.submit('k', [1, 2])).rejects.toThrow(/1 results for 2 items/);
  });
});

describe('parseNerRequest', () => {
  it('accepts text or texts with options, and names the field it refuses', () => {
    expect(parseNerRequest({ text: '서울' })).toEqual({
      texts: ['서울'],
      single: true,
      nBest: 1,
      constrained: true,
      withProbabilities: false,
    });
    expect(parseNerRequest({ texts: ['a', 'b'], nBest: 3, constrained: false })).toMatchObject({
      texts: ['a', 'b'],
      single: false,
      nBest: 3,
      constrained: false,
    });
    const refused = (body: unknown) => {
      try {
        parseNerRequest(body);
      } catch (error) {
        return error as { statusCode: number; code: string; message: string };
      }
      throw new Error('accepted');
    };
    expect(refused({ texts: ['a', 7] }).message).toMatch(/"texts"\[1\] must be a string/);
    expect(refused({ text: 'a', texts: ['b'] }).code).toBe('invalid_request');
    expect(refused({ nbest: 2, text: 'a' }).message).toMatch(
      /"nbest" is not a known field \(did you mean "nBest"\?\)/,
    );
    expect(refused({ text: 'a', nBest: 1.5 }).statusCode).toBe(400);
    expect(refused({ text: 'a', nBest: 11 }).statusCode).toBe(422);
    expect(refused({ text: 'a', withProbabilities: 'yes' }).statusCode).toBe(400);
    expect(refused(null).statusCode).toBe(400);
  });
});

describe('parseExplainRequest', () => {
  it('accepts a text with layers, heads, topTags and constrained; names what it refuses', () => {
    expect(parseExplainRequest({ text: '서울' })).toEqual({
      text: '서울',
      layers: undefined,
      heads: undefined,
      topTags: undefined,
      constrained: true,
    });
    expect(
      parseExplainRequest({
        text: 'a',
        layers: [1, 0],
        heads: [2],
        topTags: 3,
        constrained: false,
      }),
    ).toEqual({ text: 'a', layers: [1, 0], heads: [2], topTags: 3, constrained: false });
    const refused = (body: unknown) => {
      try {
        parseExplainRequest(body);
      } catch (error) {
        return error as { statusCode: number; code: string; message: string };
      }
      throw new Error('accepted');
    };
    expect(refused({ texts: ['a'] }).message).toMatch(/"texts" is not a known field/);
    expect(refused({ text: 5 }).message).toMatch(/"text" must be a string/);
    expect(refused({ text: 'a', layers: [] }).message).toMatch(/"layers" must be a non-empty/);
    expect(refused({ text: 'a', heads: [-1] }).statusCode).toBe(400);
    expect(refused({ text: 'a', heads: 'all' }).statusCode).toBe(400);
    expect(refused({ text: 'a', topTags: 0 }).message).toMatch(/"topTags"/);
    const long = refused({ text: 'a'.repeat(501) });
    expect([long.statusCode, long.code]).toEqual([422, 'text_too_long']);
  });
});

describe.skipIf(!haveShared)('HTTP server', () => {
  let tmp: string;
  let model: NerModel;
  let server: NerServer;
  let url: string;
  const calls = { predict: 0, predictPaths: 0 };

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-serve-'));
    // One thread: a training run may be using the other cores of this machine.
    model = await NerModel.load(await perModelDir(tmp), { threads: 1 });
    // The model as the server sees it, counting its calls; a text "__fail__" makes it throw.
    const counting: NerPredictor = {
      labels: model.labels,
      dir: model.dir,
      config: model.config,
      get placement() {
        return model.placement;
      },
      predict(texts, options) {
        calls.predict++;
        if (texts.includes('__fail__')) return Promise.reject(new Error('the model failed'));
        return model.predict(texts, options as PredictOptions & { withProbabilities?: false });
      },
      predictPaths(texts, nBest, options) {
        calls.predictPaths++;
        return model.predictPaths(texts, nBest, options);
      },
      explain: (text, options) => model.explain(text, options),
    };
    server = createServer(counting, { maxWaitMs: 5 });
    url = await server.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await server?.close();
    model?.dispose();
    rmSync(tmp, { recursive: true, force: true });
  });

  const post = (body: unknown, init: RequestInit = {}) =>
    fetch(`${url}/v1/ner`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      ...init,
    });

  async function expectError(response: Response, status: number, code: string): Promise<string> {
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(typeof body.error.message).toBe('string');
    return body.error.message;
  }

  it('listens on the loopback address it was given', () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('answers a single text with entities, offsets and scores', async () => {
    const text = '이순신은 1545년 한성에서 태어났다.';
    const response = await post({ text });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { entities: NerEntity[] };
    expect(Object.keys(body)).toEqual(['entities']);
    expect(body.entities.length).toBeGreaterThan(2);
    expectValidEntities(text, body.entities);
    expect(body.entities).toEqual(await model.predict(text));
  });

  it('answers several texts in order, the empty text included', async () => {
    const texts = ['서울에서 부산까지', '', '😀 대한민국 😀', '  ', 'a\ud800b 서울 \udfff'];
    const response = await post({ texts });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { results: { entities: NerEntity[] }[] };
    expect(body.results.length).toBe(texts.length);
    body.results.forEach((r, i) => expectValidEntities(texts[i], r.entities));
    expect(body.results[0].entities.length).toBeGreaterThan(0);
    expect(body.results[1].entities).toEqual([]);
    expect(body.results[3].entities).toEqual([]);
    expect(body.results.map((r) => r.entities)).toEqual(await model.predict(texts));
  });

  it('passes nBest, constrained and withProbabilities through', async () => {
    const text = '부산 해양대학교';
    const paths = (await (await post({ text, nBest: 3 })).json()) as {
      entities: NerEntity[];
      paths: { score: number; entities: NerEntity[] }[];
    };
    expect(paths.paths.length).toBe(3);
    expect(paths.paths[0].score).toBeGreaterThanOrEqual(paths.paths[1].score);
    expect(paths.entities).toEqual(paths.paths[0].entities);
    const loose = await post({ text, constrained: false });
    expect(loose.status).toBe(200);
    const probs = (await (await post({ texts: [text], withProbabilities: true })).json()) as {
      results: { entities: (NerEntity & { pieces: { tag: string; probability: number }[] })[] }[];
    };
    const [first] = probs.results[0].entities;
    expect(first.pieces.length).toBeGreaterThan(0);
    expect(first.pieces[0].tag).toBe('B-PER');
    expect(first.pieces[0].probability).toBeGreaterThan(0.5);
  });

  it('reports health: model loaded, labels, device', async () => {
    const response = await fetch(`${url}/healthz`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      status: string;
      model: { name: string; labels: string[]; device: string; dtype: string; head: string };
      batching: { maxBatch: number; batches: number };
    };
    expect(body.status).toBe('ok');
    expect(body.model).toMatchObject({ name: 'per', device: 'cpu', dtype: 'float32', head: 'crf' });
    expect(body.model.labels).toEqual(LABELS);
    expect(body.batching.maxBatch).toBe(32);
  });

  it('serves the page', async () => {
    const response = await fetch(`${url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await response.text()).toContain('<textarea id="input"');
  });

  it('refuses a body over the limit with 413', async () => {
    const big = JSON.stringify({ text: '가'.repeat(400_000) }); // 1.2 MB of UTF-8
    await expectError(await post(big), 413, 'payload_too_large');
  });

  it('refuses malformed JSON, a wrong content type and an empty body with 4xx', async () => {
    await expectError(await post('{"text": "서울"'), 400, 'invalid_json');
    await expectError(await post('{"text": "a", "text": }'), 400, 'invalid_json');
    await expectError(await post(''), 400, 'invalid_json');
    await expectError(
      await post('{"text":"a"}', { headers: { 'content-type': 'text/plain' } }),
      415,
      'unsupported_media_type',
    );
    // secure-json-parse refuses prototype poisoning rather than passing it on.
    await expectError(await post('{"__proto__": {"x": 1}, "text": "a"}'), 400, 'invalid_json');
  });

  it('refuses wrong types with 400 and requests over the limits with 422', async () => {
    expect(await expectError(await post({ text: 42 }), 400, 'invalid_request')).toMatch(
      /"text" must be a string, got a number/,
    );
    await expectError(await post({ texts: 'one' }), 400, 'invalid_request');
    await expectError(await post({ texts: { 0: 'a' } }), 400, 'invalid_request');
    await expectError(await post({ texts: ['a', null] }), 400, 'invalid_request');
    await expectError(await post([{ text: 'a' }]), 400, 'invalid_request');
    await expectError(await post('"just a string"'), 400, 'invalid_request');
    await expectError(await post({}), 400, 'invalid_request');
    await expectError(await post({ text: 'a', nBest: 0 }), 400, 'invalid_request');
    // Deeply nested JSON is described, never echoed (stringifying it would overflow the stack).
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    await expectError(await post(`{"text": "a", "nBest": ${deep}}`), 400, 'invalid_request');
    await expectError(await post(`{"texts": [${deep}]}`), 400, 'invalid_request');
    await expectError(await post({ text: 'a', nBest: 11 }), 422, 'n_best_too_large');
    await expectError(await post({ texts: new Array(257).fill('a') }), 422, 'too_many_texts');
    expect(
      await expectError(await post({ text: 'a'.repeat(100_001) }), 422, 'text_too_long'),
    ).toMatch(/100001 characters; the limit is 100000/);
    await expectError(await post({ texts: ['ok', 'a'.repeat(100_001)] }), 422, 'text_too_long');
  });

  const explain = (body: unknown) =>
    fetch(`${url}/v1/explain`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('explains a text: tokens with their likeliest tags, entities, attention maps', async () => {
    const text = '세종대왕은 한글을 만들었다.';
    const response = await explain({ text, layers: [1], heads: [0, 3], topTags: 2 });
    expect(response.status).toBe(200);
    const view = (await response.json()) as ExplainView;
    const direct = await model.explain(text, { layers: [1], heads: [0, 3] });
    expect(view.text).toBe(text);
    expect(view.model).toBe('per');
    expect(view.layers).toEqual([1]);
    expect(view.heads).toEqual([0, 3]);
    expect(view.tokens.map((t) => t.piece)).toEqual(direct.tokens.map((t) => t.piece));
    expect(view.tokens.every((t) => t.top.length === 2)).toBe(true);
    expect(view.tokens[1].top[0].tag).toBe('B-PER');
    expect(view.entities).toEqual(direct.entities);
    const N = view.tokens.length;
    const maps = Buffer.from(view.attention, 'base64');
    expect(maps.length).toBe(2 * N * N * 4);
    expect(maps.readFloatLE(4 * (N * N + 5))).toBe(direct.attentions[0][1][5]);
  });

  it('refuses bad explain requests: 400 for types, 422 for ranges and long texts', async () => {
    await expectError(await explain({ text: 1 }), 400, 'invalid_request');
    await expectError(await explain({ text: 'a', layers: 'all' }), 400, 'invalid_request');
    expect(
      await expectError(await explain({ text: 'a', layers: [2] }), 422, 'out_of_range'),
    ).toMatch(/layers\[0\] = 2 is out of range: the model has 2 layers/);
    await expectError(await explain({ text: 'a', heads: [4] }), 422, 'out_of_range');
    await expectError(await explain({ text: '가'.repeat(501) }), 422, 'text_too_long');
    // A model without explain (a stand-in) answers 501.
    const bare = createServer({
      labels: model.labels,
      placement: { device: 'cpu', dtype: 'float32' },
      predict: (texts) => Promise.resolve(texts.map(() => [])),
      predictPaths: (texts) => Promise.resolve(texts.map(() => [])),
    });
    const answer = await bare.app.inject({
      method: 'POST',
      url: '/v1/explain',
      payload: { text: 'a' },
    });
    expect(answer.statusCode).toBe(501);
    expect(answer.json()).toMatchObject({ error: { code: 'not_implemented' } });
    await bare.close();
  });

  it('answers unknown routes and methods with a JSON 404', async () => {
    await expectError(await fetch(`${url}/v2/ner`), 404, 'not_found');
    await expectError(await fetch(`${url}/v1/ner`), 404, 'not_found');
    await expectError(await fetch(`${url}/healthz`, { method: 'DELETE' }), 404, 'not_found');
  });

  it('answers a model failure with 500 and keeps serving', async () => {
    await expectError(await post({ text: '__fail__' }), 500, 'internal_error');
    expect((await post({ text: '서울' })).status).toBe(200);
  });

  it('batches 50 concurrent requests into fewer model calls, each answer its own', async () => {
    const texts = Array.from({ length: 50 }, (_, i) => `${i + 1}번째 문장은 서울에서 ${i * 7}일`);
    const expected = await model.predict(texts);
    const before = { ...calls };
    const statsBefore = server.batcher.stats;
    const responses = await Promise.all(texts.map((text) => post({ text })));
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as {
      entities: NerEntity[];
    }[];
    responses.forEach((r) => expect(r.status).toBe(200));
    bodies.forEach((b, i) => {
      expectValidEntities(texts[i], b.entities);
      expect(b.entities).toEqual(expected[i]);
    });
    const modelCalls = calls.predict - before.predict;
    const stats = server.batcher.stats;
    expect(modelCalls).toBeGreaterThan(0);
    expect(modelCalls).toBeLessThan(50);
    expect(stats.batches - statsBefore.batches).toBe(modelCalls);
    expect(stats.items - statsBefore.items).toBe(50);
    expect(stats.largestBatch).toBeGreaterThan(1);
  });

  it('is still alive and healthy after all of that', async () => {
    const health = (await (await fetch(`${url}/healthz`)).json()) as { status: string };
    expect(health.status).toBe('ok');
    const response = await post({ text: '마지막으로 부산' });
    expect(response.status).toBe(200);
  });

  it('closes gracefully: requests in progress are answered, then it stops listening', async () => {
    const other = createServer(model, { maxWaitMs: 50 });
    const otherUrl = await other.listen({ port: 0 });
    const inFlight = fetch(`${otherUrl}/v1/ner`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: '닫히기 전에 서울' }),
    });
    // The close begins while the request waits in the batcher (for up to 50 ms).
    while (other.batcher.stats.queued === 0) await new Promise((r) => setTimeout(r, 1));
    const closed = other.close();
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(((await response.json()) as { entities: unknown[] }).entities.length).toBeGreaterThan(0);
    await closed;
    await expect(fetch(`${otherUrl}/healthz`)).rejects.toThrow();
  });
});

describe('HTTP server: cost, lanes, departed clients, every refusal in the API shape', () => {
  /** A stand-in model: a text starting with "slow" waits for `release`; calls are recorded. */
  function gatedModel() {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const calls: { texts: string[]; signal?: AbortSignal }[] = [];
    const model: NerPredictor = {
      labels: ['O'],
      placement: { device: 'cpu', dtype: 'float32' },
      async predict(texts, options) {
        calls.push({ texts, signal: options.signal });
        if (texts.some((t) => t.startsWith('slow'))) await gate;
        options.signal?.throwIfAborted();
        return texts.map(() => []);
      },
      predictPaths: (texts) => Promise.resolve(texts.map(() => [])),
    };
    return { model, calls, release: () => release() };
  }

  /** Sends raw bytes and resolves with the status and the parsed JSON body. */
  function raw(port: number, data: string): Promise<{ status: number; body: unknown }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write(data));
      let out = '';
      socket.on('data', (d) => (out += String(d)));
      socket.on('error', reject);
      socket.on('close', () => {
        const [head, body] = out.split('\r\n\r\n');
        resolve({ status: Number(head.split(' ')[1]), body: JSON.parse(body) as unknown });
      });
    });
  }

  const errorShape = { error: { code: expect.any(String), message: expect.any(String) } };

  it('answers a light request while a heavy one holds the model', async () => {
    const { model, calls, release } = gatedModel();
    const server = createServer(model, { heavyTextLength: 100 });
    const heavy = server.app.inject({
      method: 'POST',
      url: '/v1/ner',
      payload: { texts: ['slow'.padEnd(5000, ' 부산'), '짧은 문장'] },
    });
    while (calls.length === 0) await new Promise((r) => setTimeout(r, 1));
    const light = await server.app.inject({
      method: 'POST',
      url: '/v1/ner',
      payload: { text: '서울' },
    });
    expect(light.statusCode).toBe(200);
    release();
    const answer = await heavy;
    expect(answer.statusCode).toBe(200);
    expect(answer.json<{ results: unknown[] }>().results).toHaveLength(2);
    await server.close();
  });

  it('limits a request by its characters, not only by its texts', async () => {
    const { model } = gatedModel();
    const server = createServer(model);
    const texts = new Array(3).fill('a'.repeat(100_000));
    const answer = await server.app.inject({ method: 'POST', url: '/v1/ner', payload: { texts } });
    expect(answer.statusCode).toBe(422);
    expect(answer.json()).toEqual({
      error: {
        code: 'request_too_long',
        message: '"texts" have 300000 characters in all; the limit is 200000 per request',
      },
    });
    await server.close();
  });

  it('drops the work of a client that has gone', async () => {
    const { model, calls, release } = gatedModel();
    const server = createServer(model, { heavyTextLength: 100 });
    const url = new URL(await server.listen({ port: 0 }));
    const send = (text: string) => {
      const request = http.request(url.origin + '/v1/ner', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      });
      request.on('error', () => {});
      request.end(JSON.stringify({ text }));
      return request;
    };
    const running = send('slow'.padEnd(500, ' 부산')); // in the heavy lane, waiting at the gate
    while (calls.length === 0) await new Promise((r) => setTimeout(r, 1));
    running.destroy();
    await vi.waitFor(() => expect(calls[0].signal?.aborted).toBe(true));
    // A light request behind a busy light lane, whose client leaves before its turn.
    const blocker = send('slow light'); // holds the light lane
    await vi.waitFor(() => expect(calls).toHaveLength(2));
    const queued = send('never run');
    await vi.waitFor(() => expect(server.batcher.stats.queued).toBe(1));
    queued.destroy();
    await vi.waitFor(() => expect(server.batcher.stats.queued).toBe(0));
    release();
    await new Promise((r) => blocker.on('response', r));
    expect(calls.flatMap((c) => c.texts)).not.toContain('never run');
    await server.close();
  });

  it('answers what Node refuses before routing with { error: { code, message } }', async () => {
    const { model } = gatedModel();
    const server = createServer(model, { requestTimeoutMs: 500 });
    const port = Number(new URL(await server.listen({ port: 0 })).port);
    const badUrl = await raw(port, 'GET /% HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(badUrl).toEqual({ status: 400, body: errorShape });
    const garbage = await raw(port, 'HELLO THERE\r\n\r\n');
    expect(garbage).toEqual({ status: 400, body: errorShape });
    const big = await raw(
      port,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(big).toEqual({
      status: 431,
      body: { error: { code: 'headers_too_large', message: expect.any(String) } },
    });
    // A body that never arrives: 408 after the timeout (Node once took a minute or more).
    const started = performance.now();
    const slow = await raw(
      port,
      'POST /v1/ner HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n' +
        'content-length: 100\r\n\r\n{"te',
    );
    expect(slow).toEqual({
      status: 408,
      body: { error: { code: 'request_timeout', message: expect.any(String) } },
    });
    expect(performance.now() - started).toBeLessThan(10_000);
    await server.close();
  }, 20_000);
});

if (!haveChromium) console.warn('page test skipped: no Chromium');

describe.skipIf(!haveShared || !haveChromium)('the page in headless Chromium', () => {
  let tmp: string;
  let model: NerModel;
  let server: NerServer;
  let url: string;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-page-'));
    model = await NerModel.load(await perModelDir(tmp), { threads: 1 });
    server = createServer(model);
    url = await server.listen({ port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    model?.dispose();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('highlights the entities of a typed sentence; a click shows probabilities and attention', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 900, height: 760 } });
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(url);
      const text = '세종대왕은 한글을 만들었다.';
      await page.fill('#input', text);
      await page.click('#run');
      await page.waitForSelector('#highlighted mark.ent');
      const marks = await page.$$eval('#highlighted mark.ent', (nodes) =>
        (nodes as unknown as DomNode[]).map((n) => ({
          type: n.dataset.type,
          text: n.firstChild?.textContent,
          tag: n.querySelector('.tag')?.textContent,
          score: Number(n.querySelector('.score')?.textContent),
        })),
      );
      expect(marks.length).toBeGreaterThan(1);
      for (const m of marks) {
        expect(m.type).toBe('PER');
        expect(m.tag).toBe('PER');
        expect(text).toContain(m.text);
        expect(m.score).toBeGreaterThan(0.5);
      }
      // The highlighted text reads as the input once the labels are taken out.
      const plain = await page.$eval('#highlighted', (node) => {
        const copy = (node as unknown as DomNode).cloneNode(true);
        copy.querySelectorAll('.tag, .score').forEach((n) => n.remove());
        return copy.textContent;
      });
      expect(plain).toBe(text);
      expect(await page.$$eval('#list tr', (rows) => rows.length)).toBe(marks.length + 1);
      expect(await page.textContent('#markup')).toContain(':PER>');
      expect(await page.textContent('#status')).toMatch(/개 개체/);

      // The explain view arrives below; clicking the second entity selects its first piece.
      await page.waitForSelector('#explain .kv-svg');
      const view = (await (
        await fetch(`${url}/v1/explain`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ text }),
        })
      ).json()) as ExplainView;
      const N = view.tokens.length;
      expect(await page.$$eval('#explain .kv-piece', (n) => n.length)).toBe(N);
      const lines = () => page.$$eval('#explain .kv-lines line', (n) => n.length);
      const allLines = await lines();
      expect(allLines).toBeGreaterThan(N);
      await page.click('#highlighted mark.ent >> nth=1');
      const start = Number(
        await page.$eval(
          '#highlighted mark.ent >> nth=1',
          (n) => (n as unknown as DomNode).dataset.start,
        ),
      );
      const q = view.tokens.findIndex((t, i) => i > 0 && t.end > start);
      expect(await page.textContent('#explain .kv-selected-piece')).toBe(view.tokens[q].piece);
      expect(await page.$$eval('#explain .kv-detail .kv-bar', (n) => n.length)).toBe(
        view.tokens[q].top.length,
      );
      expect(await page.textContent('#explain .kv-detail .kv-bar-tag')).toBe('B-PER');
      const selectedLines = await lines();
      expect(selectedLines).toBeGreaterThan(0);
      expect(selectedLines).toBeLessThanOrEqual(N);
      // Another layer and head: the lines of that map.
      await page.selectOption('#explain select.kv-layer', '1');
      await page.selectOption('#explain select.kv-head', '3');
      expect(await page.textContent('#explain .kv-caption')).toContain('layer 1 · 헤드 head 3');
      // Clicking a piece selects it.
      await page.click(`#explain .kv-piece[data-index="1"]`);
      expect(await page.textContent('#explain .kv-selected-piece')).toBe(view.tokens[1].piece);

      const shot = await page.screenshot({ fullPage: true });
      expect(await distinctColours(browser, shot)).toBeGreaterThan(20);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
