/**
 * The optional parts of the model and the objectives that train them (binding/model/mlm_head,
 * the POS classifier and the syllable channel in binding/model, binding/train/loss and
 * trainer): parameter names, the losses against an independent computation from the saved
 * weights, the zero start of the syllable channel, each objective's own normalisation, and the
 * errors for batches that do not fit the model.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseModelConfig, type ModelConfig } from '../lib/model/config.js';
import { native, type NativeModel, type NativeTrainBatch } from '../lib/native.js';
import { seededFloats } from './fixtures/random.js';

const V = 40; // vocabulary
const H = 16; // hidden size
const B = 3;
const T = 7;
const LENGTHS = Int32Array.from([7, 5, 3]);
const POS = ['NNG', 'NNP', 'JKS', 'VV'];

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-objectives-'));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function config(extra: Record<string, unknown>): ModelConfig {
  return parseModelConfig({
    vocab_size: V,
    hidden_size: H,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    intermediate_size: 32,
    max_position_embeddings: 16,
    head: 'crf',
    id2label: { 0: 'O', 1: 'B-PER', 2: 'I-PER' },
    ...extra,
  });
}

const encoderOnly = { head: 'none', id2label: undefined };

async function build(c: ModelConfig, seed = 3): Promise<NativeModel> {
  const m = new (native().Model)(c);
  await m.seed(seed);
  return m;
}

function trainer(m: NativeModel, posWeight?: number) {
  return new (native().Trainer)(m, {
    weightDecay: 0,
    betas: [0.9, 0.999],
    eps: 1e-8,
    clipNorm: 0,
    posWeight,
  });
}

/** ids [B, T] in 5..V-1 (no special ids), padding 1. */
function batchIds(seed: number): Int32Array {
  const rand = seededFloats(seed);
  const ids = new Int32Array(B * T).fill(1);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < LENGTHS[b]; t++) ids[b * T + t] = 5 + Math.floor(rand() * (V - 5));
  }
  return ids;
}

async function weights(m: NativeModel): Promise<Record<string, Float32Array>> {
  const file = path.join(tmp, `w-${Math.random().toString(36).slice(2)}.safetensors`);
  await m.saveWeights(file);
  const raw = await native().readTensors(file, null, true);
  const out: Record<string, Float32Array> = {};
  for (const [name, t] of Object.entries(raw)) {
    out[name] = new Float32Array(Uint8Array.from(t.data).buffer);
  }
  return out;
}

/** y = x W^T + b for x [n, in], W [out, in]. */
function linear(x: Float64Array, n: number, w: Float32Array, b: Float32Array | null, out: number) {
  const inDim = x.length / n;
  const y = new Float64Array(n * out);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < out; o++) {
      let s = b ? b[o] : 0;
      for (let k = 0; k < inDim; k++) s += x[i * inDim + k] * w[o * inDim + k];
      y[i * out + o] = s;
    }
  }
  return y;
}

