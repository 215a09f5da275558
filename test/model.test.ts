import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type HeadKind, type ModelConfig, parseModelConfig } from '../lib/model/config.js';
import { type EncoderDtype, type NativeModel, native, packageRoot } from '../lib/native.js';
import { tensorMemory } from '../lib/runtime.js';

// Random-weight models and what a plain PyTorch forward pass (after HF modeling_bert.py) makes
// of them: scripts/fixtures/model_reference.py, regenerated only when the script changes.
const GENERATED = path.join(packageRoot, 'test/fixtures/generated/model');
const HEADS: HeadKind[] = ['softmax', 'crf', 'bilstm-crf', 'bigru-crf'];
const TOLERANCE = 1e-4;

let tmp: string;

beforeAll(() => {
  execFileSync(
    '/usr/bin/python3',
    [path.join(packageRoot, 'scripts/fixtures/model_reference.py'), GENERATED, '--kobert'],
    { stdio: 'inherit' },
  );
  tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-model-'));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface Case {
  dir: string;
  weights: string;
  config: ModelConfig;
  shape: [number, number];
  ids: Int32Array;
  lengths: Int32Array;
  tags: Int32Array;
}

function readCase(name: string): Case {
  const dir = path.join(GENERATED, name);
  const config = parseModelConfig(
    JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')),
    name,
  );
  const inputs = JSON.parse(readFileSync(path.join(dir, 'inputs.json'), 'utf8')) as {
    shape: [number, number];
    ids: number[];
    lengths: number[];
    tags: number[];
  };
  return {
    dir,
    weights: path.join(dir, 'model.safetensors'),
    config,
    shape: inputs.shape,
    ids: Int32Array.from(inputs.ids),
    lengths: Int32Array.from(inputs.lengths),
    tags: Int32Array.from(inputs.tags),
  };
}

function f32(file: string): Float32Array {
  const bytes = readFileSync(file);
  // A copy: small files may sit at an unaligned offset of Node's shared buffer pool.
  return new Float32Array(Uint8Array.from(bytes).buffer);
}

/** max |a - b| over the valid positions of [B, T, D] arrays. */
function maxAbsDiff(a: Float32Array, b: Float32Array, c: Case): number {
  const [B, T] = c.shape;
  const D = a.length / (B * T);
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let s = 0; s < B; s++) {
    for (let t = 0; t < c.lengths[s]; t++) {
      for (let d = 0; d < D; d++) {
        const i = (s * T + t) * D + d;
        max = Math.max(max, Math.abs(a[i] - b[i]));
      }
    }
  }
  return max;
}

async function loaded(c: Case): Promise<NativeModel> {
  const model = new (native().Model)(c.config);
  const report = await model.loadWeights(c.weights);
  expect(report).toEqual({ kind: 'model', ignored: [] });
  return model;
}

function safetensorsKeys(file: string): Record<string, number[]> {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { shape: number[] }
  >;
  delete header.__metadata__;
  return Object.fromEntries(Object.entries(header).map(([k, v]) => [k, v.shape]));
}

const small = (head: HeadKind) => readCase(`small-${head}`);

