/**
 * `koner pretrain` (lib/pretrain/config.ts, lib/pretrain/pretrainer.ts, lib/cli/pretrain.ts):
 * the config's validation, a small run on real Korean Wikipedia lines end to end, an exact
 * resume, and `koner train` starting from the pretrained encoder. The data side (streaming,
 * leak guard, masking, batches) is test/pretrain-data.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readModelConfig } from '../lib/model/config.js';
import { native, packageRoot } from '../lib/native.js';
import { parsePretrainConfig, type PretrainConfig } from '../lib/pretrain/config.js';
import { GENERATOR_DIR, pretrain, PRETRAIN_STATE_FILE } from '../lib/pretrain/pretrainer.js';
import { stackEncoderLayers } from '../lib/pretrain/stack.js';
import { readMetrics } from '../lib/train/metrics-log.js';
import { parseTrainConfig } from '../lib/train/config.js';
import { train } from '../lib/train/trainer.js';

const SHARED = path.resolve(packageRoot, '..', 'shared', 'data');
const KOWIKI = path.join(SHARED, 'kowiki-text', 'kowiki-part-00.txt.gz');
const haveData = existsSync(KOWIKI) && existsSync(path.join(SHARED, 'kmou-ner', 'val'));
if (!haveData)
  console.warn(`skipping the pretraining runs: ${SHARED} has no kowiki-text or kmou-ner`);

const quiet = { write: () => true, isTTY: false };
let tmp: string;
let text: string[];
let validation: string;

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-pretrain-'));
  if (!haveData) return;
  // Two small parts of real Wikipedia lines (the first 400 of part 00), and a validation file of
  // KMOU sentences, one of which is planted in the text to be caught.
  const lines = execFileSync('bash', ['-c', `zcat ${KOWIKI} | head -n 400`], {
    maxBuffer: 1 << 26,
  })
    .toString()
    .trimEnd()
    .split('\n');
  const planted = '이순신 장군은 1545년 한성 건천동에서 태어나 임진왜란 때 수군을 이끌었다.';
  lines[10] = `${lines[10]} ${planted}`;
  text = [path.join(tmp, 'a.txt.gz'), path.join(tmp, 'b.txt.gz')];
  writeFileSync(text[0], gzipSync(lines.slice(0, 250).join('\n') + '\n'));
  writeFileSync(text[1], gzipSync(lines.slice(250).join('\n') + '\n'));
  validation = path.join(tmp, 'val.txt');
  writeFileSync(
    validation,
    `## 1\n## ${planted}\n## <이순신:PER> 장군은 <1545년:DAT> <한성:LOC> 건천동에서 태어나 ` +
      `<임진왜란:DAT> 때 수군을 이끌었다.\n`,
  );
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function tinyConfig(output: string, changes: Record<string, unknown> = {}): PretrainConfig {
  return parsePretrainConfig(
    {
      text,
      validation: { format: 'kmou', paths: [validation] },
      model: {
        size: {
          hiddenSize: 32,
          numHiddenLayers: 2,
          numAttentionHeads: 2,
          intermediateSize: 64,
          maxPositionEmbeddings: 64,
        },
      },
      maxLength: 64,
      batchSize: 8,
      maxSteps: 8,
      warmupSteps: 2,
      evalEvery: 4,
      evalParagraphs: 20,
      logEvery: 2,
      threads: 1,
      output,
      ...changes,
    },
    path.join(tmp, 'pretrain.json'),
  );
}

async function weights(dir: string): Promise<Map<string, Float32Array>> {
  const tensors = await native().readTensors(path.join(dir, 'model.safetensors'), null, true);
  return new Map(
    Object.entries(tensors).map(([name, t]) => [
      name,
      new Float32Array(Uint8Array.from(t.data).buffer),
    ]),
  );
}

/**
 * Fine-tunes a tiny tagger from the pretrained directory `init` (configs/tiny-ci.json on the
 * planted sentence) and checks that it kept the encoder as saved; returns its weights.
 */