function erf(x: number): number {
  // Abramowitz-Stegun 7.1.26 is too coarse for 1e-5; integrate the series instead.
  let sum = x;
  let term = x;
  for (let n = 1; n < 60; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** Hugging Face's gelu (erf form). */
function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

function crossEntropy(logits: Float64Array, row: number, width: number, target: number): number {
  let max = -Infinity;
  for (let k = 0; k < width; k++) max = Math.max(max, logits[row * width + k]);
  let z = 0;
  for (let k = 0; k < width; k++) z += Math.exp(logits[row * width + k] - max);
  return Math.log(z) + max - logits[row * width + target];
}

/** The masked-LM head's logits [masked.length, V], computed from the hidden states and weights. */
async function mlmLogits(
  m: NativeModel,
  ids: Int32Array,
  masked: [number, number][],
): Promise<Float64Array> {
  const hidden = await m.hidden(ids, [B, T], LENGTHS);
  const w = await weights(m);
  const n = masked.length;
  const x = new Float64Array(n * H);
  masked.forEach(([b, t], i) => {
    for (let k = 0; k < H; k++) x[i * H + k] = hidden[(b * T + t) * H + k];
  });
  const d = linear(
    x,
    n,
    w['cls.predictions.transform.dense.weight'],
    w['cls.predictions.transform.dense.bias'],
    H,
  );
  for (let i = 0; i < d.length; i++) d[i] = gelu(d[i]);
  const g = w['cls.predictions.transform.LayerNorm.weight'];
  const beta = w['cls.predictions.transform.LayerNorm.bias'];
  for (let i = 0; i < n; i++) {
    let mean = 0;
    for (let k = 0; k < H; k++) mean += d[i * H + k] / H;
    let variance = 0;
    for (let k = 0; k < H; k++) variance += (d[i * H + k] - mean) ** 2 / H;
    for (let k = 0; k < H; k++) {
      d[i * H + k] = ((d[i * H + k] - mean) / Math.sqrt(variance + 1e-12)) * g[k] + beta[k];
    }
  }
  return linear(d, n, w['bert.embeddings.word_embeddings.weight'], w['cls.predictions.bias'], V);
}

describe('the masked-LM head', () => {
  it('has Hugging Face BertForMaskedLM names, the decoder tied to the word embeddings', async () => {
    const m = await build(config({ ...encoderOnly, mlm_head: true }));
    const names = m.parameterInfo().map((p) => p.name);
    expect(names.filter((n) => n.startsWith('cls.'))).toEqual([
      'cls.predictions.bias',
      'cls.predictions.transform.dense.weight',
      'cls.predictions.transform.dense.bias',
      'cls.predictions.transform.LayerNorm.weight',
      'cls.predictions.transform.LayerNorm.bias',
    ]);
    expect(names.some((n) => n.includes('decoder') || n.startsWith('classifier.'))).toBe(false);
  });

  it('gives the loss and accuracy computed from the hidden states and the saved weights', async () => {
    const m = await build(config({ ...encoderOnly, mlm_head: true }), 11);
    const ids = batchIds(5);
    const labels = new Int32Array(B * T).fill(-1);
    const rand = seededFloats(9);
    const masked: [number, number][] = [];
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < LENGTHS[b]; t++) {
        if (rand() < 0.4) {
          labels[b * T + t] = 5 + Math.floor(rand() * (V - 5));
          masked.push([b, t]);
        }
      }
    }
    expect(masked.length).toBeGreaterThan(2);
    const shape: [number, number] = [B, T];
    const logits = await mlmLogits(m, ids, masked);
    const n = masked.length;
    let loss = 0;
    let correct = 0;
    masked.forEach(([b, t], i) => {
      const target = labels[b * T + t];
      loss += crossEntropy(logits, i, V, target);
      let best = 0;
      for (let k = 1; k < V; k++) if (logits[i * V + k] > logits[i * V + best]) best = k;
      if (best === target) correct++;
    });
    const result = await trainer(m).evaluate([{ ids, shape, lengths: LENGTHS, mlmLabels: labels }]);
    expect(result.mlmLoss).toBeCloseTo(loss / n, 5);
    expect(result.mlmAccuracy).toBeCloseTo(correct / n, 10);
    expect(result.loss).toBeCloseTo(result.mlmLoss, 10);
    expect(result.taggingLoss).toBe(0);
    expect(result.mlmSamples).toBeUndefined();
  });

  it('draws from its distribution at each masked position when asked (sampleMasked)', async () => {
    const m = await build(config({ ...encoderOnly, mlm_head: true }), 4);
    const t = trainer(m);
    // A few steps towards id 7 everywhere make the distribution peaked but not certain.
    const ids = batchIds(6);
    const labels = Int32Array.from(ids, (id, i) => (i % 2 === 0 && id !== 1 ? 7 : -1));
    const masked: [number, number][] = [];
    labels.forEach((l, i) => {
      if (l >= 0) masked.push([Math.floor(i / T), i % T]);
    });
    const batch = { ids, shape: [B, T] as [number, number], lengths: LENGTHS, mlmLabels: labels };
    for (let i = 0; i < 6; i++) await t.step([batch], 1e-2);
    const logits = await mlmLogits(m, ids, masked);
    const p7 = masked.map((_, i) => {
      let z = 0;
      for (let k = 0; k < V; k++) z += Math.exp(logits[i * V + k] - logits[i * V + 7]);
      return 1 / z;
    });
    expect(Math.min(...p7)).toBeGreaterThan(0.05);
    expect(Math.max(...p7)).toBeLessThan(0.95);
    const draws = 400;
    const hits = new Array<number>(masked.length).fill(0);
    const state = native().getRngState();
    let first: Int32Array | undefined;
    for (let d = 0; d < draws; d++) {
      const r = await t.evaluate([{ ...batch, sampleMasked: true }]);
      expect(r.mlmSamples!.length).toBe(masked.length);
      r.mlmSamples!.forEach((id, i) => {
        expect(id).toBeGreaterThanOrEqual(0);
        expect(id).toBeLessThan(V);
        if (id === 7) hits[i]++;
      });
      first ??= Int32Array.from(r.mlmSamples!);
    }
    // Each position's share of id 7 is its probability, within 4 standard deviations.
    masked.forEach((_, i) => {
      const sd = Math.sqrt((p7[i] * (1 - p7[i])) / draws);
      expect(Math.abs(hits[i] / draws - p7[i]), `position ${i}`).toBeLessThan(4 * sd);
    });
    // LibTorch's generator: the same state draws the same pieces.
    native().setRngState(state);
    const again = await t.evaluate([{ ...batch, sampleMasked: true }]);
    expect(Array.from(again.mlmSamples!)).toEqual(Array.from(first!));
  });

  it('learns: a few steps on one batch lower its masked-LM loss', async () => {
    const m = await build(config({ ...encoderOnly, mlm_head: true }), 2);
    const ids = batchIds(8);
    const labels = Int32Array.from(ids, (id, i) => (i % 3 === 0 && id !== 1 ? id : -1));
    const masked = Int32Array.from(ids, (id, i) => (labels[i] >= 0 ? 4 : id));
    const batch: NativeTrainBatch = {
      ids: masked,
      shape: [B, T],
      lengths: LENGTHS,
      mlmLabels: labels,
    };
    const t = trainer(m);
    const before = (await t.evaluate([batch])).mlmLoss;
    for (let i = 0; i < 30; i++) await t.step([batch], 1e-2);
    const after = (await t.evaluate([batch])).mlmLoss;
    expect(after).toBeLessThan(before * 0.5);
  });
});