describe('numerics against the Python reference (fp32)', () => {
  it.each(HEADS)('%s: hidden states and emissions within 1e-4', async (head) => {
    const c = small(head);
    const model = await loaded(c);
    const hidden = await model.hidden(c.ids, c.shape, c.lengths);
    const emissions = await model.emissions(c.ids, c.shape, c.lengths);
    const dh = maxAbsDiff(hidden, f32(path.join(c.dir, 'hidden.f32')), c);
    const de = maxAbsDiff(emissions, f32(path.join(c.dir, 'emissions.f32')), c);
    console.log(`model ${head}: max |Δhidden| ${dh.toExponential(2)}, |Δemissions| ${de}`);
    expect(dh).toBeLessThanOrEqual(TOLERANCE);
    expect(de).toBeLessThanOrEqual(TOLERANCE);
  });

  it('loads a plain BERT checkpoint as the encoder, ignoring pooler and position_ids', async () => {
    const c = readCase('small-encoder');
    const model = new (native().Model)(c.config);
    const before = await model.emissions(c.ids, c.shape, c.lengths);
    const report = await model.loadWeights(c.weights);
    expect(report.kind).toBe('encoder');
    expect(report.ignored.sort()).toEqual([
      'embeddings.position_ids',
      'pooler.dense.bias',
      'pooler.dense.weight',
    ]);
    const hidden = await model.hidden(c.ids, c.shape, c.lengths);
    expect(maxAbsDiff(hidden, f32(path.join(c.dir, 'hidden.f32')), c)).toBeLessThanOrEqual(
      TOLERANCE,
    );
    // The head kept its initialisation; the encoder changed under it.
    const after = await model.emissions(c.ids, c.shape, c.lengths);
    expect(maxAbsDiff(after, before, c)).toBeGreaterThan(1e-3);
  });

  it('agrees at KoBERT size (12 × 768, vocab 8002) on a short batch', async () => {
    const c = readCase('kobert-crf');
    expect(c.config.hiddenSize).toBe(768);
    const model = await loaded(c);
    const hidden = await model.hidden(c.ids, c.shape, c.lengths);
    const emissions = await model.emissions(c.ids, c.shape, c.lengths);
    const dh = maxAbsDiff(hidden, f32(path.join(c.dir, 'hidden.f32')), c);
    const de = maxAbsDiff(emissions, f32(path.join(c.dir, 'emissions.f32')), c);
    console.log(`model kobert-crf: max |Δhidden| ${dh}, |Δemissions| ${de}`);
    expect(dh).toBeLessThanOrEqual(TOLERANCE);
    expect(de).toBeLessThanOrEqual(TOLERANCE);
  });
});

describe("the encoder's inference on the CPU: oneDNN's path, bfloat16, int8", () => {
  const cpu = native().cpuFeatures();
  const bf16 = cpu.avx512Bf16 || cpu.amxBf16;
  const int8 = cpu.avx512Vnni || cpu.amxInt8;
  const CHILD = path.join(packageRoot, 'test/fixtures/emissions-child.ts');

  /** A case's emissions from a child process under `env`; the message when placement fails. */
  function childEmissions(
    c: Case,
    dtype: EncoderDtype,
    env: Record<string, string>,
  ): Float32Array | string {
    const out = path.join(tmp, `child-${path.basename(c.dir)}-${dtype}.f32`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, c.dir, out, dtype], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    if (r.status === 2) return r.stdout.trim();
    expect(r.status, r.stderr).toBe(0);
    return f32(out);
  }

  /** The share of valid positions where two decodings pick the same tag. */
  function agreement(a: Int32Array, b: Int32Array, c: Case): number {
    const [B, T] = c.shape;
    let same = 0;
    let all = 0;
    for (let s = 0; s < B; s++) {
      for (let t = 0; t < c.lengths[s]; t++) {
        same += a[s * T + t] === b[s * T + t] ? 1 : 0;
        all++;
      }
    }
    return same / all;
  }

  it("fp32: oneDNN's path and LibTorch's ops (KONER_ONEDNN=0) agree within 1e-4", async () => {
    expect(cpu.onednnPrimitives).toBe(true);
    const c = readCase('kobert-crf');
    const ours = await (await loaded(c)).emissions(c.ids, c.shape, c.lengths);
    const libtorch = childEmissions(c, 'float32', { KONER_ONEDNN: '0' });
    if (typeof libtorch === 'string') throw new Error(libtorch);
    const d = maxAbsDiff(ours, libtorch, c);
    console.log(`kobert-crf fp32: max |Δemissions| oneDNN vs LibTorch ${d.toExponential(2)}`);
    expect(d).toBeLessThanOrEqual(TOLERANCE);
    // The child did run LibTorch's ops: without oneDNN's primitives bfloat16 is refused.
    expect(childEmissions(c, 'bfloat16', { KONER_ONEDNN: '0' })).toMatch(
      /dtype bfloat16 on the CPU: the encoder runs without oneDNN's primitives/,
    );
  });

  it('refuses bfloat16 and int8 clearly where the CPU lacks the instructions', () => {
    const c = small('crf');
    expect(childEmissions(c, 'bfloat16', { KONER_CPU_DISABLE: 'avx512_bf16,amx_bf16' })).toBe(
      'dtype bfloat16 on the CPU: this CPU has neither AVX512_BF16 nor AMX-BF16 (bfloat16 ' +
        'matrix products would be emulated, slower than float32); use float32',
    );
    expect(childEmissions(c, 'int8', { KONER_CPU_DISABLE: 'avx512_vnni,amx_int8' })).toMatch(
      /^dtype int8 on the CPU: this CPU has neither AVX512_VNNI nor AMX-INT8/,
    );
  });

  it.skipIf(bf16)('refuses bfloat16 on this CPU, naming the missing instructions', async () => {
    const model = await loaded(small('crf'));
    await expect(model.to('cpu', 'bfloat16')).rejects.toThrow(/neither AVX512_BF16 nor AMX-BF16/);
    expect(model.placement()).toEqual({ device: 'cpu', dtype: 'float32' });
  });

  it.each([
    ['bfloat16', bf16, 0.5, 0.97],
    ['int8', int8, 2, 0.9],
  ] as const)(
    '%s: close to fp32 at KoBERT size, the same tags nearly everywhere; back to fp32 exactly',
    async (dtype, supported, maxDiff, minAgreement) => {
      if (!supported) return; // the refusal is tested above
      const c = readCase('kobert-crf');
      const model = await loaded(c);
      const ref = await model.emissions(c.ids, c.shape, c.lengths);
      const refTags = (await model.decode(c.ids, c.shape, c.lengths)).tags;
      await model.to('cpu', dtype);
      expect(model.placement()).toEqual({ device: 'cpu', dtype });
      const low = await model.emissions(c.ids, c.shape, c.lengths);
      const tags = (await model.decode(c.ids, c.shape, c.lengths)).tags;
      const d = maxAbsDiff(low, ref, c);
      const same = agreement(tags, refTags, c);
      console.log(`kobert-crf ${dtype}: max |Δemissions| ${d.toFixed(3)}, same tags ${same}`);
      expect(d).toBeGreaterThan(1e-3); // the products did change precision
      expect(d).toBeLessThan(maxDiff);
      expect(same).toBeGreaterThanOrEqual(minAgreement);
      // The parameters stayed float32: back in float32, the very same numbers.
      await model.to('cpu');
      expect(maxAbsDiff(await model.emissions(c.ids, c.shape, c.lengths), ref, c)).toBe(0);
    },
  );
});

