import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { decode as crfDecode } from '../lib/crf/index.js';
import { decodeEntities } from '../lib/labels/decode.js';
import { LABELS } from '../lib/labels/index.js';
import {
  modelConfigToJson,
  parseModelConfig,
  readModelConfig,
  readNetworkConfig,
} from '../lib/model/config.js';
import { EnsembleModel, meanCrfParameters, writeEnsembleDirectory } from '../lib/model/ensemble.js';
import { bioConstraints, NerModel } from '../lib/model/ner-model.js';
import { native, packageRoot } from '../lib/native.js';
import { makeModelDir } from './fixtures/model-dir.js';

const tokenizerDir = path.join(packageRoot, '..', 'shared', 'data', 'kobert-tokenizer');
const haveShared = existsSync(tokenizerDir);
if (!haveShared) console.warn(`ensemble tests skipped: ${tokenizerDir} is absent`);

const TEXT = '이순신 장군은 1545년 한성에서 태어났다.';

/** A config.json object of a CRF tagger with the KMOU labels, plus `extra`. */
const config = (extra: Record<string, unknown>) => ({
  head: 'crf',
  id2label: Object.fromEntries(LABELS.map((l, i) => [String(i), l])),
  ...extra,
});

describe.skipIf(!haveShared)('an ensemble directory', () => {
  let tmp: string;
  let members: string[];
  let dir: string;
  let ensemble: NerModel;
  let alone: NerModel[];

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-ensemble-'));
    members = [
      await makeModelDir(tmp, { tokenizerDir, name: 'per', label: 'B-PER' }),
      await makeModelDir(tmp, { tokenizerDir, name: 'loc', label: 'B-LOC' }),
    ];
    dir = path.join(tmp, 'both');
    expect(await writeEnsembleDirectory(dir, members, 'float32')).toEqual(['member-0', 'member-1']);
    ensemble = await NerModel.load(dir, { threads: 1 });
    alone = await Promise.all(members.map((m) => NerModel.load(m, { threads: 1 })));
  });

  afterAll(async () => {
    await ensemble?.dispose();
    await Promise.all((alone ?? []).map((m) => m.dispose()));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('holds the tokenizer once and each member without one', () => {
    const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(config.ensemble).toEqual(['member-0', 'member-1']);
    expect(existsSync(path.join(dir, config.tokenizer.model))).toBe(true);
    const member = JSON.parse(readFileSync(path.join(dir, 'member-1', 'config.json'), 'utf8'));
    expect(member.tokenizer).toBeUndefined();
    expect(member.ensemble).toBeUndefined();
  });

  it("emits the members' mean emissions", async () => {
    const ids = [[2, 2440, 517, 3]];
    const [[joint], [a], [b]] = await Promise.all([
      ensemble.logits(ids),
      alone[0].logits(ids),
      alone[1].logits(ids),
    ]);
    expect(joint.length).toBe(a.length);
    for (let j = 0; j < joint.length; j++) expect(joint[j]).toBeCloseTo((a[j] + b[j]) / 2, 5);
  });

  it('tags by the Viterbi path of one CRF over the mean emissions and mean transitions', async () => {
    const encoded = ensemble.tokenizer.encode(TEXT);
    const ids = [2, ...encoded.ids, 3];
    const [[a], [b]] = await Promise.all(alone.map((m) => m.logits([ids])));
    const K = LABELS.length;
    const crf = await meanCrfParameters(members, K);
    const { paths } = crfDecode({
      emissions: a.map((x, j) => (x + b[j]) / 2),
      shape: [1, ids.length, K],
      ...crf,
      constraints: bioConstraints(LABELS),
    });
    const tags = paths[0][0].slice(1, -1).map((t) => LABELS[t]);
    const expected = decodeEntities(TEXT, encoded.offsets, tags);
    const got = await ensemble.predict(TEXT);
    expect(got.map((e) => [e.entity, e.start, e.end])).toEqual(
      expected.map((e) => [e.entity, e.start, e.end]),
    );
    expect(got.length).toBeGreaterThan(0);
    for (const e of got) expect(e.score).toBeGreaterThan(0);
    // Texts longer than the members' 64 positions are read in windows, as by a single model.
    const long = TEXT.repeat(12);
    for (const e of await ensemble.predict(long)) expect(long.slice(e.start, e.end)).toBe(e.text);
  });

  it('of one member tags exactly as that member', async () => {
    const one = path.join(tmp, 'one');
    await writeEnsembleDirectory(one, [members[0]], 'float32');
    const model = await NerModel.load(one, { threads: 1 });
    try {
      expect(await model.predict([TEXT, TEXT.repeat(12)])).toEqual(
        await alone[0].predict([TEXT, TEXT.repeat(12)]),
      );
      expect(await model.predictPaths(TEXT, 3)).toEqual(await alone[0].predictPaths(TEXT, 3));
    } finally {
      await model.dispose();
    }
  });

  it("draws the members' mean attention, each row a distribution", async () => {
    const maps = await ensemble.attentions(TEXT, { layers: [1], heads: [0] });
    const N = maps.tokens.length;
    const row = maps.attentions[0][0].subarray(0, N);
    expect(row.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 5);
  });
});