describe('the POS head', () => {
  it('is pos_classifier.*, one logit per tag; its loss is the mean over POS targets', async () => {
    const m = await build(config({ pos_labels: POS }), 4);
    expect(m.parameterInfo().filter((p) => p.name.startsWith('pos_'))).toEqual([
      { name: 'pos_classifier.weight', shape: [POS.length, H] },
      { name: 'pos_classifier.bias', shape: [POS.length] },
    ]);
    const ids = batchIds(3);
    const posTags = Int32Array.from({ length: B * T }, (_, i) =>
      i % 4 === 1 ? -1 : i % POS.length,
    );
    const shape: [number, number] = [B, T];
    const hidden = await m.hidden(ids, shape, LENGTHS);
    const w = await weights(m);
    let sum = 0;
    let count = 0;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < LENGTHS[b]; t++) {
        const target = posTags[b * T + t];
        if (target < 0) continue;
        const h = Float64Array.from(hidden.subarray((b * T + t) * H, (b * T + t + 1) * H));
        const logits = linear(
          h,
          1,
          w['pos_classifier.weight'],
          w['pos_classifier.bias'],
          POS.length,
        );
        sum += crossEntropy(logits, 0, POS.length, target);
        count++;
      }
    }
    const result = await trainer(m, 0.5).evaluate([{ ids, shape, lengths: LENGTHS, posTags }]);
    expect(result.posLoss).toBeCloseTo(sum / count, 5);
    expect(result.loss).toBeCloseTo(0.5 * result.posLoss, 10);
  });

  it('trains beside the tagging loss, each normalised by its own count', async () => {
    const m = await build(config({ pos_labels: POS }), 4);
    const ids = batchIds(3);
    const tags = Int32Array.from({ length: B * T }, (_, i) => i % 3);
    const posTags = Int32Array.from({ length: B * T }, (_, i) => i % POS.length);
    const both = await trainer(m, 0.5).evaluate([
      { ids, shape: [B, T], lengths: LENGTHS, tags, posTags },
    ]);
    const tagging = await m.loss(ids, [B, T], LENGTHS, tags);
    expect(both.taggingLoss).toBeCloseTo(tagging, 5);
    expect(both.loss).toBeCloseTo(both.taggingLoss + 0.5 * both.posLoss, 6);
    // Split into two micro-batches, the step's losses are the same.
    const one = {
      ids: ids.slice(0, T),
      shape: [1, T] as [number, number],
      lengths: LENGTHS.slice(0, 1),
    };
    const two = { ids: ids.slice(T), shape: [2, T] as [number, number], lengths: LENGTHS.slice(1) };
    // Without dropout, a step's forward is evaluate's.
    const still = { pos_labels: POS, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0 };
    const t = trainer(await build(config(still), 4), 0.5);
    const split = await t.step(
      [
        { ...one, tags: tags.slice(0, T), posTags: posTags.slice(0, T) },
        { ...two, tags: tags.slice(T), posTags: posTags.slice(T) },
      ],
      0,
    );
    expect(split.taggingLoss).toBeCloseTo(both.taggingLoss, 5);
    expect(split.posLoss).toBeCloseTo(both.posLoss, 5);
  });
});