describe('heads', () => {
  it.each(HEADS)('%s: parameter names and shapes are the checkpoint keys', (head) => {
    const c = small(head);
    const model = new (native().Model)(c.config);
    const info = model.parameterInfo();
    expect(Object.fromEntries(info.map((p) => [p.name, p.shape]))).toEqual(
      safetensorsKeys(c.weights),
    );
    const names = info.map((p) => p.name);
    expect(names[0]).toBe('bert.embeddings.word_embeddings.weight');
    expect(names).toContain('bert.encoder.layer.1.attention.self.query.weight');
    expect(names).toContain('classifier.bias');
    expect(names.includes('crf.transitions')).toBe(head !== 'softmax');
    if (head === 'bilstm-crf') expect(names).toContain('bilstm.weight_hh_l0_reverse');
    if (head === 'bigru-crf') expect(names).toContain('bigru.bias_ih_l0_reverse');
  });

  it.each(HEADS)('%s: decode gives valid paths, the best as Python Viterbi', async (head) => {
    const c = small(head);
    const model = await loaded(c);
    const [B, T] = c.shape;
    const K = c.config.labels.length;
    const expected = JSON.parse(readFileSync(path.join(c.dir, 'expected.json'), 'utf8')) as {
      best: number[][];
      loss: number;
    };
    const out = await model.decode(c.ids, c.shape, c.lengths, { marginals: true });
    expect(out.tags).toBeInstanceOf(Int32Array);
    expect(out.tags.length).toBe(B * T);
    expect(out.scores.length).toBe(B);
    expect(out.marginals?.length).toBe(B * T * K);
    for (let b = 0; b < B; b++) {
      const row = Array.from(out.tags.subarray(b * T, (b + 1) * T));
      expect(row.slice(0, c.lengths[b])).toEqual(expected.best[b]);
      expect(row.slice(c.lengths[b]).every((t) => t === -1)).toBe(true);
      expect(Number.isFinite(out.scores[b])).toBe(true);
    }
    const dm = maxAbsDiff(out.marginals!, f32(path.join(c.dir, 'marginals.f32')), c);
    expect(dm).toBeLessThanOrEqual(TOLERANCE);

    const loss = await model.loss(c.ids, c.shape, c.lengths, c.tags);
    expect(Math.abs(loss - expected.loss)).toBeLessThanOrEqual(TOLERANCE * Math.abs(expected.loss));
    console.log(`model ${head}: max |Δmarginals| ${dm}, loss ${loss} vs ${expected.loss}`);
  });

  it.each(HEADS)('%s: n-best paths and constraints', async (head) => {
    const c = small(head);
    const model = await loaded(c);
    const [B, T] = c.shape;
    const K = c.config.labels.length;
    const N = 3;
    const best = await model.decode(c.ids, c.shape, c.lengths, { nBest: N });
    expect(best.tags.length).toBe(B * N * T);
    expect(best.scores.length).toBe(B * N);
    for (let b = 0; b < B; b++) {
      for (let n = 0; n < N; n++) {
        const path_ = best.tags.subarray((b * N + n) * T, (b * N + n + 1) * T);
        for (let t = 0; t < T; t++) {
          if (t < c.lengths[b]) expect(path_[t] >= 0 && path_[t] < K).toBe(true);
          else expect(path_[t]).toBe(-1);
        }
        if (n > 0) expect(best.scores[b * N + n]).toBeLessThanOrEqual(best.scores[b * N + n - 1]);
      }
    }
    // Only tag 0 ('O') may start a sequence, and nothing may follow tag 0 but tag 0.
    const allowedStart = new Uint8Array(K);
    allowedStart[0] = 1;
    const allowed = new Uint8Array(K * K).fill(1);
    allowed.fill(0, 0, K);
    allowed[0] = 1;
    const constrained = await model.decode(c.ids, c.shape, c.lengths, {
      constraints: { allowed, allowedStart },
    });
    for (let b = 0; b < B; b++) {
      const row = constrained.tags.subarray(b * T, b * T + c.lengths[b]);
      expect(Array.from(row).every((t) => t === 0)).toBe(true);
    }
  });
});

