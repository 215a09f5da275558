import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { bundledTokenizerFiles } from '../../lib/model/default-model.js';
import {
  batchingFingerprint,
  collate,
  epochBatches,
  iterateBatches,
  padSequences,
  planSteps,
  shard,
  type BatchCursor,
  type BatchingOptions,
} from '../../lib/train/batching.js';
import {
  checkpointDir,
  parseTrainerState,
  readTrainerState,
  recoverAtomicDir,
  TRAINER_STATE_FILE,
  trainerStateToJson,
  writeAtomicDir,
  writeFileAtomic,
  writeTrainerState,
  type AtomicWriteStage,
  type TrainerState,
} from '../../lib/train/checkpoint-files.js';
import {
  checkTrainConfigPaths,
  DEFAULT_SCRATCH_SIZE,
  defaultTokenizerFiles,
  loadTrainConfig,
  packageRoot,
  parseTrainConfig,
  PRETRAINED_RECIPE,
  SCRATCH_RECIPE,
  suggestField,
  TrainConfigError,
  trainConfigToJson,
  type TrainConfig,
} from '../../lib/train/config.js';
import { EarlyStopping } from '../../lib/train/early-stop.js';
import { MetricsLog, metricCurve, parseMetrics, readMetrics } from '../../lib/train/metrics-log.js';
import { formatDuration, ProgressReporter, type ProgressStream } from '../../lib/train/progress.js';
import { Rng } from '../../lib/train/rng.js';
import { LinearSchedule, linearWarmupDecay, warmupStepsFor } from '../../lib/train/schedule.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'koner-train-test-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// config.ts

const TOKENIZER = { model: '/tok/sp.model', vocab: '/tok/vocab.json' };
const CONFIG_FILE = '/runs/exp/train.json';

function minimal(init = 'models/kobert'): Record<string, unknown> {
  return {
    corpus: { format: 'kmou', train: 'data/train', validation: 'data/val' },
    model: { init },
    output: 'out',
  };
}

function parse(raw: unknown): TrainConfig {
  return parseTrainConfig(raw, CONFIG_FILE, { defaultTokenizer: TOKENIZER });
}

function issuesOf(raw: unknown): { field: string; problem: string }[] {
  try {
    parse(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(TrainConfigError);
    return [...(error as TrainConfigError).issues];
  }
  throw new Error('expected the config to be rejected');
}

// Applies `value` at a dotted path of a fresh minimal config (undefined deletes).
function withField(field: string, value: unknown, base = minimal()): Record<string, unknown> {
  const keys = field.split('.');
  let obj = base as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) {
    if (typeof obj[k] !== 'object' || obj[k] === null) obj[k] = {};
    obj = obj[k] as Record<string, unknown>;
  }
  const last = keys[keys.length - 1];
  if (value === undefined) delete obj[last];
  else obj[last] = value;
  return base;
}