async function fineTune(init: string, output: string): Promise<Map<string, Float32Array>> {
  const tinyTrain = JSON.parse(
    readFileSync(path.join(packageRoot, 'configs/tiny-ci.json'), 'utf8'),
  );
  const trainConfig = parseTrainConfig(
    {
      ...tinyTrain,
      corpus: { format: 'kmou', train: validation, validation },
      model: { init },
      maxLength: 64,
      epochs: 1,
      output,
    },
    path.join(packageRoot, 'configs/tiny-ci.json'),
  );
  const trained = await train({
    config: trainConfig,
    progress: quiet,
    out: () => undefined,
    metricsSync: false,
  });
  expect(trained.reason).toBe('completed');
  const pretrained = await weights(init);
  const finetuned = await weights(path.join(output, 'last'));
  expect(finetuned.has('crf.transitions')).toBe(true);
  for (const name of finetuned.keys()) {
    if (name.startsWith('bert.')) expect(pretrained.has(name), name).toBe(true);
  }
  return finetuned;
}

/** The largest difference between two directories' weights, which must have the same names. */
async function maxDifference(a: string, b: string): Promise<number> {
  const x = await weights(a);
  const y = await weights(b);
  expect([...y.keys()].sort()).toEqual([...x.keys()].sort());
  let max = 0;
  for (const [name, u] of x) {
    const v = y.get(name)!;
    for (let i = 0; i < u.length; i++) max = Math.max(max, Math.abs(u[i] - v[i]));
  }
  return max;
}

describe('pretrain.json', () => {
  const base = {
    text: ['a.txt.gz'],
    validation: { format: 'kmou', paths: ['val'] },
    maxSteps: 10,
    output: 'out',
  };

  it('fills in the defaults and resolves paths against the config file', () => {
    const config = parsePretrainConfig(base, '/configs/pretrain.json', {
      defaultTokenizer: { model: '/t/m.model', vocab: '/t/v.json' },
    });
    expect(config).toMatchObject({
      text: ['/configs/a.txt.gz'],
      validation: { format: 'kmou', paths: ['/configs/val'] },
      output: '/configs/out',
      maxLength: 128,
      batchSize: 64,
      masking: { probability: 0.15, mask: 0.8, random: 0.1 },
      warmupSteps: 1,
      evalEvery: 500,
      device: 'cpu',
      objective: 'mlm',
      generator: {
        init: 'scratch',
        size: { hiddenSize: 64, numHiddenLayers: 4, numAttentionHeads: 1, intermediateSize: 256 },
      },
    });
  });

  it('reports every bad field at once, by name', () => {
    const bad = {
      ...base,
      maxSteps: 0,
      batchSize: 'many',
      masking: { probability: 0, mask: 0.9, random: 0.2 },
      optimizer: { lr: -1, betas: [0.9] },
      model: { size: { hiddenSize: 30, numAttentionHeads: 4 }, dropuot: 0.1 },
      dtype: 'float16',
      validation: undefined,
      objective: 'bert',
      generator: { size: { hiddenSize: 60, numAttentionHeads: 8 } },
    };
    let message = '';
    try {
      parsePretrainConfig(bad, '/c/pretrain.json', { defaultTokenizer: null });
    } catch (error) {
      message = (error as Error).message;
    }
    for (const field of [
      'maxSteps',
      'batchSize',
      'masking.probability',
      'masking.random',
      'optimizer.lr',
      'optimizer.betas',
      'model.size.numAttentionHeads',
      'model.dropuot',
      'dtype',
      'validation',
      'tokenizer',
      'objective',
      'generator.size.numAttentionHeads',
    ]) {
      expect(message).toContain(`field "${field}"`);
    }
    expect(message).toMatch(
      /"model\.dropuot" is not a known field \(did you mean "model\.dropout"\?\)/,
    );
    expect(message).toMatch(
      /"generator\.size\.numAttentionHeads" \(8\) must divide generator\.size\.hiddenSize \(60\)/,
    );
    expect(() =>
      parsePretrainConfig(
        { ...base, objective: 'electra', generator: { init: 'g', size: { hiddenSize: 64 } } },
        '/c/pretrain.json',
        { defaultTokenizer: null },
      ),
    ).toThrow(/"generator\.size" is only for "init": "scratch"/);
  });
});