describe('decodeEmissions', () => {
  it.each(HEADS)('%s: equals decode on the same emissions, at any length', async (head) => {
    const c = small(head);
    const model = await loaded(c);
    const [B, T] = c.shape;
    const K = c.config.labels.length;
    const options = { nBest: 2, marginals: true };
    const emissions = await model.emissions(c.ids, c.shape, c.lengths);
    const direct = await model.decode(c.ids, c.shape, c.lengths, options);
    const split = await model.decodeEmissions(emissions, [B, T, K], c.lengths, options);
    expect(Array.from(split.tags)).toEqual(Array.from(direct.tags));
    expect(Array.from(split.scores)).toEqual(Array.from(direct.scores));
    expect(Array.from(split.marginals!)).toEqual(Array.from(direct.marginals!));

    // Longer than the 40 positions: four sequences end to end.
    const long = new Float32Array(4 * T * K);
    for (let i = 0; i < 4; i++) long.set(emissions.subarray(0, T * K), i * T * K);
    const out = await model.decodeEmissions(long, [1, 4 * T, K], Int32Array.of(4 * T));
    expect(out.tags.length).toBe(4 * T);
    expect(Array.from(out.tags).every((t) => t >= 0 && t < K)).toBe(true);

    expect(() => model.decodeEmissions(emissions, [B, T, K - 1], c.lengths)).toThrow(
      /the model has 21 labels/,
    );
    const bad = emissions.slice();
    bad[5] = NaN;
    expect(() => model.decodeEmissions(bad, [B, T, K], c.lengths)).toThrow(/not finite/);
  });
});

