import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LABELS } from '../lib/labels/scheme.js';
import { KOBERT_BASE, parseModelConfig, readModelConfig } from '../lib/model/config.js';
import { bundledTokenizerFiles } from '../lib/model/default-model.js';
import { importCheckpoint, parseLabelMap } from '../lib/model/import.js';
import { resolveTokenizerFiles } from '../lib/model/tokenizer-files.js';
import { type NerEntity, NerModel } from '../lib/model/ner-model.js';
import { native, packageRoot } from '../lib/native.js';

// Checkpoints in every layout koner imports, written by Debian's python3-torch, with the sha256
// of each tensor's raw bytes: scripts/fixtures/io_reference.py.
const GENERATED = path.join(packageRoot, 'test/fixtures/generated/io');
const SAFETENSORS_PY = path.join(packageRoot, 'scripts/fixtures/io_safetensors.py');

interface SourceTensor {
  dtype: string;
  shape: number[];
  sha256: string;
}
interface Expected {
  config: Record<string, number>;
  labels25: string[];
  files: Record<
    string,
    {
      source: Record<string, SourceTensor>;
      koner?: Record<string, string>;
      float16?: Record<string, string>;
      bfloat16?: Record<string, string>;
    }
  >;
  fold: { labels: string[]; koner: Record<string, string> };
}

const DTYPES: Record<string, string> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};
const ELEMENT_SIZE: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

let expected: Expected;
let tmp: string;