describe('distillation', () => {
  const K = 3;
  /** A distribution per position (some positions without one: all zeros). */
  function softTargets(seed: number): Float32Array {
    const rand = seededFloats(seed);
    const out = new Float32Array(B * T * K);
    for (let i = 0; i < B * T; i++) {
      if (i % 5 === 2) continue;
      const raw = [rand(), rand(), rand()];
      const sum = raw[0] + raw[1] + raw[2];
      raw.forEach((x, k) => (out[i * K + k] = x / sum));
    }
    return out;
  }

  it('is the cross entropy of the softmax of the emissions against the targets, per target', async () => {
    const m = await build(config({}), 12);
    const ids = batchIds(4);
    const shape: [number, number] = [B, T];
    const targets = softTargets(2);
    const emissions = await m.emissions(ids, shape, LENGTHS);
    for (const temperature of [1, 2]) {
      let sum = 0;
      let count = 0;
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < LENGTHS[b]; t++) {
          const i = b * T + t;
          const q = targets.subarray(i * K, (i + 1) * K);
          if (q[0] + q[1] + q[2] === 0) continue;
          const e = Float64Array.from(
            emissions.subarray(i * K, (i + 1) * K),
            (x) => x / temperature,
          );
          for (let k = 0; k < K; k++) sum += q[k] * crossEntropy(e, 0, K, k);
          count++;
        }
      }
      const t = new (native().Trainer)(m, {
        weightDecay: 0,
        betas: [0.9, 0.999],
        eps: 1e-8,
        clipNorm: 0,
        distillWeight: 0.5,
        distillTemperature: temperature,
      });
      const result = await t.evaluate([{ ids, shape, lengths: LENGTHS, softTargets: targets }]);
      expect(result.distillLoss).toBeCloseTo((sum / count) * temperature * temperature, 5);
      expect(result.loss).toBeCloseTo(0.5 * result.distillLoss, 8);
    }
  });

  it('counts only the tagged rows in the tagging loss', async () => {
    const m = await build(config({}), 12);
    const ids = batchIds(4);
    const tags = Int32Array.from({ length: B * T }, (_, i) => i % 3);
    const shape: [number, number] = [B, T];
    const tagged = Uint8Array.from([1, 0, 1]);
    // Untagged rows may hold anything.
    const junk = tags.slice();
    junk.fill(99, T, 2 * T);
    const result = await trainer(m).evaluate([
      { ids, shape, lengths: LENGTHS, tags: junk, tagged },
    ]);
    const rows = [0, 2].map((b) => ({
      ids: ids.slice(b * T, (b + 1) * T),
      tags: tags.slice(b * T, (b + 1) * T),
      length: LENGTHS[b],
    }));
    let sum = 0;
    for (const r of rows) sum += await m.loss(r.ids, [1, T], Int32Array.of(r.length), r.tags);
    expect(result.taggingLoss).toBeCloseTo(sum / 2, 5);
    expect(() =>
      trainer(m).step(
        [{ ids, shape, lengths: LENGTHS, tags: junk, tagged: Uint8Array.of(1, 1, 1) }],
        0,
      ),
    ).toThrow(/tags\[1\]\[0\] = 99 is outside 0\.\.2/);
    const bad = softTargets(3);
    bad[4] = 2;
    expect(() => trainer(m).step([{ ids, shape, lengths: LENGTHS, softTargets: bad }], 0)).toThrow(
      /softTargets\[0\]\[1\]: must be a distribution over the labels/,
    );
  });
});

