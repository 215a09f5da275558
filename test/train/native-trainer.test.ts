import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { HeadKind, ModelConfig } from '../../lib/model/config.js';
import {
  native,
  packageRoot,
  type NativeModel,
  type NativeStepResult,
  type NativeTrainBatch,
} from '../../lib/native.js';
import { checkLaunchFlags, launch } from '../../lib/train/launch.js';
import {
  concatBatches,
  dpBatches,
  dpLr,
  makeBatch,
  OPTIONS,
  tinyConfig,
} from '../fixtures/trainer-data.js';

// PyTorch's answers for the same weights and batches: scripts/fixtures/trainer_reference.py.
const GENERATED = path.join(packageRoot, 'test/fixtures/generated/trainer');
const WORKER = path.join(packageRoot, 'test/fixtures/trainer-worker.ts');

let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-trainer-'));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

type Weights = Record<string, Float32Array>;

async function readWeights(file: string): Promise<Weights> {
  const tensors = await native().readTensors(file, null, true);
  return Object.fromEntries(
    Object.entries(tensors).map(([name, t]) => [name, new Float32Array(t.data.slice().buffer)]),
  );
}

let saved = 0;
async function weightsOf(model: NativeModel): Promise<Weights> {
  const file = path.join(tmp, `weights-${saved++}.safetensors`);
  await model.saveWeights(file);
  return readWeights(file);
}

/** max |a − b| over every element of every tensor; the names must agree. */
function maxDiff(a: Weights, b: Weights): number {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  let max = 0;
  for (const name of Object.keys(a)) {
    expect(a[name].length, name).toBe(b[name].length);
    for (let i = 0; i < a[name].length; i++) {
      max = Math.max(max, Math.abs(a[name][i] - b[name][i]));
    }
  }
  return max;
}

function relDiff(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-12);
}

async function seeded(config: ModelConfig, seed: number): Promise<NativeModel> {
  const model = new (native().Model)(config);
  await model.seed(seed);
  return model;
}

const plain = (b: NativeTrainBatch) => ({
  shape: b.shape,
  ids: Array.from(b.ids),
  lengths: Array.from(b.lengths),
  tags: Array.from(b.tags!),
});

describe('steps against PyTorch (torch.optim.AdamW, clip_grad_norm_, pytorch-crf NLL)', () => {
  it.each<HeadKind>(['crf', 'softmax'])(
    '%s: 3 steps of 2 micro-batches agree to 1e-5',
    async (head) => {
      const config = tinyConfig(head, 0);
      const model = await seeded(config, 11);
      const dir = path.join(GENERATED, head);
      mkdirSync(dir, { recursive: true });
      await model.saveWeights(path.join(dir, 'initial.safetensors'));
      // A decaying rate at the top of fine-tuning's range: the weights move 200× the tolerance,
      // and Adam's amplification of rounding near eps (see OPTIONS) stays well inside it.
      const steps = [1e-3, 8e-4, 5e-4].map((lr, s) => ({
        lr,
        batches: [makeBatch(100 + 2 * s, 5, 12, config), makeBatch(101 + 2 * s, 3, 7, config)],
      }));
      const snake = {
        hidden_size: config.hiddenSize,
        num_attention_heads: config.numAttentionHeads,
        num_hidden_layers: config.numHiddenLayers,
        layer_norm_eps: config.layerNormEps,
      };
      writeFileSync(
        path.join(dir, 'case.json'),
        JSON.stringify({
          config: snake,
          head,
          options: OPTIONS,
          steps: steps.map((s) => ({ lr: s.lr, batches: s.batches.map(plain) })),
        }),
      );
      execFileSync(
        '/usr/bin/python3',
        [path.join(packageRoot, 'scripts/fixtures/trainer_reference.py'), dir],
        { stdio: 'inherit' },
      );
      const expected = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as {
        loss: number[];
        gradNorm: number[];
      };

      const trainer = new (native().Trainer)(model, OPTIONS);
      const results: NativeStepResult[] = [];
      for (const s of steps) results.push(await trainer.step(s.batches, s.lr));

      const initial = await readWeights(path.join(dir, 'initial.safetensors'));
      const after = await weightsOf(model);
      const reference = await readWeights(path.join(dir, 'expected.safetensors'));
      const dw = maxDiff(after, reference);
      const lossDiff = Math.max(...results.map((r, i) => relDiff(r.loss, expected.loss[i])));
      const normDiff = Math.max(
        ...results.map((r, i) => relDiff(r.gradNorm, expected.gradNorm[i])),
      );
      console.log(
        `trainer ${head} vs PyTorch after 3 steps: max |Δw| ${dw.toExponential(2)}, ` +
          `max rel Δloss ${lossDiff.toExponential(2)}, max rel ΔgradNorm ${normDiff.toExponential(2)}`,
      );
      // The comparison means something: the weights moved far more than the tolerance.
      expect(maxDiff(after, initial)).toBeGreaterThan(1e-3);
      expect(dw).toBeLessThanOrEqual(1e-5);
      expect(lossDiff).toBeLessThan(1e-5);
      expect(normDiff).toBeLessThan(1e-5);
      // Clipping was active (norms above clipNorm), and the counts are the head's normaliser.
      expect(results[0].gradNorm).toBeGreaterThan(OPTIONS.clipNorm);
      for (const [i, r] of results.entries()) {
        expect(r.sentences).toBe(8);
        expect(r.pieces).toBe(
          steps[i].batches.reduce((n, b) => n + b.lengths.reduce((x, y) => x + y, 0), 0),
        );
        expect(r.skipped).toBe(false);
      }
    },
  );
});