describe.skipIf(!haveShared)('bad ensembles', () => {
  let tmp: string;
  let member: string;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-ensemble-bad-'));
    member = await makeModelDir(tmp, { tokenizerDir, name: 'per' });
  });

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('refuses an ensemble field that names no member, or one outside the directory', () => {
    for (const members of [[], 'member-0', ['../elsewhere'], ['/abs'], ['a', 'a'], [7]]) {
      expect(() => parseModelConfig(config({ ensemble: members }), 'x/config.json')).toThrow(
        /^x\/config\.json: field "ensemble"/,
      );
    }
    expect(() =>
      parseModelConfig(config({ ensemble: ['a'], head: 'softmax' }), 'x/config.json'),
    ).toThrow(/field "ensemble" needs CRF taggers, but head is softmax/);
  });

  it('names a missing member, a member of other labels, and an ensemble as a member', async () => {
    const dir = path.join(tmp, 'ens');
    await writeEnsembleDirectory(dir, [member], 'float32');
    const file = path.join(dir, 'config.json');
    const good = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...good, ensemble: ['member-0', 'missing'] }));
    await expect(NerModel.load(dir)).rejects.toThrow(/missing[/\\]config\.json/);

    const memberFile = path.join(dir, 'member-0', 'config.json');
    const memberConfig = JSON.parse(readFileSync(memberFile, 'utf8'));
    writeFileSync(file, JSON.stringify(good));
    writeFileSync(
      memberFile,
      JSON.stringify({
        ...memberConfig,
        id2label: { 0: 'O', 1: 'B-X', 2: 'I-X' },
        label2id: undefined,
      }),
    );
    await expect(NerModel.load(dir)).rejects.toThrow(
      /member-0: field "id2label" is "O B-X I-X", the ensemble's "O B-PER/,
    );
    writeFileSync(memberFile, JSON.stringify({ ...memberConfig, ensemble: ['x'] }));
    await expect(NerModel.load(dir)).rejects.toThrow(/member-0: a member cannot be an ensemble/);

    // Members of another label set are refused when packing, too.
    const other = path.join(tmp, 'other');
    await writeEnsembleDirectory(other, [member], 'float32');
    writeFileSync(
      path.join(other, 'member-0', 'config.json'),
      JSON.stringify({
        ...memberConfig,
        id2label: { 0: 'O', 1: 'B-X', 2: 'I-X' },
        label2id: undefined,
      }),
    );
    await expect(
      writeEnsembleDirectory(
        path.join(tmp, 'mixed'),
        [member, path.join(other, 'member-0')],
        'float32',
      ),
    ).rejects.toThrow(/field "id2label"/);
  });

  it('is refused where one network is needed (fine-tuning, pretraining, teaching)', async () => {
    const dir = path.join(tmp, 'init');
    await writeEnsembleDirectory(dir, [member], 'float32');
    await expect(readNetworkConfig(dir, 'model.init')).rejects.toThrow(
      /^model\.init: .*init is an ensemble of 1 models; use one of its members \(e\.g\. .*member-0\)/,
    );
    expect((await readNetworkConfig(path.join(dir, 'member-0'), 'model.init')).labels).toEqual(
      LABELS,
    );
  });

  it('refuses what only one network has', async () => {
    const dir = path.join(tmp, 'single');
    await writeEnsembleDirectory(dir, [member], 'float32');
    const crf = await meanCrfParameters([path.join(dir, 'member-0')], LABELS.length);
    const networks = [new (native().Model)(await readModelConfig(member))];
    const model = new EnsembleModel(networks, crf);
    await expect(model.hidden()).rejects.toThrow(/an ensemble has no single hidden state/);
    expect(() => model.parameterInfo()).toThrow(/no single parameter list/);
    expect(() => new EnsembleModel([], crf)).toThrow(/at least one member/);
    await model.dispose();
  });
});