describe.skipIf(!haveData)('koner pretrain', () => {
  it('pretrains end to end: held-out loss, metrics, a model directory koner train starts from', async () => {
    const output = path.join(tmp, 'run');
    const result = await pretrain({
      config: tinyConfig(output),
      progress: quiet,
      out: () => undefined,
      metricsSync: false,
    });
    expect(result).toMatchObject({ reason: 'completed', step: 8, totalSteps: 8 });
    expect(result.evaluations.map((e) => e.step)).toEqual([4, 8]);
    for (const e of result.evaluations) {
      expect(e.loss).toBeGreaterThan(0);
      expect(e.mlmAccuracy).toBeGreaterThanOrEqual(0);
    }
    const last = path.join(output, 'last');
    expect(readdirSync(last).sort()).toEqual(
      [
        'config.json',
        'eval.json',
        'vocab.json',
        'model.safetensors',
        'optimizer.safetensors',
        PRETRAIN_STATE_FILE,
        'pretrain.json',
        'tokenizer.model',
      ].sort(),
    );
    const config = await readModelConfig(last);
    expect(config).toMatchObject({ head: 'none', labels: [], mlmHead: true, hiddenSize: 32 });
    const state = JSON.parse(readFileSync(path.join(last, PRETRAIN_STATE_FILE), 'utf8'));
    // The planted validation sentence's paragraph was dropped and counted, once per pass over the
    // text (one buffer of 8192 windows takes several passes over these 400 lines).
    const { leaks, paragraphs } = state.data.stats;
    expect(leaks).toBeGreaterThanOrEqual(1);
    // 380 training lines a pass (20 are held out), one of them the leak.
    expect(paragraphs / leaks).toBeGreaterThan(370);
    expect(paragraphs / leaks).toBeLessThanOrEqual(380);
    const { events } = await readMetrics(output);
    const types = new Set(events.map((e) => e.type));
    expect(types).toEqual(new Set(['start', 'train', 'mlm-eval', 'checkpoint', 'end']));
    const trainEvents = events.filter((e) => e.type === 'train');
    expect(trainEvents.every((e) => e.type === 'train' && e.mlmAccuracy !== undefined)).toBe(true);

    // koner train takes the pretrained encoder as model.init: the encoder as saved, a fresh head.
    const finetuned = await fineTune(last, path.join(tmp, 'finetuned'));
    expect([...finetuned.keys()].some((n) => n.startsWith('cls.'))).toBe(false);
  });

  it('continues from a model directory: its weights, and the text where its run stopped', async () => {
    const first = path.join(tmp, 'run', 'last');
    // The compact form a pretraining that spans sessions keeps: float16 weights, no optimizer,
    // the stream's position (scripts/package-model.ts).
    const packed = path.join(tmp, 'packed');
    execFileSync(process.execPath, [
      '--import',
      'tsx',
      path.join(packageRoot, 'scripts/package-model.ts'),
      first,
      packed,
    ]);
    expect(readdirSync(packed)).toContain(PRETRAIN_STATE_FILE);
    expect(readdirSync(packed)).not.toContain('optimizer.safetensors');
    const header = await native().inspectCheckpoint(path.join(packed, 'model.safetensors'));
    expect(new Set(header.map((t) => t.dtype))).toEqual(new Set(['float16']));
    const output = path.join(tmp, 'continued');
    const lines: string[] = [];
    const result = await pretrain({
      config: tinyConfig(output, { model: { init: packed }, maxSteps: 2, evalEvery: 2 }),
      progress: { write: (line: string) => lines.push(line), isTTY: false },
      out: () => undefined,
      metricsSync: false,
    });
    expect(result.step).toBe(2);
    expect(lines.join('')).toMatch(/loaded its encoder and masked-LM head/);
    expect(lines.join('')).toMatch(/text: continuing where .* stopped/);
    const before = JSON.parse(readFileSync(path.join(first, PRETRAIN_STATE_FILE), 'utf8'));
    const after = JSON.parse(readFileSync(path.join(output, 'last', PRETRAIN_STATE_FILE), 'utf8'));
    expect(after.data.stats.batches).toBe(before.data.stats.batches + 2);
    // A size beside a model directory is refused.
    expect(() => tinyConfig(output, { model: { init: first, size: { hiddenSize: 8 } } })).toThrow(
      /model\.size" is only for "init": "scratch"/,
    );
  });

  it('stacks a pretrained encoder into a deeper one, which continues pretraining', async () => {
    const first = path.join(tmp, 'run', 'last');
    const deep = path.join(tmp, 'stacked');
    const result = await stackEncoderLayers(first, deep, 4);
    expect(result).toMatchObject({ from: 2, to: 4 });
    expect((await readModelConfig(deep)).numHiddenLayers).toBe(4);
    expect(readdirSync(deep)).toContain(PRETRAIN_STATE_FILE);
    const shallow = await weights(first);
    const stacked = await weights(deep);
    // Layer i + 2j starts as layer i; everything else is copied as it was.
    for (const [name, values] of stacked) {
      const match = /^(.*encoder\.layer\.)(\d+)(\..*)$/.exec(name);
      const source = match ? `${match[1]}${Number(match[2]) % 2}${match[3]}` : name;
      expect(shallow.has(source), name).toBe(true);
      expect(values).toEqual(shallow.get(source));
    }
    expect(stacked.size - shallow.size).toBe(
      [...shallow.keys()].filter((n) => n.includes('encoder.layer.')).length,
    );
    const lines: string[] = [];
    const continued = await pretrain({
      config: tinyConfig(path.join(tmp, 'stacked-run'), {
        model: { init: deep },
        maxSteps: 2,
        evalEvery: 2,
      }),
      progress: { write: (line: string) => lines.push(line), isTTY: false },
      out: () => undefined,
      metricsSync: false,
    });
    expect(continued.step).toBe(2);
    expect(Number.isFinite(continued.evaluations[0].loss)).toBe(true);
    expect(lines.join('')).toMatch(/4 layers × 32 hidden/);
    expect(lines.join('')).toMatch(/loaded its encoder and masked-LM head/);
    expect(lines.join('')).toMatch(/text: continuing where .* stopped/);

    // Bad requests name the problem.
    await expect(stackEncoderLayers(first, path.join(tmp, 'x'), 3)).rejects.toThrow(
      /layers: 3 is not a larger multiple of .*'s 2 encoder layers/,
    );
    await expect(stackEncoderLayers(first, path.join(tmp, 'x'), 2)).rejects.toThrow(
      /layers: 2 is not a larger multiple/,
    );
    await expect(
      stackEncoderLayers(path.join(tmp, 'finetuned', 'last'), path.join(tmp, 'x'), 4),
    ).rejects.toThrow(/is a tagger \(head "crf"\); stack a pretrained encoder/);
    const holed = path.join(tmp, 'holed');
    execFileSync('cp', ['-r', first, holed]);
    const names = (await native().inspectCheckpoint(path.join(first, 'model.safetensors'))).map(
      (t) => t.name,
    );
    await native().convertCheckpoint(
      path.join(first, 'model.safetensors'),
      path.join(holed, 'model.safetensors'),
      names.filter((n) => !n.includes('layer.1.')).map((n): [string, string] => [n, n]),
    );
    await expect(stackEncoderLayers(holed, path.join(tmp, 'x'), 4)).rejects.toThrow(
      /model\.safetensors has no encoder layer 1/,
    );
    expect(existsSync(path.join(tmp, 'x'))).toBe(false);
  });

  it('resumes to the same weights as an uninterrupted run (dropout on)', async () => {
    const straight = path.join(tmp, 'straight');
    await pretrain({
      config: tinyConfig(straight),
      progress: quiet,
      out: () => undefined,
      metricsSync: false,
    });
    const split = path.join(tmp, 'split');
    const first = await pretrain({
      config: tinyConfig(split),
      stopAfter: 3,
      progress: quiet,
      out: () => undefined,
      metricsSync: false,
    });
    expect(first).toMatchObject({ reason: 'stopped', step: 3 });
    await expect(
      pretrain({ config: tinyConfig(split), progress: quiet, out: () => undefined }),
    ).rejects.toThrow(/already holds a pretraining run \(last\): pass --resume/);
    const second = await pretrain({
      config: tinyConfig(split),
      resume: true,
      progress: quiet,
      out: () => undefined,
      metricsSync: false,
    });
    expect(second).toMatchObject({ reason: 'completed', step: 8 });
    const a = await weights(path.join(straight, 'last'));
    const b = await weights(path.join(split, 'last'));
    let max = 0;
    for (const [name, x] of a) {
      const y = b.get(name)!;
      for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i] - y[i]));
    }
    expect(max).toBeLessThan(1e-6);
    // A resume under other stream options is refused, naming the option.
    await expect(
      pretrain({
        config: tinyConfig(split, { batchSize: 4, maxSteps: 12 }),
        resume: true,
        progress: quiet,
        out: () => undefined,
      }),
    ).rejects.toThrow(/batchSize/);
  });

  it('objective electra: a generator fills the masked words, the encoder learns which were replaced', async () => {
    const generator = {
      hiddenSize: 16,
      numHiddenLayers: 1,
      numAttentionHeads: 2,
      intermediateSize: 32,
    };
    const electra = (output: string, changes: Record<string, unknown> = {}) =>
      tinyConfig(output, { objective: 'electra', generator: { size: generator }, ...changes });
    const straight = path.join(tmp, 'electra');
    const result = await pretrain({
      config: electra(straight),
      progress: quiet,
      out: () => undefined,
      metricsSync: false,
    });
    expect(result).toMatchObject({ reason: 'completed', step: 8 });
    expect(result.evaluations.map((e) => e.step)).toEqual([4, 8]);
    for (const e of result.evaluations) {
      expect(e.loss).toBeGreaterThan(0); // the generator's masked-LM loss
      expect(e.rtdLoss).toBeGreaterThan(0);
      expect(e.rtdAccuracy).toBeGreaterThan(0);
      expect(e.rtdAccuracy).toBeLessThanOrEqual(1);
      // 15% of the pieces are masked, and most draws of a barely trained generator miss.
      expect(e.replacedShare).toBeGreaterThan(0.05);
      expect(e.replacedShare).toBeLessThan(0.2);
    }
    const last = path.join(straight, 'last');
    expect(readdirSync(path.join(last, GENERATOR_DIR)).sort()).toEqual([
      'config.json',
      'model.safetensors',
      'optimizer.safetensors',
      'tokenizer.model',
      'vocab.json',
    ]);
    const encoder = await readModelConfig(last);
    expect(encoder).toMatchObject({ head: 'none', rtdHead: true, hiddenSize: 32 });
    expect(encoder.mlmHead).toBeUndefined();
    expect(await readModelConfig(path.join(last, GENERATOR_DIR))).toMatchObject({
      head: 'none',
      mlmHead: true,
      ...generator,
      vocabSize: encoder.vocabSize,
      maxPositionEmbeddings: encoder.maxPositionEmbeddings,
    });
    expect((await weights(last)).has('discriminator_predictions.dense_prediction.weight')).toBe(
      true,
    );
    const { events } = await readMetrics(straight);
    const trainEvents = events.filter((e) => e.type === 'train');
    expect(trainEvents.length).toBeGreaterThan(0);
    for (const e of trainEvents) {
      expect(e).toHaveProperty('rtdLoss');
      expect(e).toHaveProperty('rtdAccuracy');
    }

    // Resumed from the checkpoint of step 4, it ends with the weights of both models of the
    // uninterrupted run, which went on from step 4 after its held-out evaluation had drawn from
    // the generator.
    const split = path.join(tmp, 'electra-split');
    const first = await pretrain({
      config: electra(split),
      stopAfter: 4,
      progress: quiet,
      out: () => undefined,
      metricsSync: false,
    });
    expect(first).toMatchObject({ reason: 'stopped', step: 4 });
    await pretrain({
      config: electra(split),
      resume: true,
      progress: quiet,
      out: () => undefined,
      metricsSync: false,
    });
    expect(await maxDifference(last, path.join(split, 'last'))).toBeLessThan(1e-6);
    expect(
      await maxDifference(path.join(last, GENERATOR_DIR), path.join(split, 'last', GENERATOR_DIR)),
    ).toBeLessThan(1e-6);

    // A masked-LM run's checkpoint has no generator to resume.
    const mlm = path.join(tmp, 'mlm-beside-electra');
    const short = { maxSteps: 2, warmupSteps: 0, evalEvery: 2 };
    await pretrain({
      config: tinyConfig(mlm, short),
      progress: quiet,
      out: () => undefined,
      metricsSync: false,
    });
    await expect(
      pretrain({
        config: electra(mlm, short),
        resume: true,
        progress: quiet,
        out: () => undefined,
      }),
    ).rejects.toThrow(/no generator .*not an ELECTRA run's/);

    // Packed for a later session, the generator is packed beside the encoder, and a run
    // continued from there loads both; from a masked-LM directory, the encoder is loaded with a
    // fresh replaced-token head.
    const packed = path.join(tmp, 'electra-packed');
    execFileSync(process.execPath, [
      '--import',
      'tsx',
      path.join(packageRoot, 'scripts/package-model.ts'),
      last,
      packed,
    ]);
    const packedGenerator = path.join(packed, GENERATOR_DIR, 'model.safetensors');
    const header = await native().inspectCheckpoint(packedGenerator);
    expect(new Set(header.map((t) => t.dtype))).toEqual(new Set(['float16']));
    const mlmLast = path.join(mlm, 'last');
    // A generator over another vocabulary is refused, naming the field.
    const otherVocab = path.join(tmp, 'other-vocab');
    execFileSync('cp', ['-r', mlmLast, otherVocab]);
    const otherConfig = JSON.parse(readFileSync(path.join(otherVocab, 'config.json'), 'utf8'));
    writeFileSync(
      path.join(otherVocab, 'config.json'),
      JSON.stringify({ ...otherConfig, vocab_size: 100 }),
    );
    await expect(
      pretrain({
        config: electra(path.join(tmp, 'electra-other-vocab'), {
          ...short,
          generator: { init: otherVocab },
        }),
        progress: quiet,
        out: () => undefined,
      }),
    ).rejects.toThrow(/generator: .*other-vocab has vocab_size 100, the tokenizer \d+/);
    for (const [init, generatorInit, expected] of [
      [
        packed,
        'scratch',
        /loaded its encoder and replaced-token head[^]*generator: .*generator: loaded its encoder and masked-LM head/,
      ],
      [mlmLast, 'scratch', /loaded its encoder \(a fresh replaced-token head\)/],
      // A masked-LM run as the generator: its shape (32 wide here), encoder and head.
      [
        packed,
        mlmLast,
        /generator: .*mlm-beside-electra.last: loaded its encoder and masked-LM head/,
      ],
    ] as const) {
      const lines: string[] = [];
      const output = mkdtempSync(path.join(tmp, 'electra-from-'));
      await pretrain({
        config: electra(output, {
          ...short,
          model: { init },
          generator: generatorInit === 'scratch' ? { size: generator } : { init: generatorInit },
        }),
        progress: { write: (line: string) => lines.push(line), isTTY: false },
        out: () => undefined,
        metricsSync: false,
      });
      expect(lines.join('')).toMatch(expected);
      const written = await readModelConfig(path.join(output, 'last', GENERATOR_DIR));
      expect(written.hiddenSize).toBe(generatorInit === 'scratch' ? generator.hiddenSize : 32);
    }

    // koner train takes the encoder and leaves both pretraining heads behind.
    const finetuned = await fineTune(last, path.join(tmp, 'finetuned-electra'));
    expect([...finetuned.keys()].some((n) => n.startsWith('discriminator_predictions.'))).toBe(
      false,
    );
  });

  it('koner pretrain: a bad config exits 2 naming the field; a missing text file names it', async () => {
    const { pretrainCommand } = await import('../lib/cli/pretrain.js');
    const { runCommand } = await import('../lib/cli/args.js');
    const file = path.join(tmp, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({
        text: text,
        validation: { paths: [validation] },
        maxSteps: -1,
        output: 'x',
      }),
    );
    const errors: string[] = [];
    const original = console.error;
    console.error = (message: string) => errors.push(message);
    try {
      expect(await runCommand(pretrainCommand, ['--config', file])).toBe(2);
      expect(errors.join('\n')).toMatch(/field "maxSteps" must be an integer ≥ 1, got -1/);
      writeFileSync(
        file,
        JSON.stringify({
          text: [path.join(tmp, 'missing.txt.gz')],
          validation: { paths: [validation] },
          maxSteps: 1,
          output: 'x',
        }),
      );
      errors.length = 0;
      expect(await runCommand(pretrainCommand, ['--config', file])).toBe(1);
      expect(errors.join('\n')).toMatch(/missing\.txt\.gz/);
      expect(await runCommand(pretrainCommand, ['--config', file, '--max-steps', 'ten'])).toBe(2);
    } finally {
      console.error = original;
    }
  });
});