describe('gradient accumulation', () => {
  it.each<HeadKind>(['crf', 'softmax', 'bilstm-crf'])(
    '%s: a step over micro-batches [b1, b2] equals a step over their concatenation',
    async (head) => {
      const config = tinyConfig(head, 0);
      const a = await seeded(config, 5);
      const b = await seeded(config, 5);
      const ta = new (native().Trainer)(a, OPTIONS);
      const tb = new (native().Trainer)(b, OPTIONS);
      // One step: accumulation is about one step's gradients (Adam's moments are covered above),
      // at a modest rate, since Adam turns the rounding differences of gradients near eps into
      // weight differences proportional to the rate (see OPTIONS).
      const b1 = makeBatch(200, 4, 12, config);
      const b2 = makeBatch(300, 3, 6, config);
      const ra = await ta.step([b1, b2], 5e-4);
      const rb = await tb.step([concatBatches([b1, b2], config.padTokenId)], 5e-4);
      expect([ra.sentences, ra.pieces]).toEqual([rb.sentences, rb.pieces]);
      const worstLoss = Math.max(relDiff(ra.loss, rb.loss), relDiff(ra.gradNorm, rb.gradNorm));
      const dw = maxDiff(await weightsOf(a), await weightsOf(b));
      console.log(
        `accumulation ${head}: max |Δw| ${dw.toExponential(2)}, max rel Δloss/norm ${worstLoss.toExponential(2)}`,
      );
      expect(dw).toBeLessThanOrEqual(1e-6);
      expect(worstLoss).toBeLessThan(1e-5);
    },
  );
});

