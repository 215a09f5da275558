/**
 * Load test of `koner serve`'s HTTP API from a bounded loopback client: autocannon sends
 * `POST /v1/ner` with one KMOU validation sentence per request over C connections for D seconds
 * to a server this script starts on 127.0.0.1 (and only there), then prints throughput and
 * latency percentiles, and how the micro-batcher grouped the texts into model calls.
 *
 *   npm run bench:serve -- [--model DIR] [--small] [--connections 10] [--duration 5]
 *                          [--batch-size 32] [--max-wait-ms 5] [--threads N] [--no-compare]
 *
 * Without --model it builds a random-weight model of KoBERT's shape (12 layers × 768, CRF head;
 * `--small`: 2 layers × 32) in a temporary directory: speed does not depend on the weights. By
 * default the same load is run a second time with batching off (one text per model call), the
 * baseline the batcher is there to beat. Exits 1 when any request failed.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import autocannon from 'autocannon';

import { readKmouCorpus } from '../../lib/corpus/index.js';
import { LABELS } from '../../lib/labels/index.js';
import {
  KOBERT_BASE,
  WEIGHTS_FILE,
  writeModelConfig,
  type ModelConfig,
} from '../../lib/model/config.js';
import { NerModel } from '../../lib/model/ner-model.js';
import { native, packageRoot } from '../../lib/native.js';
import { createServer } from '../../lib/serve/index.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    small: { type: 'boolean' },
    connections: { type: 'string', default: '10' },
    duration: { type: 'string', default: '5' },
    'batch-size': { type: 'string', default: '32' },
    'max-wait-ms': { type: 'string', default: '5' },
    threads: { type: 'string' },
    'no-compare': { type: 'boolean' },
  },
});
const connections = Number(values.connections);
const duration = Number(values.duration);
// Bounded by design: a handful of connections for a few seconds, never an open-ended soak.
if (!(connections >= 1 && connections <= 64) || !(duration > 0 && duration <= 60)) {
  throw new Error('--connections must be 1..64 and --duration 1..60 seconds');
}
const shared = path.resolve(packageRoot, '..', 'shared', 'data');
const tokenizerDir = path.join(shared, 'kobert-tokenizer');

/** A random-weight model directory of KoBERT's shape (or a small one). */
async function randomModel(dir: string, small: boolean): Promise<string> {
  const config: ModelConfig = {
    ...KOBERT_BASE,
    ...(small
      ? { hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 64 }
      : {}),
    labels: [...LABELS],
    tokenizer: {
      model: path.join(tokenizerDir, 'tokenizer_78b3253a26.model'),
      vocab: path.join(tokenizerDir, 'kobertvocab_f38b8a4d6d.json'),
    },
  };
  const model = new (native().Model)(config);
  await model.seed(1);
  await model.saveWeights(path.join(dir, WEIGHTS_FILE));
  await writeModelConfig(dir, config);
  return dir;
}

interface Outcome {
  label: string;
  requests: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  failed: number;
  modelCalls: number;
  meanBatch: number;
}

async function run(model: NerModel, label: string, maxBatch: number, bodies: string[]) {
  const server = createServer(model, { maxBatch, maxWaitMs: Number(values['max-wait-ms']) });
  const url = await server.listen({ host: '127.0.0.1', port: 0 });
  if (!url.startsWith('http://127.0.0.1:')) throw new Error(`refusing to load ${url}`);
  const requests = bodies.map((body) => ({
    method: 'POST' as const,
    path: '/v1/ner',
    headers: { 'content-type': 'application/json' },
    body,
  }));
  try {
    // Warm-up: the first calls pay for lazy initialisation in LibTorch and V8.
    await autocannon({ url, connections: 2, amount: 20, requests });
    const before = server.batcher.stats;
    const result = await autocannon({ url, connections, duration, requests });
    const after = server.batcher.stats;
    const modelCalls = after.batches - before.batches;
    return {
      label,
      requests: result.requests.total,
      rps: result.requests.average,
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
      failed: result.errors + result.timeouts + result.non2xx,
      modelCalls,
      meanBatch: modelCalls ? (after.items - before.items) / modelCalls : 0,
    } satisfies Outcome;
  } finally {
    await server.close();
  }
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-bench-serve-'));
try {
  if (!values.model && !existsSync(tokenizerDir)) throw new Error(`${tokenizerDir} is absent`);
  const dir = values.model ?? (await randomModel(tmp, values.small ?? false));
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  const model = await NerModel.load(dir, { threads });
  const sentences = (await readKmouCorpus(path.join(shared, 'kmou-ner', 'val'))).slice(0, 200);
  const bodies = sentences.map((s) => JSON.stringify({ text: s.text }));
  const meanChars = sentences.reduce((a, s) => a + s.text.length, 0) / sentences.length;
  const c = model.config;
  console.log(
    `model: ${values.model ?? `random, ${c.numHiddenLayers} layers × ${c.hiddenSize}`} ` +
      `(${c.head}), ${model.placement.device}, ${native().getNumThreads()} LibTorch threads, ` +
      `${os.cpus().length} cores`,
  );
  console.log(
    `load: ${connections} connections × ${duration} s against 127.0.0.1, one KMOU val sentence ` +
      `per request (${sentences.length} distinct, mean ${meanChars.toFixed(0)} characters)\n`,
  );
  const outcomes: Outcome[] = [];
  const maxBatch = Number(values['batch-size']);
  outcomes.push(
    await run(model, `batched (≤${maxBatch}, ${values['max-wait-ms']} ms)`, maxBatch, bodies),
  );
  if (!values['no-compare']) outcomes.push(await run(model, 'unbatched (1)', 1, bodies));
  model.dispose();

  const rows = [
    ['server', 'requests', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'calls', 'texts/call'],
    ...outcomes.map((o) => [
      o.label,
      String(o.requests),
      o.rps.toFixed(1),
      String(o.p50),
      String(o.p90),
      String(o.p99),
      String(o.max),
      String(o.modelCalls),
      o.meanBatch.toFixed(1),
    ]),
  ];
  const widths = rows[0].map((_, j) => Math.max(...rows.map((r) => r[j].length)));
  for (const r of rows) {
    console.log(
      r.map((cell, j) => (j === 0 ? cell.padEnd(widths[j]) : cell.padStart(widths[j]))).join('  '),
    );
  }
  const failed = outcomes.reduce((a, o) => a + o.failed, 0);
  if (failed > 0) {
    console.error(`\n${failed} requests failed (errors, timeouts or non-2xx answers)`);
    process.exitCode = 1;
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