describe('attentions (output_attentions)', () => {
  const ATTENTION_TOLERANCE = 1e-5;

  /** max |a - b| over valid query rows and key columns of [L, B, heads, T, T] maps (b's layout). */
  function maxAttentionDiff(
    ours: Float32Array,
    reference: Float32Array,
    c: Case,
    layers: number,
    heads: number,
  ): number {
    const [B, T] = c.shape;
    let max = 0;
    for (let l = 0; l < layers; l++) {
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < heads; h++) {
          for (let q = 0; q < c.lengths[b]; q++) {
            for (let k = 0; k < T; k++) {
              const ourAt = (((b * layers + l) * heads + h) * T + q) * T + k;
              const refAt = (((l * B + b) * heads + h) * T + q) * T + k;
              max = Math.max(max, Math.abs(ours[ourAt] - reference[refAt]));
            }
          }
        }
      }
    }
    return max;
  }

  const all = (n: number) => Array.from({ length: n }, (_, i) => i);

  it.each([...HEADS.map((h) => `small-${h}`), 'kobert-crf'])(
    '%s: every layer and head within 1e-5 of Python; rows sum to 1; emissions as emissions()',
    async (name) => {
      const c = readCase(name);
      const model = await loaded(c);
      const [B, T] = c.shape;
      const L = c.config.numHiddenLayers;
      const H = c.config.numAttentionHeads;
      const out = await model.attentions(c.ids, c.shape, c.lengths, all(L), all(H));
      expect(out.attentions.length).toBe(B * L * H * T * T);
      const reference = f32(path.join(c.dir, 'attentions.f32'));
      const d = maxAttentionDiff(out.attentions, reference, c, L, H);
      console.log(`attentions ${name}: max |Δ| ${d.toExponential(2)}`);
      expect(d).toBeLessThanOrEqual(ATTENTION_TOLERANCE);
      for (let b = 0; b < B; b++) {
        for (let m = 0; m < L * H; m++) {
          for (let q = 0; q < T; q++) {
            const at = ((b * L * H + m) * T + q) * T;
            const row = out.attentions.subarray(at, at + T);
            const sum = row.reduce((x, y) => x + y, 0);
            // Valid query rows sum to 1 over the valid keys; padding rows are 0.
            expect(Math.abs(sum - (q < c.lengths[b] ? 1 : 0))).toBeLessThan(1e-5);
            for (let k = c.lengths[b]; k < T; k++) expect(row[k]).toBe(0);
          }
        }
      }
      // The maps come from LibTorch's attention, emissions() from the fused one (which never
      // forms them): the same numbers up to float32 rounding, both within 1e-4 of Python.
      const emissions = await model.emissions(c.ids, c.shape, c.lengths);
      expect(maxAbsDiff(out.emissions, emissions, c)).toBeLessThanOrEqual(TOLERANCE);
      expect(
        maxAbsDiff(out.emissions, f32(path.join(c.dir, 'emissions.f32')), c),
      ).toBeLessThanOrEqual(TOLERANCE);
    },
  );

  it('returns the listed layers and heads in the order given', async () => {
    const c = small('crf');
    const model = await loaded(c);
    const [B, T] = c.shape;
    const full = await model.attentions(c.ids, c.shape, c.lengths, [0, 1], [0, 1, 2, 3]);
    const some = await model.attentions(c.ids, c.shape, c.lengths, [1, 0, 1], [3, 0]);
    const map = (a: Float32Array, L: number, H: number, b: number, l: number, h: number) =>
      Array.from(a.subarray(((b * L + l) * H + h) * T * T, ((b * L + l) * H + h + 1) * T * T));
    for (let b = 0; b < B; b++) {
      [1, 0, 1].forEach((layer, i) =>
        [3, 0].forEach((head, j) =>
          expect(map(some.attentions, 3, 2, b, i, j)).toEqual(
            map(full.attentions, 2, 4, b, layer, head),
          ),
        ),
      );
    }
  });

  it('refuses layers and heads the model does not have, naming them', async () => {
    const c = small('crf');
    const model = await loaded(c);
    const call = (layers: unknown, heads: unknown) =>
      model.attentions(c.ids, c.shape, c.lengths, layers as number[], heads as number[]);
    expect(() => call([2], [0])).toThrow(/layers\[0\] = 2 is not an index from 0 to 1/);
    expect(() => call([0], [0, 4])).toThrow(/heads\[1\] = 4 is not an index from 0 to 3/);
    expect(() => call([0], [-1])).toThrow(/heads\[0\] = -1/);
    expect(() => call([0.5], [0])).toThrow(/layers\[0\] = 0.5/);
    expect(() => call([], [0])).toThrow(/layers: expected a non-empty array/);
    expect(() => call(undefined, [0])).toThrow(/layers: expected a non-empty array/);
    expect(() => call([0], 'all')).toThrow(/heads: expected a non-empty array/);
  });
});