describe('train config', () => {
  it('fills the pretrained recipe defaults and resolves paths against the config file', () => {
    const c = parse(minimal());
    expect(c.corpus).toEqual({
      format: 'kmou',
      train: ['/runs/exp/data/train'],
      validation: ['/runs/exp/data/val'],
    });
    expect(c.model).toEqual({
      init: '/runs/exp/models/kobert',
      size: null,
      head: 'crf',
      dropout: 0.1,
      rnnHiddenSize: null,
      posWeight: null,
      syllables: false,
    });
    expect(c.output).toBe('/runs/exp/out');
    expect(c.tokenizer).toEqual(TOKENIZER);
    expect(c.optimizer).toEqual({ lr: 5e-5, weightDecay: 0.01, betas: [0.9, 0.999], eps: 1e-8 });
    expect(c.schedule).toEqual({ kind: 'linear', warmupRatio: 0.1 });
    expect(c).toMatchObject({
      maxLength: 128,
      batchSize: 32,
      batchTokens: null,
      epochs: 10,
      maxSteps: null,
      clipNorm: 1,
      gradAccumulation: 1,
      seed: 100,
      evalEvery: 0,
      earlyStopping: { patience: 3, metric: 'entityF1', minDelta: 0 },
      device: 'cpu',
      dtype: 'float32',
      threads: 'auto',
      logEvery: 50,
    });
    expect(PRETRAINED_RECIPE.lr).toBe(5e-5);
  });

  it('uses the from-scratch recipe and a default size for "scratch"', () => {
    const c = parse(minimal('scratch'));
    expect(c.model.init).toBe('scratch');
    expect(c.model.size).toEqual(DEFAULT_SCRATCH_SIZE);
    expect(c.optimizer.lr).toBe(SCRATCH_RECIPE.lr);
    expect(c.epochs).toBe(SCRATCH_RECIPE.epochs);
    expect(c.earlyStopping?.patience).toBe(SCRATCH_RECIPE.patience);
    const partial = parse(withField('model.size', { hiddenSize: 128 }, minimal('scratch')));
    expect(partial.model.size).toEqual({ ...DEFAULT_SCRATCH_SIZE, hiddenSize: 128 });
  });

  it('keeps absolute paths, accepts path lists and a directory literally named scratch', () => {
    const c = parse({
      ...minimal('./scratch'),
      corpus: { format: 'conll', train: ['/abs/a.conll', 'b.conll'], validation: 'dev.conll' },
      tokenizer: { model: 'tok/sp.model', vocab: '/v.json' },
    });
    expect(c.model.init).toBe('/runs/exp/scratch');
    expect(c.corpus.train).toEqual(['/abs/a.conll', '/runs/exp/b.conll']);
    expect(c.tokenizer).toEqual({ model: '/runs/exp/tok/sp.model', vocab: '/v.json' });
    const based = parseTrainConfig(minimal(), 'inline', {
      baseDir: '/elsewhere',
      defaultTokenizer: TOKENIZER,
    });
    expect(based.output).toBe('/elsewhere/out');
  });

  it('finds the KoBERT tokenizer beside the package root by default', () => {
    expect(packageRoot()).toBe(repoRoot);
    const shared = path.resolve(repoRoot, '../shared/data/kobert-tokenizer');
    const files = defaultTokenizerFiles();
    if (existsSync(path.join(shared, 'tokenizer_78b3253a26.model'))) {
      expect(files).toEqual({
        model: path.join(shared, 'tokenizer_78b3253a26.model'),
        vocab: path.join(shared, 'kobertvocab_f38b8a4d6d.json'),
      });
      expect(parseTrainConfig(minimal(), CONFIG_FILE).tokenizer).toEqual(files);
    } else {
      expect(files).toEqual(bundledTokenizerFiles());
    }
    const missing = (() => {
      try {
        parseTrainConfig(minimal(), CONFIG_FILE, { defaultTokenizer: null });
      } catch (error) {
        return (error as TrainConfigError).issues;
      }
    })();
    expect(missing?.map((i) => i.field)).toEqual(['tokenizer']);
  });

  const bad: [string, unknown, string, Record<string, unknown>?][] = [
    ['corpus', undefined, 'corpus'],
    ['corpus', 'data', 'corpus'],
    ['corpus.format', 'json', 'corpus.format'],
    ['corpus.format', undefined, 'corpus.format'],
    ['corpus.train', undefined, 'corpus.train'],
    ['corpus.train', [], 'corpus.train'],
    ['corpus.train', ['a', 3], 'corpus.train[1]'],
    ['corpus.validation', 5, 'corpus.validation'],
    ['tokenizer', { model: 'x' }, 'tokenizer.vocab'],
    ['tokenizer.model', '', 'tokenizer.model'],
    ['model', undefined, 'model'],
    ['model.init', undefined, 'model.init'],
    ['model.init', 3, 'model.init'],
    ['model.size', { hiddenSize: 64 }, 'model.size'],
    ['model.size.hiddenSize', 0, 'model.size.hiddenSize', minimal('scratch')],
    ['model.size.numAttentionHeads', 5, 'model.size.numAttentionHeads', minimal('scratch')],
    ['model.head', 'lstm', 'model.head'],
    ['model.dropout', 1, 'model.dropout'],
    ['model.rnnHiddenSize', 128, 'model.rnnHiddenSize'],
    ['maxLength', 2, 'maxLength'],
    ['maxLength', 1024, 'maxLength', minimal('scratch')],
    ['batchSize', 0, 'batchSize'],
    ['batchSize', 1.5, 'batchSize'],
    ['batchTokens', 64, 'batchTokens'],
    ['epochs', 0, 'epochs'],
    ['maxSteps', -1, 'maxSteps'],
    ['optimizer.lr', 0, 'optimizer.lr'],
    ['optimizer.lr', '5e-5', 'optimizer.lr'],
    ['optimizer.weightDecay', -0.1, 'optimizer.weightDecay'],
    ['optimizer.betas', [0.9], 'optimizer.betas'],
    ['optimizer.betas', [0.9, 1], 'optimizer.betas'],
    ['optimizer.eps', 0, 'optimizer.eps'],
    ['schedule.kind', 'cosine', 'schedule.kind'],
    ['schedule.warmupRatio', 1, 'schedule.warmupRatio'],
    ['schedule.warmupSteps', 1.5, 'schedule.warmupSteps'],
    ['clipNorm', -1, 'clipNorm'],
    ['gradAccumulation', 0, 'gradAccumulation'],
    ['seed', -1, 'seed'],
    ['seed', 2 ** 32, 'seed'],
    ['evalEvery', -1, 'evalEvery'],
    ['earlyStopping.patience', 0, 'earlyStopping.patience'],
    ['earlyStopping.metric', 'loss', 'earlyStopping.metric'],
    ['earlyStopping.minDelta', -1, 'earlyStopping.minDelta'],
    ['output', undefined, 'output'],
    ['output', 42, 'output'],
    ['device', 'gpu', 'device'],
    ['device', 'cuda:01', 'device'],
    ['dtype', 'int8', 'dtype'],
    ['dtype', 'bfloat16', 'dtype'],
    ['threads', 0, 'threads'],
    ['logEvery', 0, 'logEvery'],
  ];
  it.each(bad)('rejects %s = %j, naming %s', (field, value, named, base) => {
    const issues = issuesOf(withField(field, value, structuredClone(base ?? minimal())));
    expect(issues.map((i) => i.field)).toContain(named);
    const issue = issues.find((i) => i.field === named);
    expect(issue?.problem.length).toBeGreaterThan(5);
  });

  it('puts the field path and the problem in the message', () => {
    expect(() => parse(withField('optimizer.lr', -1))).toThrow(
      '/runs/exp/train.json: field "optimizer.lr" must be a positive number, got -1',
    );
    expect(() => parse(42)).toThrow(/must be a JSON object/);
  });

  it('quotes only values the file gave: an invalid maxLength is not compared with other fields', () => {
    const scratch = withField('model.size', { maxPositionEmbeddings: 64 }, minimal('scratch'));
    for (const raw of [
      { ...scratch, maxLength: 2 },
      { ...minimal(), maxLength: 2, batchTokens: 100 },
    ]) {
      const issues = issuesOf(raw);
      expect(issues).toEqual([{ field: 'maxLength', problem: 'must be an integer ≥ 3, got 2' }]);
    }
  });

  it('reports every problem at once', () => {
    const raw = withField('batchSize', 0, withField('optimizer.eps', -1, withField('seed', 'x')));
    const issues = issuesOf(raw);
    expect(issues.map((i) => i.field).sort()).toEqual(['batchSize', 'optimizer.eps', 'seed']);
    expect(() => parse(raw)).toThrow(
      /3 problems:\n {2}field "batchSize" must be an integer ≥ 1, got 0\n/,
    );
  });

  it('rejects warmupRatio and warmupSteps together, and warmup longer than maxSteps', () => {
    const both = withField('schedule', { warmupRatio: 0.1, warmupSteps: 10 });
    expect(issuesOf(both).map((i) => i.field)).toEqual(['schedule.warmupSteps']);
    const long = withField('maxSteps', 5, withField('schedule', { warmupSteps: 10 }));
    expect(issuesOf(long)[0].problem).toMatch(/must not exceed maxSteps/);
    expect(parse(withField('schedule', { warmupSteps: 10 })).schedule).toEqual({
      kind: 'linear',
      warmupSteps: 10,
    });
  });

  it('accepts half precision on CUDA only', () => {
    const c = parse(withField('dtype', 'bfloat16', withField('device', 'cuda:1')));
    expect(c).toMatchObject({ device: 'cuda:1', dtype: 'bfloat16' });
    expect(issuesOf(withField('dtype', 'float16'))[0].problem).toMatch(/needs a CUDA device/);
  });

  it('turns early stopping off with null and takes an RNN size for RNN heads', () => {
    expect(parse(withField('earlyStopping', null)).earlyStopping).toBeNull();
    const c = parse(withField('model', { init: 'm', head: 'bigru-crf', rnnHiddenSize: 200 }));
    expect(c.model).toMatchObject({ head: 'bigru-crf', rnnHiddenSize: 200 });
  });

  it('rejects unknown fields with a "did you mean" for near misses', () => {
    const cases: [string, unknown, string, string | undefined][] = [
      ['learning_rate', 1e-4, 'learning_rate', 'optimizer.lr'],
      ['batch_size', 8, 'batch_size', 'batchSize'],
      ['epoch', 3, 'epoch', 'epochs'],
      ['max_grad_norm', 1, 'max_grad_norm', 'clipNorm'],
      ['warmup_proportion', 0.1, 'warmup_proportion', 'schedule.warmupRatio'],
      ['optimizer.learningRate', 1e-4, 'optimizer.learningRate', 'optimizer.lr'],
      ['model.haed', 'crf', 'model.haed', 'model.head'],
      ['corpus.valid', 'x', 'corpus.valid', 'corpus.validation'],
      ['frobnicate', 1, 'frobnicate', undefined],
      ['constructor', 1, 'constructor', undefined],
    ];
    for (const [field, value, named, suggestion] of cases) {
      const issues = issuesOf(withField(field, value));
      expect(issues.map((i) => i.field)).toEqual([named]);
      if (suggestion) expect(issues[0].problem).toContain(`did you mean "${suggestion}"?`);
      else expect(issues[0].problem).toBe('is not a known field');
    }
    expect(suggestField('gradient_accumulation_steps', '', ['gradAccumulation'])).toBe(
      'gradAccumulation',
    );
    expect(parse({ ...minimal(), $schema: 'x' }).batchSize).toBe(32);
  });

  it('round-trips through trainConfigToJson', () => {
    const configs = [
      parse(minimal()),
      parse(
        withField(
          'model',
          { init: 'scratch', size: { numHiddenLayers: 2 }, head: 'bilstm-crf', rnnHiddenSize: 64 },
          withField('schedule', { warmupSteps: 3 }, withField('earlyStopping', null)),
        ),
      ),
    ];
    for (const c of configs) {
      const json = JSON.parse(JSON.stringify(trainConfigToJson(c)));
      expect(parse(json)).toEqual(c);
    }
  });

  it('loads a file, resolving paths against its directory', async () => {
    const dir = path.join(tmp, 'cfg');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'train.json');
    await writeFile(file, JSON.stringify(minimal()));
    const c = await loadTrainConfig(file, { defaultTokenizer: TOKENIZER });
    expect(c.output).toBe(path.join(dir, 'out'));
    // A byte-order mark (as Windows editors write) is not part of the JSON.
    await writeFile(file, `\uFEFF${JSON.stringify(minimal())}`);
    expect(await loadTrainConfig(file, { defaultTokenizer: TOKENIZER })).toEqual(c);
    await writeFile(file, '{ "corpus": ');
    await expect(loadTrainConfig(file)).rejects.toThrow(`${file}: not valid JSON`);
    await expect(loadTrainConfig(path.join(dir, 'none.json'))).rejects.toThrow(/ENOENT/);
  });

  it('checks paths on disk, naming the field', async () => {
    const dir = path.join(tmp, 'paths');
    await mkdir(path.join(dir, 'data/train'), { recursive: true });
    await mkdir(path.join(dir, 'model'), { recursive: true });
    await writeFile(path.join(dir, 'data/val.txt'), '');
    await writeFile(path.join(dir, 'sp.model'), '');
    await writeFile(path.join(dir, 'vocab.json'), '{}');
    await writeFile(path.join(dir, 'model/config.json'), '{"max_position_embeddings": 64}');
    const raw = {
      corpus: { format: 'kmou', train: 'data/train', validation: 'data/val.txt' },
      tokenizer: { model: 'sp.model', vocab: 'vocab.json' },
      model: { init: 'model' },
      maxLength: 64,
      output: 'out',
    };
    const where = path.join(dir, 'train.json');
    await checkTrainConfigPaths(parseTrainConfig(raw, where), where);

    const broken = parseTrainConfig(
      {
        ...raw,
        corpus: {
          format: 'conll',
          train: ['data/train', 'nope.conll'],
          validation: 'data/val.txt',
        },
        tokenizer: { model: 'missing.model', vocab: 'vocab.json' },
        model: { init: 'data' },
        output: 'sp.model',
      },
      where,
    );
    const error = await checkTrainConfigPaths(broken, where).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrainConfigError);
    expect((error as TrainConfigError).issues.map((i) => i.field)).toEqual([
      'corpus.train[0]',
      'corpus.train[1]',
      'tokenizer.model',
      'model.init',
      'output',
    ]);
    const long = parseTrainConfig({ ...raw, maxLength: 128 }, where);
    await expect(checkTrainConfigPaths(long, where)).rejects.toThrow(
      /field "maxLength" \(128\) exceeds the pretrained encoder's max_position_embeddings \(64\)/,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// rng.ts

describe('rng', () => {
  it('matches the xoshiro128** reference implementation', () => {
    const rng = Rng.fromState([1, 2, 3, 4]);
    const out = Array.from({ length: 10 }, () => rng.nextUint32());
    // From the authors' C code (xoshiro128starstar.c) with s = {1, 2, 3, 4}.
    expect(out).toEqual([
      11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849, 3729100597,
      4258142804,
    ]);
    expect(rng.state()).toEqual([939045227, 1864939416, 1451579149, 2199351389]);
  });

  it('is deterministic per (seed, stream) and continues from a saved state', () => {
    const a = Rng.fromSeed(100, 3);
    const b = Rng.fromSeed(100, 3);
    expect(Array.from({ length: 5 }, () => a.nextUint32())).toEqual(
      Array.from({ length: 5 }, () => b.nextUint32()),
    );
    const saved = JSON.parse(JSON.stringify(a.state()));
    const restored = Rng.fromState(saved);
    expect(Array.from({ length: 5 }, () => restored.nextFloat())).toEqual(
      Array.from({ length: 5 }, () => a.nextFloat()),
    );
    const streams = [Rng.fromSeed(100, 0), Rng.fromSeed(100, 1), Rng.fromSeed(101, 0)];
    const firsts = streams.map((r) => r.nextUint32());
    expect(new Set(firsts).size).toBe(3);
  });

  it('draws unbiased bounded integers and floats in [0, 1)', () => {
    const rng = Rng.fromSeed(7);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60000; i++) counts[rng.nextInt(6)]++;
    for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(500);
    for (let i = 0; i < 1000; i++) {
      const x = rng.nextFloat();
      expect(x >= 0 && x < 1).toBe(true);
    }
    expect(rng.shuffle([1, 2, 3, 4, 5]).sort()).toEqual([1, 2, 3, 4, 5]);
  });

  it('rejects invalid seeds and states', () => {
    expect(() => Rng.fromSeed(-1)).toThrow(/seed/);
    expect(() => Rng.fromSeed(1.5)).toThrow(/seed/);
    expect(() => Rng.fromState([0, 0, 0, 0])).toThrow(/all zero/);
    expect(() => Rng.fromState([1, 2, 3] as never)).toThrow(/four unsigned/);
    expect(() => Rng.fromState([1, 2, 3, 2 ** 32])).toThrow(/four unsigned/);
  });
});

// ---------------------------------------------------------------------------------------------
// batching.ts

function randomLengths(n: number, seed: number, max = 128): number[] {
  const rng = Rng.fromSeed(seed);
  return Array.from({ length: n }, () => 3 + rng.nextInt(max - 2));
}

const LENGTHS = randomLengths(2000, 1);
const OPTIONS: BatchingOptions = { batchSize: 16, seed: 100 };

function spread(batch: number[], lengths: number[]): number {
  const ls = batch.map((i) => lengths[i]);
  return Math.max(...ls) - Math.min(...ls);
}

describe('batching', () => {
  it('is deterministic in (seed, epoch) and covers every example once per epoch', () => {
    const e0 = epochBatches(LENGTHS, 0, OPTIONS);
    expect(epochBatches(LENGTHS, 0, { ...OPTIONS })).toEqual(e0);
    const e1 = epochBatches(LENGTHS, 1, OPTIONS);
    expect(e1).not.toEqual(e0);
    expect(epochBatches(LENGTHS, 0, { ...OPTIONS, seed: 101 })).not.toEqual(e0);
    for (const epoch of [e0, e1]) {
      expect(
        epoch
          .flat()
          .slice()
          .sort((a, b) => a - b),
      ).toEqual(Array.from({ length: LENGTHS.length }, (_, i) => i));
      expect(Math.max(...epoch.map((b) => b.length))).toBe(16);
    }
    // 2000 examples in chunks of 800: 50 + 50 + 25 batches, every epoch.
    expect(e0.length).toBe(125);
    expect(e1.length).toBe(125);
  });

  it('buckets by length: batches hold similar lengths, unlike plain shuffling', () => {
    const bucketed = epochBatches(LENGTHS, 0, OPTIONS);
    const plain = epochBatches(LENGTHS, 0, { ...OPTIONS, bucketBatches: 1 });
    const mean = (bs: number[][]): number =>
      bs.reduce((s, b) => s + spread(b, LENGTHS), 0) / bs.length;
    expect(mean(bucketed)).toBeLessThan(6);
    expect(mean(plain)).toBeGreaterThan(60);
    for (const b of bucketed) {
      const ls = b.map((i) => LENGTHS[i]);
      expect(ls).toEqual([...ls].sort((x, y) => x - y));
    }
    // Batch order is shuffled: not sorted by length across the epoch.
    const firsts = bucketed.map((b) => LENGTHS[b[0]]);
    expect(firsts).not.toEqual([...firsts].sort((x, y) => x - y));
  });

  it('respects a token budget, giving an over-long example a batch of its own', () => {
    const lengths = [...LENGTHS.slice(0, 500), 400];
    const batches = epochBatches(lengths, 2, { ...OPTIONS, maxTokens: 600 });
    for (const b of batches) {
      const longest = Math.max(...b.map((i) => lengths[i]));
      if (b.length > 1) expect(b.length * longest).toBeLessThanOrEqual(600);
      expect(b.length).toBeLessThanOrEqual(16);
    }
    expect(batches.find((b) => b.includes(500))).toEqual([500]);
    expect(batches.flat().length).toBe(lengths.length);
  });

  it('sorts by length without shuffling for evaluation', () => {
    const lengths = [5, 3, 9, 3, 7];
    const batches = epochBatches(lengths, 4, { batchSize: 2, seed: 0, shuffle: false });
    expect(batches).toEqual([[1, 3], [0, 4], [2]]);
  });

  it('shards into disjoint, equal shares, dropping fewer than worldSize batches', () => {
    const batches = epochBatches(LENGTHS, 0, OPTIONS); // 125 batches
    for (const worldSize of [1, 2, 3, 4, 8]) {
      const shares = Array.from({ length: worldSize }, (_, rank) =>
        shard(batches, rank, worldSize),
      );
      const perRank = Math.floor(batches.length / worldSize);
      for (const s of shares) expect(s.length).toBe(perRank);
      const taken = shares.flat();
      expect(new Set(taken).size).toBe(taken.length);
      // Complete up to the remainder rule: exactly the first perRank × worldSize batches.
      expect(new Set(taken)).toEqual(new Set(batches.slice(0, perRank * worldSize)));
      expect(batches.length - taken.length).toBeLessThan(worldSize);
    }
    expect(() => shard(batches, 2, 2)).toThrow(/rank/);
  });

  it('resumes from a saved cursor with exactly the batches an uninterrupted run sees', () => {
    for (const { rank, worldSize } of [
      { rank: 0, worldSize: 1 },
      { rank: 1, worldSize: 3 },
    ]) {
      const all = [...iterateBatches(LENGTHS, OPTIONS, { rank, worldSize, epochs: 3 })];
      const perEpoch = Math.floor(125 / worldSize);
      expect(all.length).toBe(3 * perEpoch);
      for (const k of [0, 5, perEpoch - 1, perEpoch, perEpoch + 7]) {
        const it = iterateBatches(LENGTHS, OPTIONS, { rank, worldSize, epochs: 3 });
        let cursor: BatchCursor = { epoch: 0, batchIndex: 0 };
        for (let i = 0; i < k; i++) cursor = it.next().value!.next;
        const saved: BatchCursor = JSON.parse(JSON.stringify(cursor));
        const rest = [
          ...iterateBatches(LENGTHS, { ...OPTIONS }, { rank, worldSize, epochs: 3, from: saved }),
        ];
        expect(rest.map((b) => b.indices)).toEqual(all.slice(k).map((b) => b.indices));
        expect(rest[0].cursor).toEqual(saved);
      }
    }
    // The end of an epoch is the start of the next.
    const fromEnd = iterateBatches(LENGTHS, OPTIONS, { from: { epoch: 0, batchIndex: 125 } });
    expect(fromEnd.next().value!.cursor).toEqual({ epoch: 1, batchIndex: 0 });
    const past = iterateBatches(LENGTHS, OPTIONS, { from: { epoch: 0, batchIndex: 126 } });
    expect(() => past.next()).toThrow(/past the 125 batches/);
  });

  it('plans optimizer steps with accumulation, maxSteps and token budgets', () => {
    expect(planSteps(LENGTHS, OPTIONS, { epochs: 3 })).toEqual({
      perEpoch: [125, 125, 125],
      total: 375,
      microBatches: [125, 125, 125],
    });
    const accumulated = planSteps(LENGTHS, OPTIONS, {
      epochs: 2,
      gradAccumulation: 4,
      worldSize: 2,
    });
    expect(accumulated.perEpoch).toEqual([16, 16]); // ceil(62 / 4)
    expect(planSteps(LENGTHS, OPTIONS, { epochs: 10, maxSteps: 300 }).perEpoch).toEqual([
      125, 125, 50,
    ]);
    const budget = { ...OPTIONS, maxTokens: 1000 };
    const plan = planSteps(LENGTHS, budget, { epochs: 3 });
    expect(plan.microBatches).toEqual(
      [0, 1, 2].map((e) => epochBatches(LENGTHS, e, budget).length),
    );
    expect(plan.total).toBe(plan.perEpoch.reduce((a, b) => a + b));
  });

  it('pads ids and labels to the batch maximum', () => {
    const { ids, labels } = collate(
      [
        { ids: [2, 10, 3], labels: [0, 5, 0] },
        { ids: [2, 3], labels: [0, 0] },
      ],
      1,
      -100,
    );
    expect(ids).toEqual({
      data: Int32Array.from([2, 10, 3, 2, 3, 1]),
      lengths: Int32Array.from([3, 2]),
      rows: 2,
      cols: 3,
    });
    expect(Array.from(labels.data)).toEqual([0, 5, 0, 0, 0, -100]);
    expect(padSequences([], 0)).toMatchObject({ rows: 0, cols: 0 });
    expect(() => collate([{ ids: [1], labels: [] }], 1, 0)).toThrow(/1 ids but 0 labels/);
    expect(() => padSequences([[1.5]], 0)).toThrow(/not a 32-bit integer/);
  });

  it('fingerprints the data order', () => {
    const f = batchingFingerprint(LENGTHS, OPTIONS, 2);
    expect(batchingFingerprint([...LENGTHS], { ...OPTIONS }, 2)).toBe(f);
    expect(batchingFingerprint(LENGTHS, { ...OPTIONS, seed: 1 }, 2)).not.toBe(f);
    expect(batchingFingerprint(LENGTHS, OPTIONS, 1)).not.toBe(f);
    expect(batchingFingerprint(LENGTHS.slice(1), OPTIONS, 2)).not.toBe(f);
  });
});

// ---------------------------------------------------------------------------------------------
// schedule.ts

// transformers' get_linear_schedule_with_warmup lr_lambda, transcribed.
function hfLinear(current: number, warmup: number, total: number): number {
  if (current < warmup) return current / Math.max(1, warmup);
  return Math.max(0, (total - current) / Math.max(1, total - warmup));
}

describe('schedule', () => {
  it('matches transformers’ linear schedule with warmup', () => {
    for (const [warmup, total] of [
      [10, 100],
      [0, 50],
      [7, 7],
      [1, 2],
    ]) {
      for (const step of [
        0,
        1,
        warmup - 1,
        warmup,
        warmup + 1,
        total >> 1,
        total - 1,
        total,
        total + 5,
      ]) {
        if (step < 0) continue;
        expect(linearWarmupDecay(step, warmup, total)).toBeCloseTo(
          hfLinear(step, warmup, total),
          15,
        );
      }
    }
    expect(linearWarmupDecay(0, 10, 100)).toBe(0);
    expect(linearWarmupDecay(5, 10, 100)).toBe(0.5);
    expect(linearWarmupDecay(10, 10, 100)).toBe(1);
    expect(linearWarmupDecay(55, 10, 100)).toBe(0.5);
    expect(linearWarmupDecay(100, 10, 100)).toBe(0);
  });

  it('computes warmup steps as transformers does (ceil of the ratio)', () => {
    expect(warmupStepsFor({ warmupRatio: 0.1 }, 1005)).toBe(101);
    expect(warmupStepsFor({ warmupRatio: 0 }, 1005)).toBe(0);
    expect(warmupStepsFor({ warmupSteps: 30 }, 1005)).toBe(30);
    // A parsed config's schedule is a spec as it stands.
    expect(warmupStepsFor(parse(minimal()).schedule, 95)).toBe(10);
  });

  it('steps and resumes from its state', () => {
    const options = { peakLr: 5e-5, warmupSteps: 4, totalSteps: 20 };
    const a = new LinearSchedule(options);
    const lrs: number[] = [];
    for (let i = 0; i < 20; i++) {
      lrs.push(a.lr());
      a.advance();
    }
    expect(lrs[0]).toBe(0);
    expect(lrs[4]).toBe(5e-5);
    expect(lrs[12]).toBeCloseTo(5e-5 * (8 / 16), 18);
    const b = new LinearSchedule(options);
    for (let i = 0; i < 9; i++) b.advance();
    const resumed = new LinearSchedule(options, JSON.parse(JSON.stringify(b.state())));
    expect(resumed.step).toBe(9);
    expect(resumed.lr()).toBe(lrs[9]);
    expect(() => new LinearSchedule(options, { step: 21 })).toThrow(/past the end/);
    expect(() => new LinearSchedule({ ...options, peakLr: 0 })).toThrow(/peakLr/);
  });
});

// ---------------------------------------------------------------------------------------------
// progress.ts

class FakeStream implements ProgressStream {
  chunks: string[] = [];
  constructor(
    readonly isTTY: boolean,
    readonly columns = 100,
  ) {}
  write(text: string): boolean {
    this.chunks.push(text);
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
}

function fakeClock(stepMs: number): { clock: () => number; tick: () => void } {
  let t = 0;
  return { clock: () => t, tick: () => void (t += stepMs) };
}

describe('progress', () => {
  it('writes plain lines every logEvery steps when not on a terminal', () => {
    const stream = new FakeStream(false);
    const { clock, tick } = fakeClock(100);
    const p = new ProgressReporter({ totalSteps: 25, epochs: 2, stream, clock, logEvery: 10 });
    expect(p.isTTY).toBe(false);
    p.start();
    for (let step = 1; step <= 25; step++) {
      tick();
      p.update({
        step,
        epoch: step > 12 ? 1 : 0,
        loss: step <= 10 ? 2 : 1,
        sentences: 8,
        lr: 5e-5,
      });
    }
    const lines = stream.text.split('\n').filter(Boolean);
    expect(lines).toEqual([
      'epoch 1/2 step 10/25 loss 2.0000 lr 5.00e-5 80.0 sent/s ETA 2s',
      'epoch 2/2 step 20/25 loss 1.0000 lr 5.00e-5 80.0 sent/s ETA 1s',
      'epoch 2/2 step 25/25 loss 1.0000 lr 5.00e-5 80.0 sent/s ETA 0s',
    ]);
    expect(stream.text).not.toContain('\r');
    p.log('evaluating');
    expect(stream.chunks.at(-1)).toBe('evaluating\n');
  });

  it('rewrites one status line on a terminal, throttled, within the width', () => {
    const stream = new FakeStream(true, 90);
    const { clock, tick } = fakeClock(10);
    const p = new ProgressReporter({ totalSteps: 100, epochs: 3, stream, clock, redrawMs: 100 });
    p.start();
    for (let step = 1; step <= 50; step++) {
      tick();
      p.update({ step, epoch: 0, loss: 0.5, sentences: 4 });
    }
    // One draw per 100 ms of fake time: steps 1, 11, 21, 31, 41.
    expect(stream.chunks.length).toBe(5);
    const last = stream.chunks.at(-1)!;
    expect(last.startsWith('\r')).toBe(true);
    expect(last).not.toContain('\n');
    const visible = last.slice(1).replace('\x1b[K', '');
    expect(visible.length).toBeLessThan(90);
    expect(visible).toMatch(
      /^epoch 1\/3 \[=+>? *\] 41\/100 loss 0\.5000 · 400\.0 sent\/s · ETA 1s$/,
    );
    p.log('checkpoint saved');
    expect(stream.chunks.at(-2)).toBe('\r\x1b[Kcheckpoint saved\n');
    expect(stream.chunks.at(-1)).toBe(last);
    for (let step = 51; step <= 100; step++) {
      tick();
      p.update({ step, epoch: 2, loss: 0.5, sentences: 4 });
    }
    // The final step always draws.
    expect(stream.chunks.at(-1)).toContain(' 100/100 ');
    expect(stream.chunks.at(-1)).toContain('[' + '='.repeat(30) + ']');
    p.finish();
    expect(stream.chunks.at(-1)).toBe('\n');
    // A narrow terminal drops the bar rather than wrap.
    const narrow = new FakeStream(true, 40);
    const q = new ProgressReporter({ totalSteps: 10, epochs: 1, stream: narrow, clock });
    q.update({ step: 1, epoch: 0, loss: 1, sentences: 1 });
    expect(narrow.chunks[0].replace('\r', '').replace('\x1b[K', '').length).toBeLessThan(40);
  });

  it('smooths the loss without a start-up bias', () => {
    const p = new ProgressReporter({ totalSteps: 10, epochs: 1, stream: new FakeStream(false) });
    expect(p.smoothedLoss).toBeNaN();
    p.update({ step: 1, epoch: 0, loss: 3, sentences: 1 });
    expect(p.smoothedLoss).toBeCloseTo(3, 12);
    p.update({ step: 2, epoch: 0, loss: 3, sentences: 1 });
    expect(p.smoothedLoss).toBeCloseTo(3, 12);
    p.update({ step: 3, epoch: 0, loss: NaN, sentences: 1 });
    expect(p.smoothedLoss).toBeCloseTo(3, 12);
  });

  it('formats durations', () => {
    expect(formatDuration(42.4)).toBe('42s');
    expect(formatDuration(187)).toBe('3m07s');
    expect(formatDuration(3725)).toBe('1h02m');
    expect(formatDuration(NaN)).toBe('?');
  });
});

// ---------------------------------------------------------------------------------------------
// metrics-log.ts

describe('metrics log', () => {
  const now = (): Date => new Date('2025-01-02T03:04:05.000Z');
  const evalEvent = (step: number, f1: number) =>
    ({
      type: 'eval',
      step,
      epoch: 0,
      tokenMacroF1: f1 - 0.01,
      entity: { precision: f1, recall: f1, f1, support: 10 },
      perType: { PER: { precision: 1, recall: f1, f1, support: 4 } },
      seconds: 1.5,
    }) as const;

  it('appends one line per event and reads them back', async () => {
    const dir = path.join(tmp, 'metrics');
    const log = await MetricsLog.open(dir, { now });
    log.append({ type: 'start', step: 0, resumed: false, epoch: 0, totalSteps: 100 });
    const train = {
      type: 'train',
      step: 50,
      epoch: 0,
      loss: 1.25,
      lr: 4e-5,
      sentencesPerSecond: 80,
      elapsedSeconds: 10,
    } as const;
    log.append(train);
    // A line is on disk as soon as append returns.
    expect((await readFile(log.file, 'utf8')).split('\n')).toHaveLength(3);
    log.append(evalEvent(50, 0.8));
    log.append({
      type: 'train',
      step: 60,
      epoch: 0,
      loss: NaN,
      lr: 0,
      sentencesPerSecond: 1,
      elapsedSeconds: 11,
    });
    log.close();
    expect(() => log.append(train)).toThrow(/closed/);
    const { events, skipped } = await readMetrics(dir);
    expect(skipped).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['start', 'train', 'eval', 'train']);
    expect(events[1]).toEqual({ time: '2025-01-02T03:04:05.000Z', ...train });
    expect(metricCurve(events, 'eval', (e) => e.entity.f1)).toEqual([{ x: 50, y: 0.8 }]);
    // NaN is written as null and becomes a gap in the curve.
    expect(metricCurve(events, 'train', (e) => e.loss)).toEqual([{ x: 50, y: 1.25 }]);
  });

  it('survives a line cut by a crash and drops the events a resume replays', async () => {
    const dir = path.join(tmp, 'metrics-crash');
    const log = await MetricsLog.open(dir, { now, sync: false });
    log.append({ type: 'start', step: 0, resumed: false, epoch: 0, totalSteps: 100 });
    log.append(evalEvent(20, 0.5));
    log.append(evalEvent(30, 0.6));
    log.close();
    await writeFile(path.join(dir, 'metrics.jsonl'), '{"type":"eval","st', { flag: 'a' });
    const again = await MetricsLog.open(dir, { now });
    again.append({ type: 'start', step: 20, resumed: true, epoch: 0, totalSteps: 100 });
    again.append(evalEvent(30, 0.65));
    again.close();
    const { events, skipped } = await readMetrics(path.join(dir, 'metrics.jsonl'));
    expect(skipped).toEqual([{ line: 4, reason: 'not valid JSON (cut short by a crash?)' }]);
    expect(metricCurve(events, 'eval', (e) => e.entity.f1)).toEqual([
      { x: 20, y: 0.5 },
      { x: 30, y: 0.65 },
    ]);
    const raw = await readMetrics(dir, { resolveResumes: false });
    expect(metricCurve(raw.events, 'eval', (e) => e.entity.f1)).toHaveLength(3);
    expect(parseMetrics('{"type":"weird","step":1}\n[1]\n{"type":"end"}\n').skipped).toHaveLength(
      3,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// early-stop.ts

describe('early stopping', () => {
  it('stops after patience evaluations without improvement', () => {
    const es = new EarlyStopping({ patience: 3 });
    const values = [0.5, 0.6, 0.6, 0.55, 0.59, 0.7];
    const decisions = values.map((v, i) => es.update(v, (i + 1) * 100));
    expect(decisions.map((d) => d.improved)).toEqual([true, true, false, false, false, true]);
    expect(decisions.map((d) => d.stop)).toEqual([false, false, false, false, true, false]);
    expect(es.state()).toEqual({ best: 0.7, bestStep: 600, badEvaluations: 0 });
  });

  it('requires more than minDelta and never takes NaN as best', () => {
    const es = new EarlyStopping({ patience: 2, minDelta: 0.01 });
    expect(es.update(NaN, 1)).toEqual({ improved: false, stop: false, best: null });
    expect(es.update(0.5, 2).improved).toBe(true);
    expect(es.update(0.505, 3).improved).toBe(false);
    expect(es.update(0.52, 4)).toEqual({ improved: true, stop: false, best: 0.52 });
    expect(es.update(NaN, 5).stop).toBe(false);
    expect(es.update(0.1, 6).stop).toBe(true);
    expect(es.shouldStop).toBe(true);
  });

  it('continues identically from a saved state', () => {
    const values = [0.3, 0.4, 0.35, 0.38, 0.41, 0.2, 0.2, 0.2];
    const whole = new EarlyStopping({ patience: 3 });
    const expected = values.map((v, i) => whole.update(v, i));
    const first = new EarlyStopping({ patience: 3 });
    const head = values.slice(0, 4).map((v, i) => first.update(v, i));
    const resumed = new EarlyStopping({ patience: 3 }, JSON.parse(JSON.stringify(first.state())));
    const tail = values.slice(4).map((v, i) => resumed.update(v, i + 4));
    expect([...head, ...tail]).toEqual(expected);
    expect(() => new EarlyStopping({ patience: 0 })).toThrow(/patience/);
    expect(
      () => new EarlyStopping({ patience: 1 }, { best: 0.5, bestStep: null, badEvaluations: 0 }),
    ).toThrow(/both be null/);
  });
});

// ---------------------------------------------------------------------------------------------
// checkpoint-files.ts

async function writeCheckpoint(dir: string, version: string): Promise<void> {
  await mkdir(path.join(dir, 'sub'));
  await writeFile(path.join(dir, 'model.safetensors'), `weights ${version}`);
  await writeFile(path.join(dir, 'sub', 'optimizer.bin'), `optimizer ${version}`);
}

async function contents(dir: string): Promise<string | null> {
  if (!existsSync(dir)) return null;
  const a = await readFile(path.join(dir, 'model.safetensors'), 'utf8');
  const b = await readFile(path.join(dir, 'sub', 'optimizer.bin'), 'utf8');
  expect(a.split(' ')[1]).toBe(b.split(' ')[1]);
  return a.split(' ')[1];
}

class Crash extends Error {}

function sampleState(): TrainerState {
  return {
    step: 120,
    epoch: 1,
    cursor: { epoch: 1, batchIndex: 7 },
    rng: { trainer: Rng.fromSeed(100).state(), native: 'AAEC' },
    earlyStop: { best: 0.81, bestStep: 100, badEvaluations: 1 },
    schedule: { step: 120 },
    best: { metric: 'entityF1', value: 0.81, step: 100 },
    dataFingerprint: 'abc123',
    elapsedSeconds: 42.5,
  };
}

describe('checkpoint files', () => {
  it('writes, replaces and leaves no leftovers', async () => {
    const parent = path.join(tmp, 'ckpt-basic');
    const target = checkpointDir(parent, 'last');
    expect(target).toBe(path.join(parent, 'last'));
    await writeAtomicDir(target, (d) => writeCheckpoint(d, 'v1'));
    expect(await contents(target)).toBe('v1');
    await writeAtomicDir(target, (d) => writeCheckpoint(d, 'v2'));
    expect(await contents(target)).toBe('v2');
    expect(await readdir(parent)).toEqual(['last']);
    // A failing fill leaves the old checkpoint and no temporary directory.
    await expect(
      writeAtomicDir(target, async (d) => {
        await writeFile(path.join(d, 'model.safetensors'), 'half');
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect(await contents(target)).toBe('v2');
    expect(await readdir(parent)).toEqual(['last']);
  });

  const stages: AtomicWriteStage[] = ['filled', 'synced', 'moved-old', 'moved-new', 'done'];
  it.each(stages)('recovers from a crash after stage "%s"', async (stage) => {
    for (const hadOld of [true, false]) {
      if (!hadOld && stage === 'moved-old') continue; // never reached without an old checkpoint
      const parent = path.join(tmp, `ckpt-crash-${stage}-${hadOld}`);
      const target = path.join(parent, 'best');
      if (hadOld) await writeAtomicDir(target, (d) => writeCheckpoint(d, 'old'));
      await expect(
        writeAtomicDir(target, (d) => writeCheckpoint(d, 'new'), {
          afterStage: (s) => {
            if (s === stage) throw new Crash(s);
          },
        }),
      ).rejects.toBeInstanceOf(Crash);
      const report = await recoverAtomicDir(target);
      const committed = stage === 'moved-new' || stage === 'done';
      expect(await contents(target)).toBe(committed ? 'new' : hadOld ? 'old' : null);
      expect(report.rolledBack).toBe(stage === 'moved-old');
      expect(await readdir(parent)).toEqual(committed || hadOld ? ['best'] : []);
      // Recovery is idempotent, and the next write works.
      expect(await recoverAtomicDir(target)).toEqual({ rolledBack: false, removed: [] });
      await writeAtomicDir(target, (d) => writeCheckpoint(d, 'next'));
      expect(await contents(target)).toBe('next');
    }
  });

  it('removes a half-written temporary directory left by a crash during the fill', async () => {
    const parent = path.join(tmp, 'ckpt-partial');
    const target = path.join(parent, 'last');
    await writeAtomicDir(target, (d) => writeCheckpoint(d, 'good'));
    const stray = `${target}.tmp-99999-0`;
    await mkdir(stray);
    await writeFile(path.join(stray, 'model.safetensors'), 'trunc');
    const report = await recoverAtomicDir(target);
    expect(report.removed).toEqual([stray]);
    expect(await contents(target)).toBe('good');
    expect(await readdir(parent)).toEqual(['last']);
  });

  it('writes single files atomically', async () => {
    const file = path.join(tmp, 'atomic', 'a.json');
    await writeFileAtomic(file, '{"a":1}');
    await writeFileAtomic(file, new TextEncoder().encode('{"a":2}'));
    expect(await readFile(file, 'utf8')).toBe('{"a":2}');
    expect(await readdir(path.dirname(file))).toEqual(['a.json']);
  });

  it('round-trips the trainer state', async () => {
    const dir = path.join(tmp, 'state');
    const state = sampleState();
    await writeTrainerState(dir, state);
    expect(await readTrainerState(dir)).toEqual(state);
    const noNative = {
      ...sampleState(),
      rng: { trainer: sampleState().rng.trainer },
      earlyStop: null,
    };
    expect(parseTrainerState(JSON.parse(trainerStateToJson(noNative)))).toEqual(noNative);
    await expect(readTrainerState(path.join(tmp, 'nowhere'))).rejects.toThrow(
      /trainer-state\.json: cannot read the trainer state \(ENOENT\)/,
    );
  });

  it('rejects an invalid trainer state, naming the field', async () => {
    const good = JSON.parse(trainerStateToJson(sampleState()));
    const cases: [string, unknown, RegExp][] = [
      ['step', -1, /field "step" must be an integer ≥ 0/],
      ['cursor.batchIndex', 1.5, /cursor\.batchIndex must be an integer/],
      ['epoch', 0, /field "epoch" \(0\) must equal cursor\.epoch \(1\)/],
      ['rng.trainer', [0, 0, 0, 0], /rng\.trainer must not be all zero/],
      ['rng.native', 5, /field "rng\.native"/],
      ['earlyStop.badEvaluations', -2, /earlyStop\.badEvaluations/],
      ['schedule', { step: 'x' }, /field "schedule\.step"/],
      ['best.value', 'high', /field "best\.value"/],
      ['best.step', 500, /field "best\.step" \(500\) must not be after step/],
      ['dataFingerprint', '', /field "dataFingerprint"/],
      ['elapsedSeconds', -1, /field "elapsedSeconds"/],
      ['version', 2, /field "version" must be 1/],
      ['format', 'other', /field "format"/],
      ['extra', true, /field "extra" is not a known field/],
    ];
    for (const [field, value, message] of cases) {
      const s = withField(field, value, structuredClone(good));
      expect(() => parseTrainerState(s, 'x/trainer-state.json')).toThrow(message);
      expect(() => parseTrainerState(s, 'x/trainer-state.json')).toThrow(
        /^x\/trainer-state\.json: /,
      );
    }
    const dir = path.join(tmp, 'state-bad');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, TRAINER_STATE_FILE), '{"step": 1');
    await expect(readTrainerState(dir)).rejects.toThrow(/not valid JSON/);
    await expect(writeTrainerState(dir, { ...sampleState(), step: -5 })).rejects.toThrow(
      /field "step"/,
    );
  });
});