describe('optimizer and random state', () => {
  it('k steps, save, n steps equals k steps, load into a fresh model, n steps (dropout on)', async () => {
    const config = tinyConfig('crf', 0.2);
    const addon = native();
    const batches = Array.from({ length: 6 }, (_, s) => [makeBatch(400 + s, 6, 12, config)]);
    const lr = 2e-3;

    const a = await seeded(config, 21);
    const ta = new addon.Trainer(a, OPTIONS);
    for (const batch of batches.slice(0, 3)) await ta.step(batch, lr);
    const weights = path.join(tmp, 'resume-weights.safetensors');
    const state = path.join(tmp, 'resume-optimizer.safetensors');
    await a.saveWeights(weights);
    await ta.saveState(state);
    const rng = addon.getRngState();
    for (const batch of batches.slice(3)) await ta.step(batch, lr);
    const w1 = await weightsOf(a);

    const resume = async (restoreRng: boolean) => {
      const b = new addon.Model(config);
      await b.loadWeights(weights);
      const tb = new addon.Trainer(b, OPTIONS);
      await tb.loadState(state);
      if (restoreRng) addon.setRngState(rng);
      for (const batch of batches.slice(3)) await tb.step(batch, lr);
      return weightsOf(b);
    };
    const w2 = await resume(true);
    expect(maxDiff(w1, w2)).toBe(0);
    // Without the generator's state the dropout masks differ, and so do the weights: the state
    // file and the RNG are both needed, and both work.
    expect(maxDiff(w1, await resume(false))).toBeGreaterThan(1e-6);
  });

  it('layer decay: each depth steps at lr · decay^(top − depth), resumably', async () => {
    const config = tinyConfig('crf', 0); // 2 encoder layers: the heads are depth 3
    const batch = [makeBatch(450, 6, 12, config)];
    const lr = 1e-3;
    const decay = 0.5;
    // Adam's first step moves every element by lr · g / (|g| + eps) (no decay, no clipping): by
    // the group's rate wherever the gradient is far above eps. The largest move of each tensor
    // is therefore its group's rate.
    const options = { ...OPTIONS, weightDecay: 0, eps: 1e-12, clipNorm: 0, layerDecay: decay };
    const model = await seeded(config, 31);
    const before = await weightsOf(model);
    await new (native().Trainer)(model, options).step(batch, lr);
    const after = await weightsOf(model);
    const depth = (name: string) =>
      name.startsWith('bert.embeddings.')
        ? 0
        : name.startsWith('bert.encoder.layer.')
          ? 1 + Number(name.split('.')[3])
          : 3;
    const seen = new Set<number>();
    for (const name of Object.keys(before)) {
      let moved = 0;
      for (let i = 0; i < before[name].length; i++) {
        moved = Math.max(moved, Math.abs(after[name][i] - before[name][i]));
      }
      if (moved === 0) continue; // no gradient reaches it (the pooler)
      seen.add(depth(name));
      // float32 rounds a move of 1e-4 on a weight near 1 by up to 6e-8: relative 1e-3 allows it.
      expect(relDiff(moved / lr, decay ** (3 - depth(name))), name).toBeLessThan(1e-3);
    }
    expect([...seen].sort()).toEqual([0, 1, 2, 3]);

    // The groups do not disturb resuming: k steps, save, load, n steps equals k + n steps.
    const steps = Array.from({ length: 4 }, (_, s) => [makeBatch(460 + s, 5, 10, config)]);
    const a = await seeded(config, 32);
    const ta = new (native().Trainer)(a, options);
    for (const b of steps.slice(0, 2)) await ta.step(b, lr);
    const weights = path.join(tmp, 'decay-weights.safetensors');
    const state = path.join(tmp, 'decay-optimizer.safetensors');
    await a.saveWeights(weights);
    await ta.saveState(state);
    for (const b of steps.slice(2)) await ta.step(b, lr);
    const b = new (native().Model)(config);
    await b.loadWeights(weights);
    const tb = new (native().Trainer)(b, options);
    await tb.loadState(state);
    for (const s of steps.slice(2)) await tb.step(s, lr);
    expect(maxDiff(await weightsOf(a), await weightsOf(b))).toBe(0);
  });

  it('names the state after the parameters, with metadata', async () => {
    const config = tinyConfig('crf', 0);
    const model = await seeded(config, 1);
    const trainer = new (native().Trainer)(model, OPTIONS);
    await trainer.step([makeBatch(1, 3, 8, config)], 1e-3);
    const file = path.join(tmp, 'state-names.safetensors');
    await trainer.saveState(file);
    const tensors = await native().inspectCheckpoint(file);
    const byName = new Map(tensors.map((t) => [t.name, t]));
    const parameters = model.parameterInfo();
    expect(tensors.length).toBe(3 * parameters.length);
    for (const p of parameters) {
      expect(byName.get(`exp_avg.${p.name}`)).toMatchObject({ shape: p.shape, dtype: 'float32' });
      expect(byName.get(`exp_avg_sq.${p.name}`)).toMatchObject({
        shape: p.shape,
        dtype: 'float32',
      });
      expect(byName.get(`step.${p.name}`)).toMatchObject({ shape: [], dtype: 'int64' });
    }
    const step = await native().readTensors(file, ['step.bert.embeddings.word_embeddings.weight']);
    const steps = new BigInt64Array(
      step['step.bert.embeddings.word_embeddings.weight'].data.slice().buffer,
    );
    expect(steps[0]).toBe(1n);
    const header = readFileSync(file);
    const json = JSON.parse(header.subarray(8, 8 + Number(header.readBigUInt64LE(0))).toString());
    expect(json.__metadata__).toMatchObject({
      format: 'koner-adamw',
      version: '1',
      parameters: String(parameters.length),
    });
  });

  it('loadState refuses a state that does not fit, changing nothing', async () => {
    const addon = native();
    const crf = await seeded(tinyConfig('crf', 0), 2);
    const softmax = await seeded(tinyConfig('softmax', 0), 2);
    const small = await seeded({ ...tinyConfig('crf', 0), labels: ['O', 'B-X', 'I-X'] }, 2);
    const files: Record<string, string> = {};
    for (const [name, model] of Object.entries({ crf, softmax, small })) {
      files[name] = path.join(tmp, `state-${name}.safetensors`);
      await new addon.Trainer(model, OPTIONS).saveState(files[name]);
    }
    const trainer = new addon.Trainer(crf, OPTIONS);
    await expect(trainer.loadState(files.softmax)).rejects.toThrow(
      /does not match the model's parameters; missing: exp_avg\.crf\.transitions, exp_avg_sq\.crf\.transitions, step\.crf\.transitions, .* and 1 more$/,
    );
    await expect(new addon.Trainer(softmax, OPTIONS).loadState(files.crf)).rejects.toThrow(
      /unexpected: exp_avg\.crf\.end_transitions/,
    );
    await expect(trainer.loadState(files.small)).rejects.toThrow(
      /mis-shaped: exp_avg\.classifier\.weight has shape \[3, 32\], the parameter \[7, 32\], /,
    );
    const weights = path.join(tmp, 'not-a-state.safetensors');
    await crf.saveWeights(weights);
    await expect(trainer.loadState(weights)).rejects.toThrow(
      /not a koner optimizer state \(metadata format is "pt", expected "koner-adamw"\)/,
    );
    await expect(trainer.loadState(path.join(tmp, 'missing.safetensors'))).rejects.toThrow(
      /missing\.safetensors/,
    );
    // Still usable, from a fresh state.
    await trainer.loadState(files.crf);
    const r = await trainer.step([makeBatch(9, 2, 5, tinyConfig('crf', 0))], 1e-3);
    expect(r.skipped).toBe(false);
  });

  it('getRngState/setRngState round-trip and refuse bad states', async () => {
    const addon = native();
    const before = addon.getRngState();
    expect(before).toMatch(/^[A-Za-z0-9+/]+=*$/);
    const first = await weightsOf(new addon.Model(tinyConfig('crf', 0)));
    addon.setRngState(before);
    // A model built after the restore draws the same initial weights.
    const again = await weightsOf(new addon.Model(tinyConfig('crf', 0)));
    expect(maxDiff(first, again)).toBe(0);
    expect(addon.getRngState()).not.toBe(before);
    expect(() => addon.setRngState('not base64!')).toThrow(/rng state: not valid base64/);
    expect(() => addon.setRngState(before.slice(0, 400))).toThrow(
      /rng state: 300 bytes, but this LibTorch's CPU generator state has \d+/,
    );
    expect(() => addon.setRngState(42 as never)).toThrow(/state: expected a string/);
  });
});