describe('weights', () => {
  const c = () => small('crf');

  it('seed(n) draws the same model twice; save -> load gives identical emissions', async () => {
    const { config, ids, shape, lengths } = c();
    const a = new (native().Model)(config);
    const b = new (native().Model)(config);
    await a.seed(7);
    await b.seed(7);
    const ea = await a.emissions(ids, shape, lengths);
    expect(Array.from(await b.emissions(ids, shape, lengths))).toEqual(Array.from(ea));

    const file = path.join(tmp, 'round-trip.safetensors');
    await a.saveWeights(file);
    const loadedModel = new (native().Model)(config);
    await loadedModel.seed(8);
    expect(Array.from(await loadedModel.emissions(ids, shape, lengths))).not.toEqual(
      Array.from(ea),
    );
    expect(await loadedModel.loadWeights(file)).toEqual({ kind: 'model', ignored: [] });
    expect(Array.from(await loadedModel.emissions(ids, shape, lengths))).toEqual(Array.from(ea));

    // bfloat16 on disk: the same model to bf16 precision.
    const bf16 = path.join(tmp, 'round-trip-bf16.safetensors');
    await a.saveWeights(bf16, 'bfloat16');
    await loadedModel.loadWeights(bf16);
    const eb = await loadedModel.emissions(ids, shape, lengths);
    const d = maxAbsDiff(eb, ea, c());
    expect(d).toBeGreaterThan(0);
    expect(d).toBeLessThan(0.5);
  });

  it('HF initialisation: LayerNorm 1/0, zero biases, the padding row zero', async () => {
    const { config } = c();
    const model = new (native().Model)(config);
    const file = path.join(tmp, 'init.safetensors');
    await model.saveWeights(file);
    const header = safetensorsKeys(file);
    expect(header['bert.embeddings.LayerNorm.weight']).toEqual([64]);
    // Values: read through a reloaded model's file is enough to see the init's statistics.
    const bytes = readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    const meta = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<
      string,
      { data_offsets: [number, number] }
    >;
    const tensor = (key: string) => {
      const [s, e] = meta[key].data_offsets;
      return new Float32Array(Uint8Array.from(bytes.subarray(8 + n + s, 8 + n + e)).buffer);
    };
    expect(tensor('bert.embeddings.LayerNorm.weight').every((x) => x === 1)).toBe(true);
    expect(tensor('bert.encoder.layer.0.output.dense.bias').every((x) => x === 0)).toBe(true);
    const word = tensor('bert.embeddings.word_embeddings.weight');
    const H = config.hiddenSize;
    const pad = word.subarray(config.padTokenId * H, (config.padTokenId + 1) * H);
    expect(pad.every((x) => x === 0)).toBe(true);
    const std = Math.sqrt(word.reduce((s, x) => s + x * x, 0) / word.length);
    expect(std).toBeGreaterThan(0.015);
    expect(std).toBeLessThan(0.025);
    const crf = tensor('crf.transitions');
    expect(crf.every((x) => Math.abs(x) <= 0.1)).toBe(true);
  });

  it('serves concurrent calls while weights are reloaded', async () => {
    const m = c();
    const model = await loaded(m);
    const ref = Array.from(await model.emissions(m.ids, m.shape, m.lengths));
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 6; i++) {
      calls.push(model.emissions(m.ids, m.shape, m.lengths));
      if (i === 2) calls.push(model.loadWeights(m.weights));
      calls.push(model.decode(m.ids, m.shape, m.lengths, { marginals: true }));
    }
    const results = await Promise.all(calls);
    for (const r of results) {
      if (r instanceof Float32Array) expect(Array.from(r)).toEqual(ref);
    }
  });
});