describe.skipIf(!haveShared)('config.json inference_dtype', () => {
  let tmp: string;
  let dir: string;
  let member: string;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-inference-dtype-'));
    member = await makeModelDir(tmp, { tokenizerDir, name: 'per' });
    dir = path.join(tmp, 'bf16');
    await writeEnsembleDirectory(dir, [member, member], 'float32', 'bfloat16');
  });

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('is float32 or bfloat16, and nothing else', () => {
    for (const value of ['float16', 'int8', 'bf16', 7, null]) {
      expect(() => parseModelConfig(config({ inference_dtype: value }), 'x/config.json')).toThrow(
        /^x\/config\.json: field "inference_dtype" must be one of float32, bfloat16, got /,
      );
    }
    const parsed = parseModelConfig(config({ inference_dtype: 'bfloat16' }), 'x/config.json');
    expect(parsed.inferenceDtype).toBe('bfloat16');
    expect(modelConfigToJson(parsed).inference_dtype).toBe('bfloat16');
    expect(modelConfigToJson(parseModelConfig(config({}), 'x')).inference_dtype).toBeUndefined();
  });

  it('is written by writeEnsembleDirectory and read back', async () => {
    expect(JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')).inference_dtype).toBe(
      'bfloat16',
    );
    expect((await readModelConfig(dir)).inferenceDtype).toBe('bfloat16');
  });

  /** The dtype NerModel.load places `dir` in, in a child process with `env` and `options`. */
  function childDtype(env: Record<string, string>, options = {}): string {
    const script = [
      `import { NerModel } from ${JSON.stringify(path.join(packageRoot, 'lib/model/ner-model.ts'))};`,
      `const m = await NerModel.load(${JSON.stringify(dir)}, ${JSON.stringify({ threads: 1, ...options })});`,
      'console.log(m.placement.dtype);',
      'await m.dispose();',
    ].join('\n');
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { env: { ...process.env, ...env }, encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.trim();
  }

  const cpu = native().cpuFeatures();
  it.skipIf(!(cpu.avx512Bf16 || cpu.amxBf16))(
    'makes bfloat16 the default where the CPU has it, and float32 where it has not',
    () => {
      expect(childDtype({})).toBe('bfloat16');
      expect(childDtype({}, { dtype: 'float32' })).toBe('float32');
      expect(childDtype({ KONER_CPU_DISABLE: 'avx512_bf16,amx_bf16' })).toBe('float32');
    },
  );

  it('leaves float32 the default without it', async () => {
    const plain = await NerModel.load(member, { threads: 1 });
    try {
      expect(plain.placement.dtype).toBe('float32');
    } finally {
      await plain.dispose();
    }
  });
});