interface WorkerResult {
  rank: number;
  results: NativeStepResult[];
}

describe('data parallel over Gloo (2 CPU workers through the launcher)', () => {
  it('2 workers × B sentences equal 1 process × 2B after 4 steps', async () => {
    const STEPS = 4;
    const B = 4;
    const outDir = mkdtempSync(path.join(tmp, 'dp-'));
    const lines: string[] = [];
    const errors: string[] = [];
    const sink = (into: string[]) => ({
      write: (text: string) => into.push(...text.split('\n').filter(Boolean)),
    });
    await launch({
      flags: checkLaunchFlags({ nproc: 2, masterAddr: '127.0.0.1' }),
      module: WORKER,
      args: [outDir, String(STEPS), String(B)],
      execArgv: ['--import', 'tsx'],
      cwd: packageRoot,
      output: { stdout: sink(lines), stderr: sink(errors) },
    }).catch((error: Error) => {
      throw new Error(`${error.message}\n${errors.join('\n')}`);
    });
    const workers = new Map<number, WorkerResult>();
    for (const line of lines) {
      const match = /^\[rank (\d+)\] RESULT (.*)$/.exec(line);
      if (match) workers.set(Number(match[1]), JSON.parse(match[2]) as WorkerResult);
    }
    expect([...workers.keys()].sort()).toEqual([0, 1]);

    const config = tinyConfig('crf', 0);
    const model = await seeded(config, 7);
    const trainer = new (native().Trainer)(model, OPTIONS);
    const single: NativeStepResult[] = [];
    for (let step = 0; step < STEPS; step++) {
      const all = [...dpBatches(step, 0, B, config), ...dpBatches(step, 1, B, config)];
      single.push(await trainer.step([concatBatches(all, config.padTokenId)], dpLr(step)));
    }
    const expected = await weightsOf(model);
    const rank0 = await readWeights(path.join(outDir, 'rank0.safetensors'));
    const rank1 = await readWeights(path.join(outDir, 'rank1.safetensors'));
    const dw = maxDiff(rank0, expected);
    console.log(`data parallel 2 × ${B} vs 1 × ${2 * B}: max |Δw| ${dw.toExponential(2)}`);
    expect(maxDiff(rank0, rank1)).toBe(0);
    expect(dw).toBeLessThanOrEqual(1e-5);
    for (const worker of workers.values()) {
      for (const [i, r] of worker.results.entries()) {
        expect(r.sentences).toBe(2 * B);
        expect(r.pieces).toBe(single[i].pieces);
        expect(relDiff(r.loss, single[i].loss)).toBeLessThan(1e-5);
        expect(relDiff(r.gradNorm, single[i].gradNorm)).toBeLessThan(1e-5);
      }
    }
  });
});