describe('bad input: clear errors, no crash', () => {
  const base = () => small('crf');

  it('names the bad config field', () => {
    const { config } = base();
    const bad = (patch: Record<string, unknown>) => () =>
      new (native().Model)({ ...config, ...patch } as ModelConfig);
    expect(bad({ hiddenSize: 'x' })).toThrow(/config\.hiddenSize: must be an integer/);
    expect(bad({ hiddenSize: 63 })).toThrow(/config\.numAttentionHeads.*must divide hiddenSize/);
    expect(bad({ vocabSize: 0 })).toThrow(/config\.vocabSize/);
    expect(bad({ head: 'lstm' })).toThrow(/config\.head: must be one of/);
    expect(bad({ hiddenAct: 'relu' })).toThrow(/config\.hiddenAct/);
    expect(bad({ labels: [] })).toThrow(/config\.labels/);
    expect(bad({ labels: ['O', 3] })).toThrow(/config\.labels\[1\]: expected a string/);
    expect(bad({ layerNormEps: -1 })).toThrow(/config\.layerNormEps/);
    expect(bad({ hiddenDropoutProb: 1 })).toThrow(/config\.hiddenDropoutProb/);
    expect(bad({ padTokenId: 100 })).toThrow(/config\.padTokenId.*below vocabSize/);
    expect(bad({ rnnHiddenSize: undefined })).toThrow(/config\.rnnHiddenSize: missing/);
    expect(() => new (native().Model)(undefined as unknown as ModelConfig)).toThrow(
      /config: expected a ModelConfig object/,
    );
  });

  it('rejects bad batches before any tensor work', async () => {
    const { config, ids, shape, lengths } = base();
    const model = new (native().Model)(config);
    const [B, T] = shape;
    const outOfRange = ids.slice();
    outOfRange[T + 3] = 100;
    expect(() => model.emissions(outOfRange, shape, lengths)).toThrow(
      /ids\[1\]\[3\] = 100 is outside the vocabulary 0\.\.99/,
    );
    outOfRange[T + 3] = -5;
    expect(() => model.decode(outOfRange, shape, lengths)).toThrow(/ids\[1\]\[3\] = -5/);
    const tooLong = lengths.slice();
    tooLong[2] = T + 1;
    expect(() => model.emissions(ids, shape, tooLong)).toThrow(
      /lengths\[2\] = 13 is outside 1\.\.12/,
    );
    tooLong[2] = 0;
    expect(() => model.hidden(ids, shape, tooLong)).toThrow(/lengths\[2\] = 0/);
    const long = new Int32Array(41).fill(5);
    expect(() => model.emissions(long, [1, 41], Int32Array.of(41))).toThrow(
      /41 pieces exceed maxPositionEmbeddings \(40\)/,
    );
    expect(() => model.emissions(new Int32Array(0), [0, 5], new Int32Array(0))).toThrow(
      /empty batch/,
    );
    expect(() => model.emissions(Float32Array.from(ids) as never, shape, lengths)).toThrow(
      /ids: expected a Int32Array/,
    );
    expect(() => model.emissions(ids, shape, Array.from(lengths) as never)).toThrow(TypeError);
    expect(() => model.emissions(ids.subarray(1), shape, lengths)).toThrow(
      /ids: shape \[4, 12\] needs 48 values, got 47/,
    );
    expect(() => model.emissions(ids, [B * T], lengths)).toThrow(
      /shape: expected \[batch, pieces\]/,
    );
    expect(() => model.decode(ids, shape, lengths, { nBest: 0 })).toThrow(/options\.nBest/);
    expect(() =>
      model.decode(ids, shape, lengths, { constraints: { allowed: new Uint8Array(5) } }),
    ).toThrow(/options\.constraints\.allowed: shape \[21, 21\] needs 441 values/);
    expect(() => model.loss(ids, shape, lengths, new Int32Array(B * T).fill(21))).toThrow(
      /tags\[0\]\[0\] = 21 is outside 0\.\.20/,
    );
    expect(() => model.to('gpu')).toThrow(/device: must be 'cpu', 'cuda' or 'cuda:N'/);
    expect(() => model.to('cpu', 'float16')).toThrow(/float16 runs on CUDA only/);
    if (!native().cudaAvailable()) {
      expect(() => model.to('cuda')).toThrow(/CUDA is not available/);
      expect(() => model.to('cuda:1', 'bfloat16')).toThrow(/CUDA is not available/);
    }
    expect(() => model.seed(-1)).toThrow(/seed/);
    // Still healthy.
    expect((await model.emissions(ids, shape, lengths)).length).toBe(B * T * 21);
  });

  it('lists every missing, unexpected and mis-shaped weight, and changes nothing', async () => {
    const m = base();
    const save = async (patch: Partial<ModelConfig>, name: string) => {
      const model = new (native().Model)({ ...m.config, ...patch });
      const file = path.join(tmp, `${name}.safetensors`);
      await model.saveWeights(file);
      return file;
    };
    const model = await loaded(m);
    const ref = Array.from(await model.emissions(m.ids, m.shape, m.lengths));

    const softmax = await save({ head: 'softmax' }, 'softmax');
    await expect(model.loadWeights(softmax)).rejects.toThrow(
      /missing \(3\): crf\.transitions, crf\.start_transitions, crf\.end_transitions/,
    );
    const lstm = await save({ head: 'bilstm-crf' }, 'lstm');
    const lstmError = await model.loadWeights(lstm).catch((e: Error) => e.message);
    expect(lstmError).toMatch(/unexpected \(8\): bilstm\.bias_hh_l0, /);
    expect(lstmError).toMatch(/bilstm\.weight_ih_l0_reverse/);
    expect(lstmError).toMatch(/classifier\.weight: file \[21, 48\] vs model \[21, 64\]/);

    const misShaped = await save({ vocabSize: 90, labels: m.config.labels.slice(0, 5) }, 'shape');
    const shapeError = await model.loadWeights(misShaped).catch((e: Error) => e.message);
    expect(shapeError).toMatch(/shape mismatch \(6\)/);
    for (const key of [
      'bert.embeddings.word_embeddings.weight: file [90, 64] vs model [100, 64]',
      'classifier.weight: file [5, 64] vs model [21, 64]',
      'classifier.bias: file [5] vs model [21]',
      'crf.transitions: file [5, 5] vs model [21, 21]',
      'crf.start_transitions: file [5] vs model [21]',
      'crf.end_transitions: file [5] vs model [21]',
    ]) {
      expect(shapeError).toContain(key);
    }
    expect(shapeError).not.toMatch(/Exception raised from|frame #/);

    await expect(model.loadWeights(path.join(tmp, 'nope.safetensors'))).rejects.toThrow(
      /nope\.safetensors/,
    );
    // Nothing was half-loaded.
    expect(Array.from(await model.emissions(m.ids, m.shape, m.lengths))).toEqual(ref);
  });
});

/** `file` with `name` dropped from its header and its bytes left where they were. */
function withoutHeaderEntry(file: string, name: string, out: string): void {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  delete header[name];
  const text = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(text.length));
  writeFileSync(out, Buffer.concat([length, text, bytes.subarray(8 + n)]));
}

