import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
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
import { native, packageRoot } from '../lib/native.js';
import { evaluateModel } from '../lib/train/evaluate.js';

const shared = path.resolve(packageRoot, '..', 'shared');
const haveShared = existsSync(path.join(shared, 'data'));
if (!haveShared) console.warn(`default-model tests skipped: ${shared}/data is absent`);

describe('the bundled default model', () => {
  it('is small enough to live in the repository (issue 10: at most 30 MB)', async () => {
    // An ensemble of four 6 × 384 members as int4 groups: the whole directory, tokenizer and
    // card included.
    const config = await readModelConfig(defaultModelDir());
    expect(config.ensemble).toEqual(['member-0', 'member-1', 'member-2', 'member-3']);
    const size = (dir: string): number =>
      readdirSync(dir, { withFileTypes: true })
        .map((e) =>
          e.isDirectory() ? size(path.join(dir, e.name)) : statSync(path.join(dir, e.name)).size,
        )
        .reduce((a, b) => a + b, 0);
    expect(size(defaultModelDir())).toBeLessThanOrEqual(30 * 1000 * 1000);
    // Each member's large matrices are int4 groups: packed bytes beside float16 scales.
    for (const member of config.ensemble!) {
      const bytes = readFileSync(path.join(defaultModelDir(), member, 'model.safetensors'));
      const header = JSON.parse(
        bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'),
      ) as Record<string, { dtype: string; shape: number[] }>;
      const query = 'bert.encoder.layer.0.attention.self.query.weight';
      expect(header[query]).toMatchObject({ dtype: 'U8', shape: [384, 192] });
      expect(header[`${query}_scale`]).toMatchObject({ dtype: 'F16', shape: [384, 3] });
    }
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
    // Every stage of the recipe: the encoder's pretraining, the fine-tunes, the distillation,
    // the ensemble.
    for (const step of [
      'configs/pretrain-medium.json',
      'configs/pretrain-medium-continue.json',
      'configs/kmou-medium-pretrained.json',
      'configs/ablation-medium-seed-101.json',
      'configs/ablation-medium-seed-102.json',
      'configs/ablation-medium-layer-decay.json',
      'configs/kmou-medium-ensemble-distilled.json',
      'scripts/ensemble-model.ts',
    ]) {
      expect(card).toContain(step);
    }
    expect(card).toMatch(/non-commercial use only/);
    expect(card).toContain('Apache-2.0');
  });

  it.skipIf(!haveShared)('scores on the validation set what README and eval.json say', async () => {
    const model = await NerModel.loadDefault();
    const val = await readKmouCorpus(path.join(shared, 'data', 'kmou-ner', 'val'));
    const evaluation = await evaluateModel(model, val, KMOU_SCHEME);
    const recorded = JSON.parse(readFileSync(path.join(defaultModelDir(), 'eval.json'), 'utf8'));
    // eval.json is `koner eval --json` of this very directory.
    expect(evaluation.entity.f1).toBeCloseTo(recorded.entity.f1, 3);
    expect(evaluation.tokenMacroF1).toBeCloseTo(recorded.tokenMacroF1, 3);
    // Issue 10's targets: entity F1 86.0, token macro F1 87.56.
    expect(evaluation.entity.f1).toBeGreaterThanOrEqual(0.86);
    expect(evaluation.tokenMacroF1).toBeGreaterThanOrEqual(0.8756);
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
    // The precision it tags in: bfloat16 (its inference_dtype) where the CPU has it.
    const cpu = native().cpuFeatures();
    const dtype = cpu.avx512Bf16 || cpu.amxBf16 ? 'bfloat16' : 'float32';
    expect(text).toMatch(new RegExp(`model: .*kmou-small \\(${dtype}, loaded in \\d+ ms\\)`));
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