describe('the syllable channel', () => {
  const S = 3;
  const SYLLABLES = 20;
  /** Each id's syllables: a function of the id, so a word embedding can stand in for them. */
  const syllablesOf = (id: number): number[] =>
    id === 1 ? [0, 0, 0] : [1 + (id % 7), id % 2 === 0 ? 2 + (id % 11) : 0, 0];

  it('starts at zero: the encoder computes what it computes without the channel', async () => {
    const plain = await build(config({ pos_labels: POS }), 6);
    const withChannel = await build(config({ pos_labels: POS, syllable_vocab_size: SYLLABLES }), 6);
    const file = path.join(tmp, 'plain.safetensors');
    await plain.saveWeights(file);
    // An encoder without the channel loads into a model with it (the channel stays zero).
    const encoder = path.join(tmp, 'encoder.safetensors');
    const names = plain
      .parameterInfo()
      .map((p) => p.name)
      .filter((n) => n.startsWith('bert.'));
    await native().convertCheckpoint(
      file,
      encoder,
      names.map((n) => [n, n.slice(5)]),
    );
    await withChannel.loadWeights(encoder);
    const w = await weights(withChannel);
    expect(w['bert.embeddings.syllable_embeddings.weight'].every((x) => x === 0)).toBe(true);
  });

  it('adds the mean of each piece’s syllable embeddings to its embedding', async () => {
    const c = config({ pos_labels: POS, syllable_vocab_size: SYLLABLES });
    const m = await build(c, 6);
    // Draw the syllable embeddings (seed() keeps them at zero): from a second, plain model.
    const file = path.join(tmp, 'syl.safetensors');
    await m.saveWeights(file);
    const rand = seededFloats(17);
    const table = Float32Array.from({ length: SYLLABLES * H }, (_, i) =>
      i < H ? 0 : (rand() - 0.5) * 0.2,
    );
    const drawn = path.join(tmp, 'syl-drawn.safetensors');
    const keep = m
      .parameterInfo()
      .map((p) => p.name)
      .filter((n) => !n.includes('syllable'));
    await native().convertCheckpoint(
      file,
      drawn,
      keep.map((n) => [n, n]),
      {
        extra: [
          {
            name: 'bert.embeddings.syllable_embeddings.weight',
            shape: [SYLLABLES, H],
            init: 'values',
            values: table,
          },
        ],
      },
    );
    await m.loadWeights(drawn);

    // The same model without the channel, each word embedding plus its syllables' mean.
    const plain = await build(config({ pos_labels: POS }), 6);
    const w = await weights(m);
    const words = Float32Array.from(w['bert.embeddings.word_embeddings.weight']);
    for (let id = 0; id < V; id++) {
      const syl = syllablesOf(id).filter((s) => s !== 0);
      for (const s of syl) {
        for (let k = 0; k < H; k++) words[id * H + k] += table[s * H + k] / syl.length;
      }
    }
    const folded = path.join(tmp, 'folded.safetensors');
    await native().convertCheckpoint(
      drawn,
      folded,
      keep.filter((n) => n !== 'bert.embeddings.word_embeddings.weight').map((n) => [n, n]),
      {
        extra: [
          {
            name: 'bert.embeddings.word_embeddings.weight',
            shape: [V, H],
            init: 'values',
            values: words,
          },
        ],
      },
    );
    await plain.loadWeights(folded);

    const ids = batchIds(21);
    const syllables = new Int32Array(B * T * S);
    ids.forEach((id, i) => syllables.set(syllablesOf(id), i * S));
    const posTags = Int32Array.from({ length: B * T }, (_, i) => i % POS.length);
    const shape: [number, number] = [B, T];
    const a = await trainer(m).evaluate([
      { ids, shape, lengths: LENGTHS, posTags, syllables, syllablesPerPiece: S },
    ]);
    const b = await trainer(plain).evaluate([{ ids, shape, lengths: LENGTHS, posTags }]);
    expect(a.posLoss).toBeCloseTo(b.posLoss, 5);
    // Inference takes them the same way, as the last argument.
    const inputs = { syllables, syllablesPerPiece: S };
    const hiddenA = await m.hidden(ids, shape, LENGTHS, inputs);
    const hiddenB = await plain.hidden(ids, shape, LENGTHS);
    expect(Math.max(...hiddenA.map((x, i) => Math.abs(x - hiddenB[i])))).toBeLessThan(1e-5);
    expect(() => m.hidden(ids, shape, LENGTHS)).toThrow(
      /syllables: the model has a syllable channel \(syllable_vocab_size 20\)/,
    );
    expect(() => plain.emissions(ids, shape, LENGTHS, inputs)).toThrow(
      /syllables: the model has no syllable channel/,
    );
    expect(() => m.hidden(ids, shape, LENGTHS, { syllables, syllablesPerPiece: 2 })).toThrow(
      /syllables/,
    );
    // And the syllables matter: others give another loss.
    const other = await trainer(m).evaluate([
      {
        ids,
        shape,
        lengths: LENGTHS,
        posTags,
        syllables: syllables.map((s) => (s ? 1 + ((s + 3) % 19) : 0)),
        syllablesPerPiece: S,
      },
    ]);
    expect(Math.abs(other.posLoss - a.posLoss)).toBeGreaterThan(1e-4);
  });
});