beforeAll(() => {
  execFileSync(
    '/usr/bin/python3',
    [path.join(packageRoot, 'scripts/fixtures/io_reference.py'), GENERATED],
    {
      stdio: 'inherit',
    },
  );
  expected = JSON.parse(readFileSync(path.join(GENERATED, 'expected.json'), 'utf8')) as Expected;
  tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-io-'));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const fixture = (name: string) => path.resolve(GENERATED, name);

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 of every tensor's raw bytes, read natively. */
async function hashes(file: string): Promise<Record<string, string>> {
  const tensors = await native().readTensors(file, null);
  return Object.fromEntries(Object.entries(tensors).map(([name, t]) => [name, sha256(t.data)]));
}

async function floats(file: string, name: string): Promise<Float32Array> {
  const t = (await native().readTensors(file, [name], true))[name];
  return new Float32Array(t.data.slice().buffer);
}

/** What the pure-Python reader makes of a safetensors file koner wrote. */
function pythonDump(file: string): {
  headerLength: number;
  metadata: Record<string, string>;
  tensors: Record<string, SourceTensor & { offsets: [number, number] }>;
} {
  return JSON.parse(execFileSync('/usr/bin/python3', [SAFETENSORS_PY, 'dump', file]).toString());
}

let counter = 0;
function tmpFile(name: string, bytes: Uint8Array | string): string {
  const file = path.join(tmp, `${counter++}-${name}`);
  writeFileSync(file, bytes);
  return file;
}

/** A safetensors file from a header (object or raw JSON text) and data; `length` overrides. */
function safetensors(header: object | string | Buffer, data: Uint8Array, length?: bigint): Buffer {
  let text = Buffer.isBuffer(header)
    ? header
    : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  text = Buffer.concat([text, Buffer.alloc((8 - ((8 + text.length) % 8)) % 8, ' ')]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(length ?? BigInt(text.length));
  return Buffer.concat([prefix, text, data]);
}

/** Deterministic bytes for fuzzing (xorshift32). */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Resolves to 'ok' or rejects with an Error: anything else (a crash) fails the suite. */
async function settles(promise: Promise<unknown>): Promise<'ok' | 'error'> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return 'error';
  }
}

describe('inspectCheckpoint and readTensors', () => {
  const files = [
    'hf_bert.bin',
    'hf_bert_p4.bin',
    'hf_pretraining.bin',
    'hf_token_cls.bin',
    'reference.pt',
    'reference_legacy.pt',
    'koner.safetensors',
    'dtypes.safetensors',
    'dtypes.pt',
    'views.pt',
    'params.pt',
  ];

  it.each(files)('%s: every tensor with its dtype, shape and exact bytes', async (name) => {
    const source = expected.files[name].source;
    const listed = await native().inspectCheckpoint(fixture(name));
    expect(
      Object.fromEntries(listed.map((t) => [t.name, { dtype: t.dtype, shape: t.shape }])),
    ).toEqual(
      Object.fromEntries(
        Object.entries(source).map(([n, t]) => [n, { dtype: DTYPES[t.dtype], shape: t.shape }]),
      ),
    );
    expect(listed.map((t) => t.name)).toEqual([...listed.map((t) => t.name)].sort());
    expect(await hashes(fixture(name))).toEqual(
      Object.fromEntries(Object.entries(source).map(([n, t]) => [n, t.sha256])),
    );
  });

  it('reads strided views of one storage as their own values', async () => {
    const t = await floats(fixture('views.pt'), 't');
    expect(Array.from(t)).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect(Array.from(await floats(fixture('views.pt'), 'col'))).toEqual([2, 6, 10]);
  });

  it('reads only the tensors asked for, and names a missing one', async () => {
    const some = await native().readTensors(fixture('reference.pt'), [
      'model_state_dict.module.crf.transitions',
    ]);
    expect(Object.keys(some)).toEqual(['model_state_dict.module.crf.transitions']);
    expect(some['model_state_dict.module.crf.transitions'].shape).toEqual([25, 25]);
    await expect(native().readTensors(fixture('reference.pt'), ['nope'])).rejects.toThrow(
      /reference\.pt: no tensor named "nope"/,
    );
  });

  it('skips values that are not tensors, and tensors LibTorch 1.13 cannot hold here', async () => {
    // reference.pt also holds an int, a list and an argparse.Namespace; complex.pt a complex64.
    const names = (await native().inspectCheckpoint(fixture('reference.pt'))).map((t) => t.name);
    expect(names.filter((n) => !n.startsWith('model_state_dict.'))).toEqual([
      'opt_state_dict.state.0.exp_avg',
    ]);
    expect(await native().inspectCheckpoint(fixture('complex.pt'))).toEqual([
      { name: 'real', shape: [2], dtype: 'float32' },
    ]);
  });

  it('rejects files that are not a dict of tensors, naming the file', async () => {
    const cases: [string, RegExp][] = [
      [fixture('list.pt'), /list\.pt: holds a list, not a dict of named tensors/],
      [fixture('tensor.pt'), /tensor\.pt: holds a single tensor, not a dict/],
      [fixture('plain.pkl'), /plain\.pkl: a pickle, but not a torch\.save file/],
      [fixture('expected.json'), /expected\.json: not a checkpoint: neither safetensors nor/],
      [tmpFile('empty.bin', ''), /empty\.bin: empty file, not a checkpoint/],
      [path.join(tmp, 'missing.bin'), /missing\.bin: cannot open \(No such file or directory\)/],
      [tmp, /is a directory, not a file/],
      [fixture('hf_dir'), /hf_dir: is a directory/],
    ];
    for (const [file, message] of cases) {
      await expect(native().inspectCheckpoint(file)).rejects.toThrow(message);
      await expect(native().readTensors(file, null)).rejects.toThrow(message);
    }
  });

  it('validates its arguments synchronously', () => {
    expect(() => native().inspectCheckpoint(3 as unknown as string)).toThrow(TypeError);
    expect(() => native().readTensors('x', 'a' as unknown as string[])).toThrow(TypeError);
  });
});

describe('convertCheckpoint and the safetensors writer', () => {
  it('round-trips every dtype bit for bit, readable by a reference reader', async () => {
    const source = expected.files['dtypes.safetensors'].source;
    for (const input of ['dtypes.safetensors', 'dtypes.pt']) {
      const out = path.join(tmp, `roundtrip-${input}.safetensors`);
      const names = Object.keys(source);
      await native().convertCheckpoint(
        fixture(input),
        out,
        names.map((n) => [n, n]),
        { metadata: { note: 'ünïcode ✓' } },
      );
      const want = Object.fromEntries(Object.entries(source).map(([n, t]) => [n, t.sha256]));
      expect(await hashes(out)).toEqual(want);
      const dump = pythonDump(out);
      expect(dump.metadata).toEqual({ format: 'pt', note: 'ünïcode ✓' });
      expect((8 + dump.headerLength) % 8).toBe(0);
      for (const [name, t] of Object.entries(dump.tensors)) {
        expect(t.sha256).toBe(want[name]);
        expect(t.dtype).toBe(source[name].dtype);
        expect(t.shape).toEqual(source[name].shape);
        // Larger elements first: every tensor starts at a multiple of its element size.
        expect(t.offsets[0] % ELEMENT_SIZE[t.dtype]).toBe(0);
      }
    }
  });

  it('converts floating tensors as torch does, and leaves integers alone', async () => {
    const file = expected.files['hf_token_cls.bin'];
    for (const dtype of ['float16', 'bfloat16'] as const) {
      const dir = path.join(tmp, `converted-${dtype}`);
      await importCheckpoint(fixture('hf_token_cls.bin'), dir, {
        numAttentionHeads: 4,
        dtype,
        tokenizer: null,
      });
      expect(await hashes(path.join(dir, 'model.safetensors'))).toEqual(file[dtype]);
    }
    const ints = path.join(tmp, 'ints.safetensors');
    await native().convertCheckpoint(
      fixture('dtypes.safetensors'),
      ints,
      [
        ['i64', 'i64'],
        ['bool', 'bool'],
      ],
      { dtype: 'float16' },
    );
    const source = expected.files['dtypes.safetensors'].source;
    expect(await hashes(ints)).toEqual({ i64: source.i64.sha256, bool: source.bool.sha256 });
  });

  it('initialises extra tensors, reproducibly with a seed', async () => {
    const extra = [
      { name: 'n', shape: [64, 32], init: 'normal' as const, std: 0.5 },
      { name: 'u', shape: [10, 10], init: 'uniform' as const, bound: 0.1 },
      { name: 'z', shape: [3], init: 'zeros' as const },
      { name: 'o', shape: [2, 2], init: 'ones' as const },
      { name: 'v', shape: [2], init: 'values' as const, values: Float32Array.of(1.5, -2) },
    ];
    const a = path.join(tmp, 'extra-a.safetensors');
    const b = path.join(tmp, 'extra-b.safetensors');
    await native().convertCheckpoint(fixture('dtypes.safetensors'), a, [], { extra, seed: 7 });
    await native().convertCheckpoint(fixture('dtypes.safetensors'), b, [], { extra, seed: 7 });
    expect(await hashes(a)).toEqual(await hashes(b));
    const n = await floats(a, 'n');
    const mean = n.reduce((s, x) => s + x, 0) / n.length;
    const std = Math.sqrt(n.reduce((s, x) => s + (x - mean) ** 2, 0) / n.length);
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(std).toBeGreaterThan(0.45);
    expect(std).toBeLessThan(0.55);
    expect((await floats(a, 'u')).every((x) => Math.abs(x) <= 0.1)).toBe(true);
    expect(Array.from(await floats(a, 'z'))).toEqual([0, 0, 0]);
    expect(Array.from(await floats(a, 'o'))).toEqual([1, 1, 1, 1]);
    expect(Array.from(await floats(a, 'v'))).toEqual([1.5, -2]);
  });

  it('rejects bad arguments before touching any file', () => {
    const convert = native().convertCheckpoint.bind(native());
    const src = fixture('dtypes.safetensors');
    const out = path.join(tmp, 'never.safetensors');
    expect(() =>
      convert(src, out, [
        ['f32', 'x'],
        ['f64', 'x'],
      ]),
    ).toThrow(/"x" is the target of two renames/);
    expect(() => convert(src, out, [['f32']] as unknown as [string, string][])).toThrow(TypeError);
    expect(() => convert(src, out, [], { dtype: 'int2' as 'float16' })).toThrow(
      /options\.dtype: expected 'float32', 'float16', 'bfloat16', 'int8' or 'int4'/,
    );
    expect(() =>
      convert(src, out, [['f32', 'x']], { extra: [{ name: 'x', shape: [1], init: 'zeros' }] }),
    ).toThrow(/also the target of a rename/);
    expect(() =>
      convert(src, out, [], {
        extra: [{ name: 'v', shape: [3], init: 'values', values: Float32Array.of(1) }],
      }),
    ).toThrow(/shape \[3\] needs 3 values, got 1/);
    expect(() =>
      convert(src, out, [], { extra: [{ name: 'v', shape: [3], init: 'random' as 'zeros' }] }),
    ).toThrow(/init/);
  });

  it('writes atomically: a failed conversion leaves the old file and no temporary', async () => {
    const dir = path.join(tmp, 'atomic');
    mkdirSync(dir);
    const out = path.join(dir, 'model.safetensors');
    await native().convertCheckpoint(fixture('dtypes.safetensors'), out, [['f32', 'f32']]);
    const before = await hashes(out);
    await expect(
      native().convertCheckpoint(fixture('dtypes.safetensors'), out, [['nope', 'f32']]),
    ).rejects.toThrow(/dtypes\.safetensors: no tensor named "nope"/);
    expect(await hashes(out)).toEqual(before);
    await expect(
      native().convertCheckpoint(
        fixture('dtypes.safetensors'),
        path.join(dir, 'no/such/dir/x'),
        [],
      ),
    ).rejects.toThrow(/no\/such\/dir\/x: cannot create .*No such file or directory/);
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
  });
});

// A float16 model directory of the repository (the bundled model is already quantized).
const bundled = path.join(packageRoot, 'models', 'kmou-small-scratch');
const source = path.join(bundled, 'model.safetensors');
const QUANTIZED_TEXTS = [
  '이순신 장군은 1545년 한성 건천동에서 태어나 임진왜란 때 수군을 이끌었다.',
  '제임스 카메론 감독의 터미네이터 신작이 다음 달 서울에서 개봉한다.',
  '삼성전자는 3일 수원 본사에서 주주총회를 열고 이사 5명을 선임했다.',
];

/** A copy of the scratch model directory in `tmp` with its weights stored as `dtype`. */
async function quantizedScratchCopy(dtype: 'int8' | 'int4'): Promise<string> {
  const dir = path.join(tmp, `kmou-small-scratch-${dtype}`);
  mkdirSync(dir);
  for (const name of readdirSync(bundled)) {
    if (name !== 'model.safetensors') copyFileSync(path.join(bundled, name), path.join(dir, name));
  }
  const names = (await native().inspectCheckpoint(source)).map((t): [string, string] => [
    t.name,
    t.name,
  ]);
  await native().convertCheckpoint(source, path.join(dir, 'model.safetensors'), names, { dtype });
  return dir;
}

describe('int8 rows (convertCheckpoint dtype int8)', () => {
  it('halves a float16 model; readers see float32 within half a step of each row', async () => {
    const listed = await native().inspectCheckpoint(source);
    const file = path.join(tmp, 'int8.safetensors');
    await native().convertCheckpoint(
      source,
      file,
      listed.map((t) => [t.name, t.name]),
      { dtype: 'int8' },
    );
    const ratio = statSync(file).size / statSync(source).size;
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(0.52);
    // The file's own header: int8 matrices beside float32 scales, small tensors in float16.
    const raw = pythonDump(file).tensors;
    expect(raw['bert.encoder.layer.0.attention.self.query.weight'].dtype).toBe('I8');
    expect(raw['bert.encoder.layer.0.attention.self.query.weight_scale']).toMatchObject({
      dtype: 'F32',
      shape: [256, 1],
    });
    expect(raw['crf.transitions'].dtype).toBe('F16');
    // Readers see the model's own tensors: same names and shapes, matrices as float32.
    const seen = await native().inspectCheckpoint(file);
    expect(seen.map((t) => [t.name, t.shape])).toEqual(listed.map((t) => [t.name, t.shape]));
    const matrices = seen.filter((t) => t.dtype === 'float32').map((t) => t.name);
    expect(matrices).toContain('bert.embeddings.word_embeddings.weight');
    expect(matrices).not.toContain('classifier.weight');
    const before = await native().readTensors(source, null, true);
    const after = await native().readTensors(file, null, true);
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
    // The largest error of each tensor, in units of its row's step (max |row| / 127).
    let worst = 0;
    for (const [name, t] of Object.entries(before)) {
      const a = new Float32Array(Uint8Array.from(t.data).buffer);
      const b = new Float32Array(Uint8Array.from(after[name].data).buffer);
      const quantized = matrices.includes(name);
      const cols = t.shape.length === 2 ? t.shape[1] : a.length;
      for (let start = 0; start < a.length; start += cols) {
        let step = 0;
        for (let i = start; i < start + cols; i++) step = Math.max(step, Math.abs(a[i]) / 127);
        for (let i = start; i < start + cols; i++) {
          const error = Math.abs(b[i] - a[i]);
          if (!quantized) expect(error, name).toBe(0);
          else if (error > 0) worst = Math.max(worst, error / step);
        }
      }
    }
    expect(worst).toBeGreaterThan(0.4);
    expect(worst).toBeLessThanOrEqual(0.5 + 1e-4);
    // Asked for one matrix, a reader gets that one, dequantized, and not its scales.
    const query = 'bert.encoder.layer.0.attention.self.query.weight';
    const alone = await native().readTensors(file, [query]);
    expect(Object.keys(alone)).toEqual([query]);
    expect(alone[query].dtype).toBe('float32');
  });

  it('a model directory with int8 weights tags as the float16 one does', async () => {
    const dir = await quantizedScratchCopy('int8');
    const texts = QUANTIZED_TEXTS;
    const plain = await NerModel.load(bundled, { threads: 1 });
    const int8 = await NerModel.load(dir, { threads: 1 });
    try {
      const expected = (await plain.predict(texts)) as NerEntity[][];
      const got = (await int8.predict(texts)) as NerEntity[][];
      expect(got.flat().length).toBeGreaterThan(5);
      const strip = (list: NerEntity[][]) =>
        list.map((es) => es.map(({ text, entity, start, end }) => ({ text, entity, start, end })));
      expect(strip(got)).toEqual(strip(expected));
      got.flat().forEach((e, i) => {
        expect(Math.abs(e.score - expected.flat()[i].score)).toBeLessThan(0.05);
      });
    } finally {
      await plain.dispose();
      await int8.dispose();
    }
  });

  it('scales that do not fit their matrix are an Error naming the file and the tensor', async () => {
    // w: I8 [2, 2] (4 bytes), w_scale: F32 [3, 1] (12 bytes)
    const header = {
      w: { dtype: 'I8', shape: [2, 2], data_offsets: [0, 4] },
      w_scale: { dtype: 'F32', shape: [3, 1], data_offsets: [4, 16] },
    };
    const file = tmpFile('bad-scales.safetensors', safetensors(header, new Uint8Array(16)));
    await expect(native().readTensors(file, null)).rejects.toThrow(
      /bad-scales\.safetensors: "w_scale" \(Float \[3, 1\]\) is not one scale per row of the int8 matrix "w" \[2, 2\]/,
    );
    await expect(native().readTensors(file, ['w'])).rejects.toThrow(/"w_scale"/);
  });
});

describe('int4 groups (convertCheckpoint dtype int4)', () => {
  const GROUP = 128;

  /** A float16 value from its bits. */
  function half(bits: number): number {
    const exponent = (bits >> 10) & 31;
    const fraction = bits & 1023;
    const sign = bits & 0x8000 ? -1 : 1;
    if (exponent === 0) return sign * fraction * 2 ** -24;
    return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }

  it('stores a quarter of float16: each value its group scale times an integer of -8..7, each group at least as close as max |group| / 7 rounds it', async () => {
    const listed = await native().inspectCheckpoint(source);
    const file = path.join(tmp, 'int4.safetensors');
    await native().convertCheckpoint(
      source,
      file,
      listed.map((t) => [t.name, t.name]),
      { dtype: 'int4' },
    );
    const ratio = statSync(file).size / statSync(source).size;
    expect(ratio).toBeGreaterThan(0.26);
    expect(ratio).toBeLessThan(0.3);
    // The file's own header: packed matrices beside float16 scales, small tensors in float16.
    const dump = pythonDump(file);
    const query = 'bert.encoder.layer.0.attention.self.query.weight';
    expect(dump.tensors[query]).toMatchObject({ dtype: 'U8', shape: [256, 128] });
    expect(dump.tensors[`${query}_scale`]).toMatchObject({ dtype: 'F16', shape: [256, 2] });
    expect(dump.tensors['crf.transitions'].dtype).toBe('F16');
    // Readers see the model's own tensors: same names and shapes, matrices as float32.
    const seen = await native().inspectCheckpoint(file);
    expect(seen.map((t) => [t.name, t.shape])).toEqual(listed.map((t) => [t.name, t.shape]));
    const matrices = seen.filter((t) => t.dtype === 'float32').map((t) => t.name);
    expect(matrices).toContain('bert.embeddings.word_embeddings.weight');
    expect(matrices).not.toContain('classifier.weight');

    const bytes = readFileSync(file);
    const raw = (name: string) => {
      const [begin, end] = dump.tensors[name].offsets;
      return bytes.subarray(8 + dump.headerLength + begin, 8 + dump.headerLength + end);
    };
    const before = await native().readTensors(source, null, true);
    const after = await native().readTensors(file, null, true);
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
    let clipped = 0;
    const offGrid: string[] = [];
    const worse: string[] = [];
    for (const [name, t] of Object.entries(before)) {
      const a = new Float32Array(Uint8Array.from(t.data).buffer);
      const b = new Float32Array(Uint8Array.from(after[name].data).buffer);
      if (!matrices.includes(name)) {
        expect(b, name).toEqual(a);
        continue;
      }
      const packed = raw(name);
      const scaleBits = raw(`${name}_scale`);
      for (let g = 0; g < a.length / GROUP; g++) {
        const scale = half(scaleBits.readUInt16LE(2 * g));
        let max = 0;
        for (let i = g * GROUP; i < (g + 1) * GROUP; i++) max = Math.max(max, Math.abs(a[i]));
        const step = max / 7 || 1;
        let error = 0;
        let plain = 0;
        for (let i = g * GROUP; i < (g + 1) * GROUP; i++) {
          const code = (packed[i >> 1] >> (i % 2 ? 4 : 0)) & 15;
          if (b[i] !== Math.fround((code - 8) * scale)) offGrid.push(`${name}[${i}]`);
          error += (b[i] - a[i]) ** 2;
          plain += (Math.max(-8, Math.min(7, Math.round(a[i] / step))) * step - a[i]) ** 2;
        }
        // Float16 scales round max / 7 a little, hence the slack.
        if (error > plain * 1.01 + 1e-12) worse.push(`${name} group ${g}`);
        if (scale < step * 0.99) clipped++;
      }
    }
    expect(offGrid).toEqual([]);
    expect(worse).toEqual([]);
    // The search does clip: many groups take a scale below max / 7.
    expect(clipped).toBeGreaterThan(100);
  });

  it('a model directory with int4 weights loads and tags close to the float16 one', async () => {
    const dir = await quantizedScratchCopy('int4');
    const texts = QUANTIZED_TEXTS;
    const plain = await NerModel.load(bundled, { threads: 1 });
    const int4 = await NerModel.load(dir, { threads: 1 });
    try {
      const key = ({ text, entity, start, end }: NerEntity) => `${text}/${entity}/${start}-${end}`;
      const expected = ((await plain.predict(texts)) as NerEntity[][]).flat().map(key);
      const got = new Set(((await int4.predict(texts)) as NerEntity[][]).flat().map(key));
      expect(expected.length).toBeGreaterThan(5);
      const kept = expected.filter((k) => got.has(k)).length;
      expect(kept / expected.length).toBeGreaterThanOrEqual(0.8);
    } finally {
      await plain.dispose();
      await int4.dispose();
    }
  });

  it('the Python oracle reads int8 rows and int4 groups as koner does', async () => {
    const listed = await native().inspectCheckpoint(source);
    for (const dtype of ['int8', 'int4'] as const) {
      const file = path.join(tmp, `oracle-${dtype}.safetensors`);
      await native().convertCheckpoint(
        source,
        file,
        listed.map((t) => [t.name, t.name]),
        {
          dtype,
        },
      );
      const name = 'bert.encoder.layer.1.intermediate.dense.weight';
      const ours = new Float32Array(
        Uint8Array.from((await native().readTensors(file, [name]))[name].data).buffer,
      );
      const script = [
        'import sys',
        `sys.path.insert(0, ${JSON.stringify(path.join(packageRoot, 'scripts/bench/python'))})`,
        'import kobert_crf',
        `t = kobert_crf.load_safetensors(${JSON.stringify(file)})`,
        `m = t[${JSON.stringify(name)}]`,
        `assert ${JSON.stringify(name + '_scale')} not in t`,
        'sys.stdout.buffer.write(m.float().contiguous().numpy().tobytes())',
      ].join('\n');
      const theirs = new Float32Array(
        Uint8Array.from(execFileSync('/usr/bin/python3', ['-c', script])).buffer,
      );
      expect(theirs, dtype).toEqual(ours);
    }
  });

  it('scales that do not split rows into equal groups are an Error naming the file and the tensor', async () => {
    // w: U8 [2, 2] (four int4 values a row), w_scale: F16 [2, 3]: 4 values in 3 groups
    const header = {
      w: { dtype: 'U8', shape: [2, 2], data_offsets: [0, 4] },
      w_scale: { dtype: 'F16', shape: [2, 3], data_offsets: [4, 16] },
    };
    const file = tmpFile('bad-int4-scales.safetensors', safetensors(header, new Uint8Array(16)));
    await expect(native().readTensors(file, null)).rejects.toThrow(
      /bad-int4-scales\.safetensors: "w_scale" \(Half \[2, 3\]\) is not a scale per group of equal parts of each row of the packed int4 matrix "w" \[2, 2\]/,
    );
    // One scale per row, rows that do not match: the same error.
    const rows = {
      w: { dtype: 'U8', shape: [2, 2], data_offsets: [0, 4] },
      w_scale: { dtype: 'F16', shape: [3, 1], data_offsets: [4, 10] },
    };
    const other = tmpFile('bad-int4-rows.safetensors', safetensors(rows, new Uint8Array(10)));
    await expect(native().readTensors(other, ['w'])).rejects.toThrow(/"w_scale" \(Half \[3, 1\]\)/);
  });
});

describe('importCheckpoint', () => {
  const heads = { numAttentionHeads: 4 };

  async function imported(
    name: string,
    options: Parameters<typeof importCheckpoint>[2] = heads,
  ): Promise<{ dir: string; result: Awaited<ReturnType<typeof importCheckpoint>> }> {
    const dir = path.join(tmp, `import-${counter++}`);
    // The fixtures' vocabulary (50 ids) fits no tokenizer at hand: the tokenizer is tested below.
    return {
      dir,
      result: await importCheckpoint(fixture(name), dir, { tokenizer: null, ...options }),
    };
  }

  function expectShape(config: Awaited<ReturnType<typeof readModelConfig>>): void {
    const c = expected.config;
    expect(config).toMatchObject({
      vocabSize: c.vocabSize,
      hiddenSize: c.hiddenSize,
      numHiddenLayers: c.numHiddenLayers,
      numAttentionHeads: c.numAttentionHeads,
      intermediateSize: c.intermediateSize,
      maxPositionEmbeddings: c.maxPositionEmbeddings,
      typeVocabSize: c.typeVocabSize,
    });
  }

  it.each([
    ['hf_bert.bin', 'bert'],
    ['hf_bert_p4.bin', 'bert'],
    ['hf_pretraining.bin', 'bert'],
  ])(
    '%s: the encoder bit for bit, pooler kept, buffers dropped, a CRF head initialised',
    async (name, layout) => {
      const { dir, result } = await imported(name, { ...heads, seed: 3 });
      expect(result.layout).toBe(layout);
      const config = await readModelConfig(dir);
      expectShape(config);
      expect(config.head).toBe('crf');
      expect(config.labels).toEqual(LABELS);
      expect(result.dropped.some((n) => n.endsWith('embeddings.position_ids'))).toBe(true);
      const got = await hashes(result.weightsPath);
      const want = expected.files[name].koner!;
      const initialised = [
        'classifier.weight',
        'classifier.bias',
        'crf.transitions',
        'crf.start_transitions',
        'crf.end_transitions',
      ];
      expect(result.initialised).toEqual(initialised);
      expect(Object.keys(got).sort()).toEqual([...Object.keys(want), ...initialised].sort());
      for (const [n, h] of Object.entries(want)) expect(got[n], n).toBe(h);
      expect((await floats(result.weightsPath, 'classifier.bias')).every((x) => x === 0)).toBe(
        true,
      );
      const transitions = await floats(result.weightsPath, 'crf.transitions');
      expect(transitions.length).toBe(21 * 21);
      expect(transitions.every((x) => Math.abs(x) <= 0.1)).toBe(true);
    },
  );

  it('a BertForTokenClassification: softmax head, classifier kept, float16 on request', async () => {
    const { dir, result } = await imported('hf_token_cls.bin', { ...heads, dtype: 'float16' });
    expect(result.layout).toBe('token-classification');
    expect(result.initialised).toEqual([]);
    expect((await readModelConfig(dir)).head).toBe('softmax');
    expect(await hashes(result.weightsPath)).toEqual(expected.files['hf_token_cls.bin'].float16);
  });

  it('a Hugging Face model directory: heads, epsilon, pad id and labels from its config.json', async () => {
    const { dir, result } = await imported('hf_dir/pytorch_model.bin', {});
    const config = await readModelConfig(dir);
    expectShape(config);
    expect(config.layerNormEps).toBe(1e-5);
    expect(config.padTokenId).toBe(0);
    expect(config.labels).toEqual([...LABELS].reverse());
    expect(await hashes(result.weightsPath)).toEqual(expected.files['hf_token_cls.bin'].koner);
  });

  it.each(['reference.pt', 'reference_legacy.pt'])(
    '%s: the reference project, its 25 labels kept as they are',
    async (name) => {
      const { dir, result } = await imported(name, {
        ...heads,
        labels: fixture('ner_to_index.json'),
      });
      expect(result.layout).toBe('reference');
      const config = await readModelConfig(dir);
      expectShape(config);
      expect(config.head).toBe('crf');
      expect(config.labels).toEqual(expected.labels25);
      expect(result.dropped).toEqual(['opt_state_dict.state.0.exp_avg']);
      expect(await hashes(result.weightsPath)).toEqual(expected.files[name].koner);
    },
  );

  it('the reference project with its special labels folded into a 21-label CRF', async () => {
    const { dir, result } = await imported('reference.pt', {
      ...heads,
      labels: fixture('ner_to_index.json'),
      specialLabels: 'fold',
    });
    expect(result.foldedLabels).toEqual(['[CLS]', '[SEP]', '[PAD]', '[MASK]']);
    expect((await readModelConfig(dir)).labels).toEqual(expected.fold.labels);
    expect(await hashes(result.weightsPath)).toEqual(expected.fold.koner);
  });

  it("koner's own safetensors (bfloat16, CRF) unchanged", async () => {
    const { dir, result } = await imported('koner.safetensors');
    expect((await readModelConfig(dir)).head).toBe('crf');
    expect(await hashes(result.weightsPath)).toEqual(expected.files['koner.safetensors'].koner);
  });

  it("koner's own RNN heads, as koner's model saves them", async () => {
    const c = expected.config;
    for (const head of ['bilstm-crf', 'bigru-crf'] as const) {
      const model = new (native().Model)({
        ...KOBERT_BASE,
        vocabSize: c.vocabSize,
        hiddenSize: c.hiddenSize,
        numHiddenLayers: c.numHiddenLayers,
        numAttentionHeads: c.numAttentionHeads,
        intermediateSize: c.intermediateSize,
        maxPositionEmbeddings: c.maxPositionEmbeddings,
        typeVocabSize: c.typeVocabSize,
        head,
        rnnHiddenSize: 8,
        labels: [...LABELS],
      });
      const src = path.join(tmp, `${head}.safetensors`);
      await model.saveWeights(src);
      const { dir, result } = await imported(src, heads);
      const config = await readModelConfig(dir);
      expect(config).toMatchObject({ head, rnnHiddenSize: 8 });
      expect(await hashes(result.weightsPath)).toEqual(await hashes(src));
      const again = new (native().Model)(config);
      expect((await again.loadWeights(result.weightsPath)).kind).toBe('model');
    }
  });

  it('writes what the model loads', async () => {
    const addon = native();
    for (const name of ['hf_bert.bin', 'reference.pt']) {
      const { dir, result } = await imported(name, {
        ...heads,
        labels: name === 'reference.pt' ? fixture('ner_to_index.json') : undefined,
      });
      const model = new addon.Model(await readModelConfig(dir));
      const report = await model.loadWeights(result.weightsPath);
      expect(report.kind).toBe('model');
    }
  });

  it('explains what it cannot import', async () => {
    const into = path.join(tmp, 'refused');
    const cases: [string, Parameters<typeof importCheckpoint>[2], RegExp][] = [
      [
        'reference.pt',
        heads,
        /reference\.pt: the classifier has 25 labels, not KMOU's 21: give their names/,
      ],
      [
        'reference.pt',
        { ...heads, labels: ['O', 'B-PER', 'I-PER'] },
        /labels has 3 labels, but the classifier has 25/,
      ],
      [
        'dtypes.safetensors',
        heads,
        /dtypes\.safetensors: not a BERT checkpoint koner knows: .*bf16, bool, empty/,
      ],
      [
        'inconsistent.bin',
        heads,
        /inconsistent shapes \(hidden 32, intermediate 37\): bert\.encoder\.layer\.1\.intermediate\.dense\.weight is \[38, 32\], expected \[37, 32\]/,
      ],
      [
        'hf_bert.bin',
        {},
        /hidden size 32 is not a multiple of 64: give the number of attention heads/,
      ],
      [
        'hf_bert.bin',
        { numAttentionHeads: 5 },
        /5 attention heads do not divide the hidden size 32/,
      ],
      [
        'hf_bert.bin',
        { ...heads, labels: path.join(tmp, 'none.json') },
        /none\.json: cannot read the label map \(ENOENT\)/,
      ],
    ];
    for (const [name, options, message] of cases) {
      await expect(importCheckpoint(fixture(name), into, options)).rejects.toThrow(message);
    }
    // Nothing was written for a refused import.
    expect(readdirSync(tmp)).not.toContain('refused');
  });

  it("copies a tokenizer in: the one beside the checkpoint, else KoBERT's for its vocabulary", async () => {
    // A tiny encoder with KoBERT's vocabulary size, saved by koner itself.
    const src = path.join(tmp, 'kobert-sized');
    mkdirSync(src, { recursive: true });
    const config = parseModelConfig({
      vocab_size: KOBERT_BASE.vocabSize,
      hidden_size: 8,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 16,
      max_position_embeddings: 16,
      id2label: Object.fromEntries(LABELS.map((l, i) => [String(i), l])),
    });
    const model = new (native().Model)(config);
    await model.seed(1);
    const file = path.join(src, 'weights.safetensors');
    await model.saveWeights(file);
    const kobert = bundledTokenizerFiles();
    const names = { model: 'tokenizer.model', vocab: 'vocab.json' };

    const plain = path.join(tmp, 'with-kobert');
    const a = await importCheckpoint(file, plain, { numAttentionHeads: 2 });
    expect(a.tokenizer).toEqual(kobert);
    expect((await readModelConfig(plain)).tokenizer).toEqual(names);
    expect(readFileSync(path.join(plain, 'vocab.json'))).toEqual(readFileSync(kobert.vocab));
    expect(readFileSync(path.join(plain, 'tokenizer.model'))).toEqual(readFileSync(kobert.model));
    expect(resolveTokenizerFiles(plain, await readModelConfig(plain))).toEqual({
      model: path.join(plain, names.model),
      vocab: path.join(plain, names.vocab),
    });

    // A tokenizer beside the checkpoint wins over KoBERT's.
    for (const key of ['model', 'vocab'] as const) {
      writeFileSync(path.join(src, names[key]), readFileSync(kobert[key]));
    }
    const besideDir = path.join(tmp, 'with-beside');
    const b = await importCheckpoint(file, besideDir, { numAttentionHeads: 2 });
    expect(b.tokenizer).toEqual({
      model: path.join(src, names.model),
      vocab: path.join(src, names.vocab),
    });

    const none = path.join(tmp, 'without');
    expect(
      (await importCheckpoint(file, none, { numAttentionHeads: 2, tokenizer: null })).tokenizer,
    ).toBeNull();
    expect(readdirSync(none).sort()).toEqual(['config.json', 'model.safetensors']);
    expect((await readModelConfig(none)).tokenizer).toBeUndefined();
  });

  it('refuses a tokenizer that does not fit the vocabulary, and a guess it cannot make', async () => {
    const into = path.join(tmp, 'refused-tokenizer');
    await expect(importCheckpoint(fixture('hf_bert.bin'), into, heads)).rejects.toThrow(
      /hf_bert\.bin: its vocabulary has 50 ids, not KoBERT's 8002, and no tokenizer lies beside it/,
    );
    await expect(
      importCheckpoint(fixture('hf_bert.bin'), into, {
        ...heads,
        tokenizer: bundledTokenizerFiles(),
      }),
    ).rejects.toThrow(/vocab\.json has 8002 ids but the checkpoint's vocabulary only 50/);
    expect(readdirSync(tmp)).not.toContain('refused-tokenizer');
  });

  it('reads label maps in the shapes people write them', () => {
    expect(parseLabelMap({ '[CLS]': 1, O: 0 }, 'm')).toEqual(['O', '[CLS]']);
    expect(parseLabelMap({ 1: 'B-PER', 0: 'O' }, 'm')).toEqual(['O', 'B-PER']);
    expect(parseLabelMap(['O', 'B-PER'], 'm')).toEqual(['O', 'B-PER']);
    expect(parseLabelMap({ id2label: { 0: 'O' } }, 'm')).toEqual(['O']);
    expect(() => parseLabelMap({ O: 0, X: 2 }, 'm')).toThrow(/m: label ids must be 0\.\.1/);
    expect(() => parseLabelMap(['O', 'O'], 'm')).toThrow(/appears twice/);
    expect(() => parseLabelMap('O', 'm')).toThrow(/expected a list of labels/);
  });
});

describe('corrupt and truncated safetensors', () => {
  // a: F32 [2, 3] (24 bytes), b: I64 [2] (16 bytes)
  const data = new Uint8Array(40).map((_, i) => i);
  const good = {
    a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
    b: { dtype: 'I64', shape: [2], data_offsets: [24, 40] },
  };
  const withB = (b: object) => ({ a: good.a, b: { ...good.b, ...b } });

  it('reads the well-formed file', async () => {
    const file = tmpFile('good.safetensors', safetensors(good, data));
    const t = await native().readTensors(file, null);
    expect(Array.from(t.a.data)).toEqual(Array.from(data.subarray(0, 24)));
    expect(t.b.dtype).toBe('int64');
  });

  const cases: [string, () => Uint8Array, RegExp][] = [
    ['an empty file', () => new Uint8Array(0), /0 bytes, shorter than the 8-byte header length/],
    ['7 bytes', () => new Uint8Array(7), /7 bytes, shorter than the 8-byte header length/],
    [
      'a huge header length',
      () => safetensors(good, data, 1n << 40n),
      /header length 1099511627776 exceeds 100000000 bytes/,
    ],
    [
      'header length 2^64-1',
      () => safetensors(good, data, (1n << 64n) - 1n),
      /exceeds 100000000 bytes/,
    ],
    [
      'a header length past the end',
      () => safetensors(good, data, 5000n),
      /header length 5000 runs past the end of the file \(\d+ bytes\)/,
    ],
    ['a header length of 1', () => safetensors(good, data, 1n), /too short for a header/],
    [
      'no opening brace',
      () => safetensors('[1, 2]', new Uint8Array(0)),
      /header does not begin with '\{'/,
    ],
    [
      'invalid JSON',
      () => safetensors('{"a": {"dtype": "F32",', data),
      /header is not valid JSON \(invalid JSON at byte \d+: /,
    ],
    [
      'invalid UTF-8',
      () =>
        safetensors(
          Buffer.concat([Buffer.from('{"a'), Buffer.from([0xff]), Buffer.from('":1}')]),
          data,
        ),
      /not valid UTF-8/,
    ],
    [
      'deep nesting',
      () => safetensors('{"a":' + '['.repeat(200000) + ']'.repeat(200000) + '}', data),
      /nested deeper than 64 levels/,
    ],
    [
      'an entry that is not an object',
      () => safetensors({ a: 1 }, data),
      /tensor "a": header entry is not an object/,
    ],
    [
      'an unknown dtype',
      () => safetensors(withB({ dtype: 'F31' }), data),
      /tensor "b": unknown dtype "F31"/,
    ],
    [
      'a dtype LibTorch 1.13 lacks',
      () => safetensors(withB({ dtype: 'U16', shape: [8] }), data),
      /tensor "b": dtype U16 is not supported/,
    ],
    [
      'a missing field',
      () => safetensors({ a: good.a, b: { dtype: 'I64', shape: [2] } }, data),
      /tensor "b": header entry lacks "data_offsets"/,
    ],
    [
      'a shape that is not a list',
      () => safetensors(withB({ shape: 2 }), data),
      /tensor "b": shape is not a list of non-negative integers/,
    ],
    [
      'a negative dimension',
      () => safetensors(withB({ shape: [-2] }), data),
      /shape is not a list of non-negative integers/,
    ],
    [
      'a fractional dimension',
      () => safetensors(withB({ shape: [1.5] }), data),
      /shape is not a list of non-negative integers/,
    ],
    [
      'an impossibly large shape',
      () => safetensors(withB({ shape: [2 ** 40, 2 ** 40] }), data),
      /shape \[1099511627776, 1099511627776\] is impossibly large/,
    ],
    [
      'offsets out of range',
      () => safetensors(withB({ data_offsets: [24, 4000] }), data),
      /tensor "b": data_offsets \[24, 4000\] run past the end of the data section \(40 bytes\)/,
    ],
    [
      'offsets reversed',
      () => safetensors(withB({ data_offsets: [40, 24] }), data),
      /data_offsets \[40, 24\] end before they begin/,
    ],
    [
      'one offset',
      () => safetensors(withB({ data_offsets: [24] }), data),
      /data_offsets is not \[begin, end\]/,
    ],
    [
      'a size that does not match the shape',
      () => safetensors(withB({ shape: [3] }), data),
      /dtype I64 and shape \[3\] need 24 bytes, but data_offsets \[24, 40\] hold 16/,
    ],
    [
      'overlapping tensors',
      () => safetensors(withB({ data_offsets: [16, 32] }), data.subarray(0, 32)),
      /tensor "b" overlaps tensor "a"/,
    ],
    [
      'a hole',
      () => safetensors(withB({ data_offsets: [28, 44] }), new Uint8Array(44)),
      /a hole of 4 bytes precedes tensor "b"/,
    ],
    [
      'trailing bytes',
      () => safetensors(good, new Uint8Array(48)),
      /8 bytes follow the last tensor/,
    ],
    [
      'a duplicate name',
      () => safetensors(`{"a":${JSON.stringify(good.a)},"a":${JSON.stringify(good.a)}}`, data),
      /header names "a" twice/,
    ],
    [
      'metadata that is not text',
      () => safetensors({ __metadata__: { x: 1 }, ...good }, data),
      /__metadata__ value for "x" is not a string/,
    ],
    [
      'a bool byte other than 0 or 1',
      () =>
        safetensors(
          { c: { dtype: 'BOOL', shape: [2], data_offsets: [0, 2] } },
          Uint8Array.of(1, 2),
        ),
      /tensor "c": BOOL data holds a byte other than 0 or 1/,
    ],
  ];

  it.each(cases)('%s: an Error naming the file and the problem', async (_, bytes, message) => {
    const file = tmpFile('bad.safetensors', bytes());
    const error = await native()
      .readTensors(file, null)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message.startsWith(file + ': ')).toBe(true);
    expect((error as Error).message).toMatch(message);
  });

  it('truncated at any point: an Error, never a crash or a hang', async () => {
    const whole = readFileSync(fixture('koner.safetensors'));
    const headerEnd = 8 + Number(whole.readBigUInt64LE(0));
    const cuts = [
      1,
      8,
      9,
      100,
      headerEnd - 1,
      headerEnd,
      headerEnd + 1,
      whole.length >> 1,
      whole.length - 1,
    ];
    for (const cut of cuts) {
      const file = tmpFile('cut.safetensors', whole.subarray(0, cut));
      await expect(native().readTensors(file, null)).rejects.toThrow(
        cut < 8
          ? /shorter than the 8-byte header length/
          : cut < headerEnd
            ? /runs past the end of the file/
            : /run past the end of the data section/,
      );
      await expect(importCheckpoint(file, path.join(tmp, 'never'))).rejects.toThrow(file);
    }
  });

  it('survives random corruption of header and data', async () => {
    const whole = readFileSync(fixture('dtypes.safetensors'));
    const random = prng(42);
    let errors = 0;
    for (let i = 0; i < 300; i++) {
      const bytes = Buffer.from(whole);
      for (let k = 0; k < 1 + (random() % 3); k++) {
        bytes[random() % Math.min(bytes.length, 900)] = random() & 0xff;
      }
      if (
        (await settles(native().readTensors(tmpFile('fuzz.safetensors', bytes), null))) === 'error'
      ) {
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(100);
  });
});

describe('hostile torch.save files', () => {
  // scripts/fixtures/io_bombs.py: files of a few hundred kB that ask for gigabytes.
  let dir: string;
  beforeAll(() => {
    dir = path.join(tmp, 'bombs');
    execFileSync('/usr/bin/python3', [path.join(packageRoot, 'scripts/fixtures/io_bombs.py'), dir]);
  });

  it('refuses a zip record that would inflate far past the archive, before inflating it', async () => {
    await expect(native().inspectCheckpoint(path.join(dir, 'zip-bomb.pt'))).rejects.toThrow(
      /zip-bomb\.pt: data\.pkl would inflate to 67109\d+ bytes from an archive of \d+ \(more than 4x\): refused as a zip bomb/,
    );
  });

  it('refuses a pickle that builds far more than its size allows', async () => {
    await expect(native().inspectCheckpoint(path.join(dir, 'pickle-bomb.pt'))).rejects.toThrow(
      /pickle-bomb\.pt: data\.pkl: pickle: the pickle builds more than \d+ objects and references from \d+ bytes: refused as a pickle bomb/,
    );
  });
});

describe('corrupt and truncated torch.save files', () => {
  it('a truncated zip archive is an Error naming the file', async () => {
    const whole = readFileSync(fixture('hf_bert.bin'));
    for (const cut of [4, 100, whole.length >> 1, whole.length - 22, whole.length - 1]) {
      const file = tmpFile('cut.bin', whole.subarray(0, cut));
      await expect(native().inspectCheckpoint(file)).rejects.toThrow(
        new RegExp(
          `^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a valid torch.save zip archive`,
        ),
      );
    }
  });

  it('survives random corruption of a zip archive', async () => {
    // LibTorch's zip reader, like torch.load, does not checksum records: damage to a storage
    // changes values, damage to data.pkl or the zip structure must be an Error.
    const whole = readFileSync(fixture('hf_bert.bin'));
    const random = prng(11);
    const outcomes = { ok: 0, error: 0 };
    for (let i = 0; i < 300; i++) {
      const bytes = Buffer.from(whole);
      const inPickle = i % 2 === 0;
      for (let k = 0; k < 1 + (random() % 4); k++) {
        // data.pkl is the first record: the first 3 kB are mostly pickle.
        const at = inPickle ? random() % 3000 : random() % bytes.length;
        bytes[at] = random() & 0xff;
      }
      outcomes[await settles(native().readTensors(tmpFile('fuzz.bin', bytes), null))]++;
    }
    expect(outcomes.error).toBeGreaterThan(50);
  });

  it('a truncated legacy file is an Error naming the file', async () => {
    const whole = readFileSync(fixture('reference_legacy.pt'));
    for (const cut of [2, 30, 300, 6000, whole.length >> 1, whole.length - 1]) {
      const file = tmpFile('cut.pt', whole.subarray(0, cut));
      await expect(native().readTensors(file, null)).rejects.toThrow(
        /cut\.pt: (not a torch\.save file \(.*unexpected end of data|storage data runs past the end of the file)/,
      );
    }
  });

  it('survives random corruption of the pickles', async () => {
    // In the legacy format the pickles are the file itself: every mutation reaches the unpickler.
    const whole = readFileSync(fixture('reference_legacy.pt'));
    const pickleEnd = 6800; // five pickles, then the storages
    const random = prng(7);
    const outcomes = { ok: 0, error: 0 };
    for (let i = 0; i < 300; i++) {
      const bytes = Buffer.from(whole);
      for (let k = 0; k < 1 + (random() % 4); k++) bytes[random() % pickleEnd] = random() & 0xff;
      outcomes[await settles(native().readTensors(tmpFile('fuzz.pt', bytes), null))]++;
    }
    expect(outcomes.error).toBeGreaterThan(50);
  });
});

describe('koner import', () => {
  function koner(...args: string[]) {
    return spawnSync(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', 'import', ...args], {
      cwd: packageRoot,
      encoding: 'utf8',
    });
  }

  it('imports the reference checkpoint with its label map', async () => {
    const dir = path.join(tmp, 'cli');
    const run = koner(
      fixture('reference.pt'),
      dir,
      '--labels',
      fixture('ner_to_index.json'),
      '--heads',
      '4',
      '--dtype',
      'bfloat16',
      '--no-tokenizer', // its vocabulary (50 ids) fits no tokenizer at hand
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/\(reference\) into/);
    expect(run.stdout).toMatch(/head: crf, 25 labels/);
    expect(run.stdout).toMatch(/tokenizer: none/);
    const config = await readModelConfig(dir);
    expect(config.labels).toEqual(expected.labels25);
    const listed = await native().inspectCheckpoint(path.join(dir, 'model.safetensors'));
    expect(new Set(listed.map((t) => t.dtype))).toEqual(new Set(['bfloat16']));
  });

  it('fails with a message and exit code 1', () => {
    const run = koner(fixture('reference.pt'), path.join(tmp, 'cli-fail'), '--heads', '4');
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^koner import: .*reference\.pt: the classifier has 25 labels/);
    expect(koner(fixture('reference.pt')).status).toBe(2);
    expect(koner('a', 'b', '--dtype', 'int8').stderr).toMatch(/--dtype expects one of float32/);
    expect(koner('a', 'b', '--tokenizer-model', 'm').stderr).toMatch(
      /--tokenizer-model and --tokenizer-vocab go together/,
    );
  });
});
