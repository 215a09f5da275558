import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { bundledTokenizerFiles } from '../../lib/model/default-model.js';
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
} from '../../lib/train/config.js';
import { CONFIG_FILE, minimal, parse, TOKENIZER, withField } from '../fixtures/train-config.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'koner-train-test-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function issuesOf(raw: unknown): { field: string; problem: string }[] {
  try {
    parse(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(TrainConfigError);
    return [...(error as TrainConfigError).issues];
  }
  throw new Error('expected the config to be rejected');
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
    expect(c.optimizer).toEqual({
      lr: 5e-5,
      weightDecay: 0.01,
      betas: [0.9, 0.999],
      eps: 1e-8,
      layerDecay: 1,
    });
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
    ['optimizer.layerDecay', 0, 'optimizer.layerDecay'],
    ['optimizer.layerDecay', 1.5, 'optimizer.layerDecay'],
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
    ['dtype', 'float16', 'dtype'],
    ['threads', 0, 'threads'],
    ['logEvery', 0, 'logEvery'],
    ['distill', { teacher: [] }, 'distill.teacher'],
    ['distill', { teacher: ['a', 7] }, 'distill.teacher[1]'],
    ['distill', { teacher: ['a'], combine: 'logits' }, 'distill.combine'],
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

  it('accepts bfloat16 anywhere and float16 on CUDA only', () => {
    const c = parse(withField('dtype', 'float16', withField('device', 'cuda:1')));
    expect(c).toMatchObject({ device: 'cuda:1', dtype: 'float16' });
    // Whether this CPU multiplies bfloat16 natively is the trainer's question, not the file's.
    expect(parse(withField('dtype', 'bfloat16'))).toMatchObject({
      device: 'cpu',
      dtype: 'bfloat16',
    });
    expect(issuesOf(withField('dtype', 'float16'))[0]).toEqual({
      field: 'dtype',
      problem:
        '"float16" needs a CUDA device (device is "cpu"); use "bfloat16" or "float32" on CPU',
    });
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
      ['layer_wise_lr_decay', 0.8, 'layer_wise_lr_decay', 'optimizer.layerDecay'],
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
        distill: { teacher: ['model', 'nowhere'] },
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
      'distill.teacher[1]',
      'model.init',
      'output',
    ]);
    const long = parseTrainConfig({ ...raw, maxLength: 128 }, where);
    await expect(checkTrainConfigPaths(long, where)).rejects.toThrow(
      /field "maxLength" \(128\) exceeds the pretrained encoder's max_position_embeddings \(64\)/,
    );
  });
});