describe('the replaced-token head (ELECTRA)', () => {
  const rtd = { ...encoderOnly, rtd_head: true };

  it('has Hugging Face ElectraDiscriminatorPredictions names', async () => {
    const m = await build(config(rtd));
    const names = m.parameterInfo().map((p) => p.name);
    expect(names.filter((n) => !n.startsWith('bert.'))).toEqual([
      'discriminator_predictions.dense.weight',
      'discriminator_predictions.dense.bias',
      'discriminator_predictions.dense_prediction.weight',
      'discriminator_predictions.dense_prediction.bias',
    ]);
  });

  it('gives the binary cross entropy and accuracy computed from the hidden states and weights', async () => {
    const m = await build(config(rtd), 12);
    // Trained a little so that the logits are far from 0 and both kinds of call occur.
    const ids = batchIds(13);
    const rand = seededFloats(14);
    const labels = new Int32Array(B * T).fill(-1);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < LENGTHS[b]; t++) {
        if (rand() < 0.85) labels[b * T + t] = rand() < 0.4 ? 1 : 0;
      }
    }
    const batch = { ids, shape: [B, T] as [number, number], lengths: LENGTHS, rtdLabels: labels };
    const t = trainer(m);
    for (let i = 0; i < 3; i++) await t.step([batch], 1e-2);
    const hidden = await m.hidden(ids, [B, T], LENGTHS);
    const w = await weights(m);
    const x = Float64Array.from(hidden);
    const d = linear(
      x,
      B * T,
      w['discriminator_predictions.dense.weight'],
      w['discriminator_predictions.dense.bias'],
      H,
    ).map(gelu);
    const logits = linear(
      d,
      B * T,
      w['discriminator_predictions.dense_prediction.weight'],
      w['discriminator_predictions.dense_prediction.bias'],
      1,
    );
    let loss = 0;
    let correct = 0;
    let judged = 0;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < LENGTHS[b]; t++) {
        const y = labels[b * T + t];
        if (y < 0) continue;
        const z = logits[b * T + t];
        loss += Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z)));
        if (z > 0 === (y === 1)) correct++;
        judged++;
      }
    }
    const result = await t.evaluate([batch]);
    expect(result.rtdLoss).toBeCloseTo(loss / judged, 5);
    expect(result.rtdAccuracy).toBeCloseTo(correct / judged, 10);
    expect(result.loss).toBeCloseTo(result.rtdLoss, 10);
    expect(result.mlmLoss).toBe(0);
  });

  it('learns: a few steps on one batch lower its loss', async () => {
    const m = await build(config(rtd), 5);
    const ids = batchIds(15);
    const labels = Int32Array.from(ids, (id) => (id === 1 ? -1 : id % 2));
    const batch = { ids, shape: [B, T] as [number, number], lengths: LENGTHS, rtdLabels: labels };
    const t = trainer(m);
    const before = await t.evaluate([batch]);
    // HF's initialisation: logits near 0, so the loss starts near ln 2.
    expect(before.rtdLoss).toBeCloseTo(Math.LN2, 2);
    for (let i = 0; i < 30; i++) await t.step([batch], 1e-2);
    const after = await t.evaluate([batch]);
    expect(after.rtdLoss).toBeLessThan(before.rtdLoss * 0.5);
    expect(after.rtdAccuracy).toBe(1);
  });
});