describe('a tensor missing from the header', () => {
  it('is named, whether its bytes leave a hole or trail the last tensor', async () => {
    const m = small('crf');
    const model = new (native().Model)(m.config);
    // Tensors lie in name order: the first leaves a hole, crf.transitions trailing bytes.
    for (const name of ['crf.end_transitions', 'crf.transitions']) {
      const file = path.join(tmp, `without-${name}.safetensors`);
      withoutHeaderEntry(m.weights, name, file);
      const message = await model.loadWeights(file).catch((e: Error) => e.message);
      expect(message).toMatch(new RegExp(`missing \\(1\\): ${name.replace(/\./g, '\\.')}`));
      expect(message).not.toMatch(/follow the last tensor|a hole of/);
    }
    // All tensors there but bytes trailing: the damage itself is the error.
    const padded = path.join(tmp, 'padded.safetensors');
    writeFileSync(padded, Buffer.concat([readFileSync(m.weights), Buffer.alloc(16)]));
    await expect(model.loadWeights(padded)).rejects.toThrow(/16 bytes follow the last tensor/);
    await model.dispose();
  });
});

describe('dispose', () => {
  it('frees the native memory at once and later calls fail saying so', async () => {
    // 50,000 × 256 float32 embeddings: about 51 MB, drawn (so resident) at construction.
    const config = {
      ...small('crf').config,
      vocabSize: 50_000,
      hiddenSize: 256,
      intermediateSize: 64,
      numAttentionHeads: 4,
      rnnHiddenSize: 128,
    };
    const rss = () => process.memoryUsage().rss;
    let models: NativeModel[] = [];
    // Twice: after the first large free, glibc serves the next weights from its arenas instead
    // of fresh mappings, and only a trim hands those pages back (CI once saw no drop at all).
    for (let round = 0; round < 2; round++) {
      models = [];
      for (let i = 0; i < 4; i++) models.push(new (native().Model)(config));
      // Only the drop is measured: the growth above can be hidden by the garbage collector
      // finalising earlier tests' models meanwhile (it once read 102 MB for these 205 MB).
      const held = rss();
      await Promise.all(models.map((m) => m.dispose()));
      // The objects are still referenced, so no garbage collection could have freed them.
      expect(held - rss()).toBeGreaterThan(150e6);
      expect(tensorMemory().cachedBytes).toBe(0); // the freed weights did not stay in the cache
    }
    const m = models[0];
    const ids = Int32Array.of(2, 5, 3);
    expect(() => m.placement()).toThrow(/has been disposed/);
    expect(() => m.emissions(ids, [1, 3], Int32Array.of(3))).toThrow(/has been disposed/);
    expect(() => m.saveWeights(path.join(tmp, 'gone.safetensors'))).toThrow(/has been disposed/);
    await expect(m.dispose()).resolves.toBeUndefined();
  });

  it('waits for the calls in flight', async () => {
    const c = small('crf');
    const model = await loaded(c);
    const pending = model.emissions(c.ids, c.shape, c.lengths);
    await model.dispose();
    expect((await pending).length).toBeGreaterThan(0);
  });
});
