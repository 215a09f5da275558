import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';

import { demo } from '../lib/cli/demo.js';
import { readKmouCorpus } from '../lib/corpus/index.js';
import { KMOU_SCHEME } from '../lib/labels/index.js';
import { readModelConfig } from '../lib/model/config.js';
import { bundledTokenizerFiles, defaultModelDir } from '../lib/model/default-model.js';
import { NerModel } from '../lib/model/ner-model.js';
import { resolveTokenizerFiles, TOKENIZER_FILE_NAMES } from '../lib/model/tokenizer-files.js';
import { packageRoot } from '../lib/native.js';
import { evaluateModel } from '../lib/train/evaluate.js';

const shared = path.resolve(packageRoot, '..', 'shared');
const haveShared = existsSync(path.join(shared, 'data'));
if (!haveShared) console.warn(`default-model tests skipped: ${shared}/data is absent`);

describe('the bundled default model', () => {
  it('is small enough to live in the repository (issue 10: at most 30 MB)', () => {
    const weights = path.join(defaultModelDir(), 'model.safetensors');
    expect(statSync(weights).size).toBeLessThanOrEqual(30 * 1000 * 1000);
  });

  it("is self-contained: config.json names its tokenizer, KoBERT's files as third_party lists them", async () => {
    const config = await readModelConfig(defaultModelDir());
    expect(config.tokenizer).toEqual(TOKENIZER_FILE_NAMES);
    expect(resolveTokenizerFiles(defaultModelDir(), config)).toEqual(bundledTokenizerFiles());
    const notice = readFileSync(
      path.join(packageRoot, 'third_party', 'kobert-tokenizer', 'README.md'),
      'utf8',
    );
    for (const file of Object.values(bundledTokenizerFiles())) {
      const sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
      expect(notice).toMatch(new RegExp(`\\| \`${path.basename(file)}\`.*\\| ${sha256} \\|`));
    }
  });

  it('has a model card with its data, recipe, scores, limits and licence', () => {
    const card = readFileSync(path.join(defaultModelDir(), 'README.md'), 'utf8');
    const recorded = JSON.parse(readFileSync(path.join(defaultModelDir(), 'eval.json'), 'utf8'));
    for (const heading of ['Training data', 'Recipe', 'Scores', 'Limits', 'Licence']) {
      expect(card).toContain(`\n## ${heading}\n`);
    }
    expect(card).toContain(`entity F1 ${(100 * recorded.entity.f1).toFixed(2)}`);
    expect(card).toContain(`token macro F1 ${(100 * recorded.tokenMacroF1).toFixed(2)}`);
    expect(card).toContain(`value: ${(100 * recorded.entity.f1).toFixed(2)}`);
    for (const [type, s] of Object.entries(
      recorded.perType as Record<string, { precision: number; recall: number; f1: number }>,
    )) {
      const row = [s.precision, s.recall, s.f1].map((v) => (100 * v).toFixed(2)).join(' \\| +');
      expect(card).toMatch(new RegExp(`\\| ${type} +\\| +${row} \\|`));
    }
    // Both stages of the recipe: the encoder's pretraining and the fine-tuning.
    expect(card).toContain('configs/pretrain-medium.json');
    expect(card).toContain('configs/pretrain-medium-continue.json');
    expect(card).toContain('configs/kmou-medium-pretrained.json');
    expect(card).toMatch(/non-commercial use only/);
    expect(card).toContain('Apache-2.0');
  });

  it.skipIf(!haveShared)('scores on the validation set what README and eval.json say', async () => {
    const model = await NerModel.loadDefault();
    const val = await readKmouCorpus(path.join(shared, 'data', 'kmou-ner', 'val'));
    const evaluation = await evaluateModel(model, val, KMOU_SCHEME);
    const recorded = JSON.parse(readFileSync(path.join(defaultModelDir(), 'eval.json'), 'utf8'));
    // The float16 copy decodes as the float32 checkpoint it came from, to the last digit shown.
    expect(evaluation.entity.f1).toBeCloseTo(recorded.entity.f1, 3);
    expect(evaluation.tokenMacroF1).toBeCloseTo(recorded.tokenMacroF1, 3);
    expect(evaluation.entity.f1).toBeGreaterThan(0.84);
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