describe('batches that do not fit the model', () => {
  const ids = batchIds(1);
  const shape: [number, number] = [B, T];
  const base = { ids, shape, lengths: LENGTHS };

  it('name the field and the problem', async () => {
    const encoder = await build(config({ ...encoderOnly, mlm_head: true }));
    const tagger = await build(config({ pos_labels: POS, syllable_vocab_size: 10 }));
    const plain = await build(config({}));
    const tags = new Int32Array(B * T);
    const step = (m: NativeModel, b: Record<string, unknown>) =>
      trainer(m).step([{ ...base, ...b } as NativeTrainBatch], 1e-3);
    const syllables = new Int32Array(B * T * 2);
    expect(() => step(encoder, { tags })).toThrow(
      /batches\[0\]\.tags: the model has no tagging head/,
    );
    expect(() => step(plain, { mlmLabels: tags })).toThrow(/mlmLabels: the model has no MLM head/);
    expect(() => step(plain, { posTags: tags })).toThrow(/posTags: the model has no POS head/);
    expect(() => step(plain, {})).toThrow(/batches\[0\]: no targets/);
    expect(() => step(plain, { rtdLabels: tags })).toThrow(
      /rtdLabels: the model has no replaced-token head/,
    );
    const detector = await build(config({ ...encoderOnly, rtd_head: true }));
    expect(() => step(detector, { rtdLabels: new Int32Array(B * T).fill(2) })).toThrow(
      /rtdLabels\[0\]\[0\] = 2 is outside -1\.\.1 \(1: replaced, 0: original, -1: not judged\)/,
    );
    expect(() =>
      step(encoder, { tags: undefined, sampleMasked: true, posTags: undefined }),
    ).toThrow(/sampleMasked: needs mlmLabels/);
    expect(() => step(encoder, { mlmLabels: tags, sampleMasked: 'yes' })).toThrow(/sampleMasked/);
    expect(() => step(encoder, { mlmLabels: new Int32Array(B * T).fill(V) })).toThrow(
      /mlmLabels\[0\]\[0\] = 40 is outside -1\.\.39/,
    );
    expect(() => step(tagger, { tags, posTags: new Int32Array(B * T).fill(POS.length) })).toThrow(
      /posTags\[0\]\[0\] = 4 is outside -1\.\.3/,
    );
    expect(() => step(tagger, { tags })).toThrow(/syllables: the model has a syllable channel/);
    expect(() => step(tagger, { tags, syllables, syllablesPerPiece: 2.5 })).toThrow(
      /syllablesPerPiece: must be an integer/,
    );
    expect(() =>
      step(tagger, { tags, syllables: syllables.fill(10), syllablesPerPiece: 2 }),
    ).toThrow(/syllables: an id is outside 0\.\.9/);
    expect(() => step(plain, { tags, syllables, syllablesPerPiece: 2 })).toThrow(
      /syllables: the model has no syllable channel/,
    );
  });

  it('an encoder without a tagging head cannot tag, and says how to fix it', async () => {
    const encoder = await build(config({ ...encoderOnly, mlm_head: true }));
    await expect(encoder.emissions(ids, shape, LENGTHS)).rejects.toThrow(
      /no tagging head \(head none: a pretrained encoder\); fine-tune it with `koner train`/,
    );
  });

  it('config.json: head none has no labels, the optional fields are checked', () => {
    expect(() => config({ head: 'none' })).toThrow(/id2label" must be absent for head none/);
    expect(() => config({ pos_labels: ['NNG', 'NNG'] })).toThrow(
      /pos_labels" must be an array of distinct/,
    );
    expect(() => config({ syllable_vocab_size: 1 })).toThrow(/syllable_vocab_size" must be 0/);
    expect(() => config({ mlm_head: 'yes' })).toThrow(/mlm_head" must be a boolean/);
    expect(() => config({ rtd_head: 1 })).toThrow(/rtd_head" must be a boolean/);
    expect(config({ ...encoderOnly, rtd_head: true })).toMatchObject({ rtdHead: true });
    const c = config({ ...encoderOnly, mlm_head: true, syllable_vocab_size: 0 });
    expect(c).toMatchObject({ head: 'none', labels: [], mlmHead: true });
    expect(c.syllableVocabSize).toBeUndefined();
  });
});