describe('arguments', () => {
  const config = tinyConfig('crf', 0);
  const addon = native();
  const model = new addon.Model(config);
  const trainer = new addon.Trainer(model, OPTIONS);
  const good = makeBatch(3, 3, 6, config);
  const T = good.shape[1];

  it.each<[string, (b: NativeTrainBatch) => unknown, RegExp]>([
    [
      'a tag outside 0..K-1',
      (b) => (b.tags![T + 1] = 7),
      /batches\[1\]\.tags\[1\]\[1\] = 7 is outside 0\.\.6 \(7 labels\)/,
    ],
    [
      'a negative tag',
      (b) => (b.tags![0] = -1),
      /batches\[1\]\.tags\[0\]\[0\] = -1 is outside 0\.\.6/,
    ],
    [
      'a length of 0',
      (b) => (b.lengths[2] = 0),
      /batches\[1\]\.lengths\[2\] = 0 is outside 1\.\.6/,
    ],
    [
      'a length beyond T',
      (b) => (b.lengths[1] = T + 1),
      /batches\[1\]\.lengths\[1\] = 7 is outside 1\.\.6/,
    ],
    [
      'an id outside the vocabulary',
      (b) => (b.ids[T * 2 + 5] = 60),
      /batches\[1\]\.ids\[2\]\[5\] = 60 is outside the vocabulary 0\.\.59/,
    ],
    [
      'ids of the wrong size',
      (b) => (b.ids = b.ids.subarray(1)),
      /batches\[1\]\.ids: shape \[3, 6\] needs 18 values, got 17/,
    ],
    [
      'tags of the wrong type',
      (b) => (b.tags = new Float32Array(b.tags!) as never),
      /batches\[1\]\.tags: expected a Int32Array/,
    ],
    [
      'a 3-d shape',
      (b) => (b.shape = [3, 6, 1] as never),
      /batches\[1\]\.shape: expected \[batch, pieces\], got \[3, 6, 1\]/,
    ],
    ['an empty shape', (b) => (b.shape = [0, 6]), /batches\[1\]\.shape \[0, 6\]: empty/],
    [
      'more pieces than positions',
      (b) => (b.shape = [1, 25]),
      /batches\[1\]\.shape \[1, 25\]: 25 pieces exceed maxPositionEmbeddings \(24\)/,
    ],
  ])('rejects %s, naming the batch and field', (_, spoil, message) => {
    const bad = {
      ...good,
      ids: good.ids.slice(),
      tags: good.tags!.slice(),
      lengths: good.lengths.slice(),
    };
    spoil(bad);
    expect(() => trainer.step([good, bad], 1e-3)).toThrow(message);
  });

  it('rejects bad steps and options', async () => {
    expect(() => trainer.step([], 1e-3)).toThrow(/batches: empty/);
    expect(() => trainer.step([good], -1)).toThrow(/lr: must be a finite number >= 0, got -1/);
    expect(() => trainer.step([good], NaN)).toThrow(/lr: must be a finite number/);
    expect(() => trainer.step({} as never, 1e-3)).toThrow(/batches: expected an array/);
    expect(() => trainer.step([good], 1e-3, {} as never)).toThrow(/group: expected a DistGroup/);
    expect(() => trainer.broadcastParameters({} as never)).toThrow(/group: expected a DistGroup/);
    const T = addon.Trainer;
    const cases: [unknown, unknown, RegExp][] = [
      [{}, OPTIONS, /model: expected a Model/],
      [
        model,
        { ...OPTIONS, weightDecay: -0.1 },
        /options\.weightDecay: must be a finite number >= 0/,
      ],
      [model, { ...OPTIONS, betas: [1, 0.999] }, /options\.betas\[0\]: must be in \[0, 1\)/],
      [model, { ...OPTIONS, betas: [0.9] }, /options\.betas: must be \[beta1, beta2\]/],
      [model, { ...OPTIONS, eps: 0 }, /options\.eps: must be a finite number > 0/],
      [model, { ...OPTIONS, clipNorm: -1 }, /options\.clipNorm/],
      [model, { ...OPTIONS, layerDecay: 0 }, /options\.layerDecay: must be in \(0, 1\], got 0/],
      [model, { ...OPTIONS, layerDecay: 1.5 }, /options\.layerDecay: must be in \(0, 1\]/],
      [
        model,
        { ...OPTIONS, autocast: 'int8' },
        /options\.autocast: must be 'float32', 'bfloat16' or 'float16'/,
      ],
      [model, { ...OPTIONS, lr: 1e-3 }, /options\.lr: unknown field/],
      [model, { betas: [0.9, 0.999], eps: 1e-8, clipNorm: 1 }, /options\.weightDecay: missing/],
    ];
    for (const [m, o, message] of cases)
      expect(() => new T(m as never, o as never)).toThrow(message);
    // float16 autocast is for CUDA: on a CPU model the constructor says so.
    expect(() => new T(model, { ...OPTIONS, autocast: 'float16' })).toThrow(
      'options.autocast: float16 autocast needs the model on CUDA (it is on cpu); on the CPU ' +
        'use bfloat16 or float32',
    );
    // A failed call leaves the trainer usable.
    expect((await trainer.step([good], 1e-3)).skipped).toBe(false);
  });
});

