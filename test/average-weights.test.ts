// scripts/average-weights.ts: checkpoint averaging, as the README's ablation uses it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { LABELS } from '../lib/labels/index.js';
import { native, packageRoot } from '../lib/native.js';
import { makeModelDir } from './fixtures/model-dir.js';

const tokenizerDir = path.resolve(packageRoot, '..', 'shared', 'data', 'kobert-tokenizer');
const SCRIPT = path.join(packageRoot, 'scripts/average-weights.ts');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-average-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function average(out: string, ...dirs: string[]): string {
  return execFileSync(process.execPath, ['--import', 'tsx', SCRIPT, out, ...dirs], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function tensor(dir: string, name: string): Promise<Float32Array> {
  const t = await native().readTensors(path.join(dir, 'model.safetensors'), [name], true);
  return new Float32Array(t[name].data.slice().buffer);
}

describe.skipIf(!existsSync(tokenizerDir))('scripts/average-weights.ts', () => {
  it('writes the element-wise mean as a model directory with the first one’s config', async () => {
    // Same random encoder (seed 7), classifier biases of 12 on different labels.
    const per = await makeModelDir(tmp, { tokenizerDir, name: 'per', label: 'B-PER' });
    const loc = await makeModelDir(tmp, { tokenizerDir, name: 'loc', label: 'B-LOC' });
    const out = path.join(tmp, 'mean');
    expect(average(out, per, loc)).toMatch(/the mean of 2 models' \d+ tensors/);
    expect(readdirSync(out).sort()).toEqual(
      ['config.json', 'model.safetensors', 'tokenizer.model', 'vocab.json'].sort(),
    );
    const bias = await tensor(out, 'classifier.bias');
    expect(bias[LABELS.indexOf('B-PER')]).toBe(6);
    expect(bias[LABELS.indexOf('B-LOC')]).toBe(6);
    expect(bias[LABELS.indexOf('O')]).toBe(0);
    const name = 'bert.encoder.layer.0.attention.self.query.weight';
    expect(await tensor(out, name)).toEqual(await tensor(per, name));
    // The mean loads and tags as a model.
    const { NerModel } = await import('../lib/model/ner-model.js');
    const model = await NerModel.load(out);
    expect((await model.predict('서울에 갔다')).length).toBeGreaterThan(0);
    await model.dispose();
  });

  it('refuses models of different shapes, naming the tensor', async () => {
    const short = await makeModelDir(tmp, { tokenizerDir, name: 'short', maxPositions: 24 });
    const per = path.join(tmp, 'per');
    expect(() => average(path.join(tmp, 'bad'), per, short)).toThrow(
      /position_embeddings\.weight is \[24,32\], .*per has \[64,32\]/,
    );
    expect(() => average(path.join(tmp, 'one'), per)).toThrow(/usage: npx tsx/);
  });
});
