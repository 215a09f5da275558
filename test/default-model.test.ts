import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';

import { demo } from '../lib/cli/demo.js';
import { readKmouCorpus } from '../lib/corpus/index.js';
import { KMOU_SCHEME } from '../lib/labels/index.js';
import { defaultModelDir } from '../lib/model/default-model.js';
import { NerModel } from '../lib/model/ner-model.js';
import { packageRoot } from '../lib/native.js';
import { evaluateModel } from '../lib/train/evaluate.js';

const shared = path.resolve(packageRoot, '..', 'shared');
const haveShared = existsSync(path.join(shared, 'data'));
if (!haveShared) console.warn(`default-model tests skipped: ${shared}/data is absent`);

describe('the bundled default model', () => {
  it('is small enough to live in the repository', () => {
    const weights = path.join(defaultModelDir(), 'model.safetensors');
    expect(statSync(weights).size).toBeLessThanOrEqual(20 * 1024 * 1024);
  });

  it.skipIf(!haveShared)('scores on the validation set what README and eval.json say', async () => {
    const model = await NerModel.loadDefault();
    const val = await readKmouCorpus(path.join(shared, 'data', 'kmou-ner', 'val'));
    const evaluation = await evaluateModel(model, val, KMOU_SCHEME);
    const recorded = JSON.parse(readFileSync(path.join(defaultModelDir(), 'eval.json'), 'utf8'));
    // The float16 copy decodes as the float32 checkpoint it came from, to the last digit shown.
    expect(evaluation.entity.f1).toBeCloseTo(recorded.entity.f1, 3);
    expect(evaluation.tokenMacroF1).toBeCloseTo(recorded.tokenMacroF1, 3);
    expect(evaluation.entity.f1).toBeGreaterThan(0.78);
    const readme = readFileSync(path.join(packageRoot, 'README.md'), 'utf8');
    expect(readme).toContain(`entity F1 ${(100 * recorded.entity.f1).toFixed(2)}`);
    expect(readme).toContain(`token macro F1 ${(100 * recorded.tokenMacroF1).toFixed(2)}`);
    model.dispose();
  });

  it.skipIf(!haveShared)('runs the demo: markup and JSON entities for each sentence', async () => {
    let text = '';
    const out = new Writable({
      write(chunk, _encoding, done) {
        text += String(chunk);
        done();
      },
    });
    expect(await demo(out)).toBe(0);
    expect(text).toMatch(/koner on LibTorch \d+\.\d+/);
    const markup = text.split('\n').filter((l) => /<[^<>]+:(PER|LOC|ORG|DAT|MNY|NOH)>/.test(l));
    expect(markup.length).toBeGreaterThanOrEqual(4);
    const entities = text
      .split('\n')
      .filter((l) => l.startsWith('  {'))
      .map((l) => JSON.parse(l) as { text: string; start: number; end: number; score: number });
    expect(entities.length).toBeGreaterThanOrEqual(8);
    for (const e of entities) {
      expect(e.end - e.start).toBe(e.text.length);
      expect(e.score).toBeGreaterThan(0);
      expect(e.score).toBeLessThanOrEqual(1);
    }
  });
});