describe('bfloat16 autocast on the CPU', () => {
  const cpu = native().cpuFeatures();
  const bf16 = cpu.avx512Bf16 || cpu.amxBf16;

  it.skipIf(!bf16)('runs the encoder in bfloat16: close to float32, not equal to it', async () => {
    const config = tinyConfig('crf', 0);
    const batch = makeBatch(21, 6, 14, config);
    const train = async (autocast: 'float32' | 'bfloat16') => {
      const model = await seeded(config, 11);
      const trainer = new (native().Trainer)(model, { ...OPTIONS, autocast });
      const results: NativeStepResult[] = [];
      for (let s = 0; s < 5; s++) results.push(await trainer.step([batch], 1e-2));
      return results;
    };
    const f32 = await train('float32');
    const b16 = await train('bfloat16');
    console.log(
      `bf16 autocast, 5 steps: losses ${b16.map((r) => r.loss.toFixed(4)).join(' ')}; ` +
        `float32 ${f32.map((r) => r.loss.toFixed(4)).join(' ')}`,
    );
    // bfloat16 keeps 8 significant bits: the first loss agrees to about 1% and is not float32's;
    // the weights, the optimizer and the CRF stay float32, so the runs stay together.
    expect(b16[0].loss).not.toBe(f32[0].loss);
    expect(relDiff(b16[0].loss, f32[0].loss)).toBeLessThan(0.02);
    expect(relDiff(b16[0].gradNorm, f32[0].gradNorm)).toBeLessThan(0.05);
    for (let s = 1; s < 5; s++) expect(relDiff(b16[s].loss, f32[s].loss)).toBeLessThan(0.05);
  });

  it.skipIf(!bf16)('learns: the loss falls on a fixed tiny batch (overfit)', async () => {
    const config = tinyConfig('crf', 0.1);
    const model = await seeded(config, 3);
    const trainer = new (native().Trainer)(model, {
      ...OPTIONS,
      clipNorm: 5,
      autocast: 'bfloat16',
    });
    const batch = makeBatch(77, 4, 10, config);
    const losses: number[] = [];
    for (let s = 0; s < 40; s++) losses.push((await trainer.step([batch], 1e-2)).loss);
    console.log(`overfit bf16: loss ${losses[0].toFixed(3)} -> ${losses.at(-1)!.toFixed(3)}`);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)!).toBeLessThan(0.3 * losses[0]);
  });

  it('is refused, naming the missing instructions, where the CPU lacks them', () => {
    // The addon reads KONER_CPU_DISABLE once per process: a child process asks.
    const code =
      "const { native } = await import('./lib/native.ts');" +
      "const { tinyConfig, OPTIONS } = await import('./test/fixtures/trainer-data.ts');" +
      "const model = new (native().Model)(tinyConfig('crf', 0));" +
      "try { new (native().Trainer)(model, { ...OPTIONS, autocast: 'bfloat16' }); console.log('accepted'); }" +
      ' catch (error) { console.log(error.message); }';
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', code],
      {
        cwd: packageRoot,
        env: { ...process.env, KONER_CPU_DISABLE: 'avx512_bf16,amx_bf16' },
        encoding: 'utf8',
      },
    );
    expect(out.trim()).toBe(
      'options.autocast: bfloat16 autocast on the CPU: this CPU has neither AVX512_BF16 nor ' +
        'AMX-BF16 (bfloat16 matrix products would be emulated, slower than float32); use float32',
    );
  });
});

describe('training', () => {
  it.each<HeadKind>(['crf', 'softmax'])(
    '%s: the loss falls on a fixed tiny batch (overfit)',
    async (head) => {
      const config = tinyConfig(head, 0.1);
      const model = await seeded(config, 3);
      const trainer = new (native().Trainer)(model, { ...OPTIONS, clipNorm: 5 });
      const batch = makeBatch(77, 4, 10, config);
      const losses: number[] = [];
      for (let s = 0; s < 40; s++) losses.push((await trainer.step([batch], 1e-2)).loss);
      console.log(`overfit ${head}: loss ${losses[0].toFixed(3)} -> ${losses.at(-1)!.toFixed(3)}`);
      expect(losses.at(-1)!).toBeLessThan(0.3 * losses[0]);
      // And the model's own loss (eval mode, batch or token mean) agrees that it learned.
      const evalLoss = await model.loss(batch.ids, batch.shape, batch.lengths, batch.tags!);
      expect(evalLoss).toBeLessThan(0.3 * losses[0]);
    },
  );

  it('is back in eval mode after a step, and inference never sees a half-updated model', async () => {
    const config = tinyConfig('crf', 0.3);
    const model = await seeded(config, 4);
    const trainer = new (native().Trainer)(model, OPTIONS);
    const batch = makeBatch(5, 6, 12, config);
    const probe = () => model.emissions(batch.ids, batch.shape, batch.lengths);
    const before = await probe();
    // Started together: each inference runs wholly before or wholly after the step's update.
    const racing = await Promise.all([probe(), trainer.step([batch], 5e-2), probe(), probe()]);
    const same = (x: Float32Array, y: Float32Array) => x.every((v, i) => v === y[i]);
    const settled = await probe();
    expect(same(await probe(), settled)).toBe(true); // no dropout after the step
    expect(same(before, settled)).toBe(false);
    for (const seen of [racing[0], racing[2], racing[3]] as Float32Array[]) {
      expect(same(seen, before) || same(seen, settled)).toBe(true);
    }
  });
});
