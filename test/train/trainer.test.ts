import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { readKmouCorpus } from '../../lib/corpus/index.js';
import type { Sentence } from '../../lib/corpus/types.js';
import { marginals as crfMarginals } from '../../lib/crf/index.js';
import { decodeEntities } from '../../lib/labels/decode.js';
import { KMOU_SCHEME } from '../../lib/labels/scheme.js';
import { bioConstraints, NerModel } from '../../lib/model/ner-model.js';
import { native, packageRoot } from '../../lib/native.js';
import { Tokenizer } from '../../lib/tokenizer/index.js';
import { runCommand } from '../../lib/cli/args.js';
import { trainCommand } from '../../lib/cli/train.js';
import { readTrainerState } from '../../lib/train/checkpoint-files.js';
import { parseTrainConfig, type TrainConfig } from '../../lib/train/config.js';
import { prepareExamples, splitWindows } from '../../lib/train/data.js';
import { addTeacherTargets } from '../../lib/train/distill.js';
import { createModel, runModelConfig } from '../../lib/train/model-setup.js';
import { scorePredictions } from '../../lib/train/evaluate.js';
import { readMetrics } from '../../lib/train/metrics-log.js';
import { train, type TrainOptions } from '../../lib/train/trainer.js';

const SHARED = path.resolve(packageRoot, '..', 'shared', 'data');
const KMOU = path.join(SHARED, 'kmou-ner');
const TOKENIZER = {
  model: path.join(SHARED, 'kobert-tokenizer', 'tokenizer_78b3253a26.model'),
  vocab: path.join(SHARED, 'kobert-tokenizer', 'kobertvocab_f38b8a4d6d.json'),
};
const CONFIGS = path.join(packageRoot, 'configs');
// configs/tiny-ci.json reads its corpus from here; the test writes it from real KMOU sentences.
const TINY = path.join(packageRoot, 'test', 'fixtures', 'generated', 'train-tiny');

let tokenizer: Tokenizer;
let valSentences: Sentence[];
let tmp: string;

/** The first `count` sentence blocks (id, raw and markup lines) of a KMOU directory, as KMOU text. */
function kmouSample(dir: string, count: number): string {
  const blocks: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    for (const block of readFileSync(path.join(dir, name), 'utf8').split(/\r?\n\s*\r?\n/)) {
      if (blocks.length < count && block.startsWith('## ')) {
        blocks.push(block.split(/\r?\n/).slice(0, 3).join('\n'));
      }
    }
    if (blocks.length >= count) break;
  }
  return blocks.join('\n\n') + '\n';
}

beforeAll(async () => {
  tokenizer = await Tokenizer.load(TOKENIZER.model, { vocab: TOKENIZER.vocab });
  valSentences = await readKmouCorpus(path.join(KMOU, 'val'));
  mkdirSync(TINY, { recursive: true });
  writeFileSync(path.join(TINY, 'train.txt'), kmouSample(path.join(KMOU, 'train'), 40));
  writeFileSync(path.join(TINY, 'val.txt'), kmouSample(path.join(KMOU, 'val'), 12));
  tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-train-loop-'));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('training data', () => {
  it('wraps pieces in [CLS]/[SEP] with O, and the labels decode back to the gold entities', () => {
    const sentences = valSentences.slice(0, 300);
    const data = prepareExamples(sentences, tokenizer, { scheme: KMOU_SCHEME, maxLength: 4096 });
    expect(data.examples).toHaveLength(sentences.length);
    let gold = 0;
    let recovered = 0;
    for (const example of data.examples) {
      const n = example.ids.length;
      expect(example.ids[0]).toBe(tokenizer.specialIds.cls);
      expect(example.ids[n - 1]).toBe(tokenizer.specialIds.sep);
      expect(example.labels[0]).toBe(KMOU_SCHEME.label2id.O);
      expect(example.labels[n - 1]).toBe(KMOU_SCHEME.label2id.O);
      const sentence = sentences[example.sentence];
      const encoding = tokenizer.encode(sentence.text);
      expect(Array.from(example.ids.subarray(1, n - 1))).toEqual(Array.from(encoding.ids));
      const tags = Array.from(example.labels.subarray(1, n - 1), (id) => KMOU_SCHEME.labels[id]);
      const decoded = decodeEntities(sentence.text, encoding.offsets, tags);
      const key = (e: { start: number; end: number }, label: string) =>
        `${e.start}:${e.end}:${label}`;
      const found = new Set(decoded.map((e) => key(e, e.entity)));
      gold += sentence.entities.length;
      recovered += sentence.entities.filter((e) => found.has(key(e, e.label))).length;
      // Decoding never invents an entity: every decoded entity overlaps a gold one of its type.
      for (const d of decoded) {
        expect(
          sentence.entities.some((e) => e.label === d.entity && e.start < d.end && d.start < e.end),
        ).toBe(true);
      }
    }
    // Pieces that straddle an entity boundary (≈10% in KMOU) are mostly repaired by refinement.
    expect(recovered / gold).toBeGreaterThan(0.97);
    expect(data.alignment.entities).toBe(gold);
  });

  it('splits long sentences into windows that cover them exactly, never starting with I-', () => {
    const maxLength = 24;
    const sentences = valSentences.slice(0, 200);
    const data = prepareExamples(sentences, tokenizer, { scheme: KMOU_SCHEME, maxLength });
    expect(data.windowedSentences).toBeGreaterThan(50);
    const whole = prepareExamples(sentences, tokenizer, { scheme: KMOU_SCHEME, maxLength: 4096 });
    sentences.forEach((_, s) => {
      const parts = data.examples.filter((e) => e.sentence === s);
      const full = whole.examples.find((e) => e.sentence === s)!;
      let at = 0;
      const ids: number[] = [];
      for (const p of parts) {
        expect(p.ids.length).toBeLessThanOrEqual(maxLength);
        expect(p.start).toBe(at);
        at = p.end;
        ids.push(...p.ids.subarray(1, p.ids.length - 1));
        expect(KMOU_SCHEME.labels[p.labels[1]].startsWith('I-')).toBe(false);
        // Inside a window the labels are the sentence's own.
        for (let k = 2; k < p.labels.length - 1; k++) {
          expect(p.labels[k]).toBe(full.labels[p.start + k]);
        }
      }
      expect(at).toBe(full.ids.length - 2);
      expect(ids).toEqual(Array.from(full.ids.subarray(1, full.ids.length - 1)));
    });
    expect(data.lengths).toEqual(Int32Array.from(data.examples, (e) => e.ids.length));
  });

  it('prefers cuts at word starts outside entities', () => {
    const labels = ['O', 'O', 'B-PER', 'I-PER', 'I-PER', 'O', 'O', 'O'];
    const pieces = ['▁a', 'b', '▁c', 'd', 'e', '▁f', 'g', 'h'];
    expect(splitWindows(labels, pieces, 4)).toEqual([
      { start: 0, end: 2 },
      { start: 2, end: 5 },
      { start: 5, end: 8 },
    ]);
    // No clean cut within half a window: a hard cut, inside the entity.
    expect(splitWindows(['B-PER', 'I-PER', 'I-PER', 'I-PER'], ['a', 'b', 'c', 'd'], 2)).toEqual([
      { start: 0, end: 2 },
      { start: 2, end: 4 },
    ]);
  });
});

describe('evaluation scoring', () => {
  const sentences = () => valSentences.slice(0, 50);
  const goldTags = (s: Sentence) => {
    const enc = tokenizer.encode(s.text);
    const data = prepareExamples([s], tokenizer, { scheme: KMOU_SCHEME, maxLength: 4096 });
    const labels = data.examples[0].labels;
    return {
      offsets: enc.offsets,
      tags: Array.from(labels.subarray(1, labels.length - 1), (id) => KMOU_SCHEME.labels[id]),
    };
  };

  it('scores a perfect prediction 1 everywhere', () => {
    const gold = sentences();
    const predictions = gold.map((s) => ({
      ...goldTags(s),
      entities: s.entities.map((e) => ({ start: e.start, end: e.end, entity: e.label })),
    }));
    const e = scorePredictions(gold, predictions, KMOU_SCHEME);
    expect(e.tokenMacroF1).toBe(1);
    expect(e.entity).toMatchObject({ precision: 1, recall: 1, f1: 1 });
    expect(e.entity.support).toBe(gold.reduce((n, s) => n + s.entities.length, 0));
    expect(Object.keys(e.perType)).toEqual([...KMOU_SCHEME.types]);
    expect(e.confusion.labels).toEqual([...KMOU_SCHEME.labels]);
    const offDiagonal = e.confusion.counts.flatMap((row, i) => row.filter((_, j) => j !== i));
    expect(offDiagonal.every((c) => c === 0)).toBe(true);
    expect(e.pieces).toBe(e.confusion.counts.flat().reduce((a, b) => a + b, 0));
  });

  it('scores an empty prediction 0, with the gold support intact', () => {
    const gold = sentences();
    const predictions = gold.map((s) => {
      const { offsets, tags } = goldTags(s);
      return { offsets, tags: tags.map(() => 'O'), entities: [] };
    });
    const e = scorePredictions(gold, predictions, KMOU_SCHEME);
    expect(e.tokenMacroF1).toBe(0);
    expect(e.entity).toMatchObject({ precision: 0, recall: 0, f1: 0 });
    expect(e.perType.PER.support).toBe(
      gold.reduce((n, s) => n + s.entities.filter((x) => x.label === 'PER').length, 0),
    );
    const o = KMOU_SCHEME.label2id.O;
    expect(e.confusion.counts.every((row) => row.every((c, j) => j === o || c === 0))).toBe(true);
  });

  it('rejects predictions that do not match the gold sentences', () => {
    expect(() => scorePredictions(sentences(), [], KMOU_SCHEME)).toThrow(/50 gold sentences/);
  });
});

// Everything below trains, which needs the native Trainer.
const hasTrainer = typeof (native() as { Trainer?: unknown }).Trainer === 'function';
const quiet = { write: () => true, isTTY: false };

/** configs/tiny-ci.json with changes, validated, writing into `output`. */
function tinyConfig(output: string, changes: Record<string, unknown> = {}): TrainConfig {
  const file = path.join(CONFIGS, 'tiny-ci.json');
  const raw = { ...JSON.parse(readFileSync(file, 'utf8')), ...changes, output };
  return parseTrainConfig(raw, file);
}

function tinyConfigFile(name: string, changes: Record<string, unknown> = {}): string {
  const raw = JSON.parse(readFileSync(path.join(CONFIGS, 'tiny-ci.json'), 'utf8'));
  const resolved = {
    ...raw,
    corpus: {
      format: 'kmou',
      train: path.join(TINY, 'train.txt'),
      validation: path.join(TINY, 'val.txt'),
    },
    ...changes,
  };
  const file = path.join(tmp, `${name}.json`);
  writeFileSync(file, JSON.stringify(resolved));
  return file;
}

function run(options: Omit<TrainOptions, 'progress' | 'out'>) {
  return train({ ...options, progress: quiet, out: () => undefined, metricsSync: false });
}

/** The float32 tensors of a model directory's (or a file's) weights, by name. */
async function weights(dirOrFile: string): Promise<Map<string, Float32Array>> {
  const file = dirOrFile.endsWith('.safetensors')
    ? dirOrFile
    : path.join(dirOrFile, 'model.safetensors');
  const tensors = await native().readTensors(file, null, true);
  return new Map(
    Object.entries(tensors).map(([name, t]) => [
      name,
      new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.length)),
    ]),
  );
}

function maxDifference(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  let max = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i] - y[i]));
  }
  return max;
}

const CLI = path.join(packageRoot, 'lib', 'cli', 'main.ts');

function spawnCli(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: packageRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, output: () => output };
}

const CHECKPOINT_FILES = [
  'config.json',
  'model.safetensors',
  'tokenizer.model',
  'vocab.json',
  'optimizer.safetensors',
  'trainer-state.json',
  'train.json',
];

describe.skipIf(!hasTrainer)('koner train', () => {
  it('trains the tiny CI config end to end into a model NerModel.load uses', async () => {
    const output = path.join(tmp, 'ci');
    const result = await run({ config: tinyConfig(output) });
    expect(result.reason).toBe('completed');
    expect(result.step).toBe(result.totalSteps);
    expect(result.evaluations).toHaveLength(1);
    for (const kind of ['best', 'last']) {
      const files = readdirSync(path.join(output, kind));
      expect(files).toEqual(expect.arrayContaining([...CHECKPOINT_FILES, 'eval.json']));
    }
    expect(readdirSync(output).sort()).toEqual(
      ['best', 'confusion.svg', 'curves.svg', 'last', 'metrics.jsonl'].sort(),
    );
    for (const svg of ['curves.svg', 'confusion.svg']) {
      expect(readFileSync(path.join(output, svg), 'utf8')).toMatch(/<svg[\s\S]*<\/svg>\s*$/);
    }
    const { events, skipped } = await readMetrics(output);
    expect(skipped).toEqual([]);
    expect(new Set(events.map((e) => e.type))).toEqual(
      new Set(['start', 'train', 'eval', 'checkpoint', 'end']),
    );
    const state = await readTrainerState(path.join(output, 'last'));
    expect(state.step).toBe(result.totalSteps);
    expect(state.rng.native).toEqual(expect.any(String));

    const model = await NerModel.load(path.join(output, 'best'));
    expect(model.labels).toEqual([...KMOU_SCHEME.labels]);
    const text = '오에 겐자부로는 일본 현대문학의 초석을 놓은 작가이다.';
    const entities = await model.predict(text);
    expect(Array.isArray(entities)).toBe(true);
    for (const e of entities) expect(text.slice(e.start, e.end)).toBe(e.text);
    const [a, b] = await model.predict([text, '서울에서 만났다.']);
    // Batched with another text the scores move in the last float bits (padding), nothing else.
    const spans = (list: typeof entities) => list.map(({ score: _score, ...span }) => span);
    expect(spans(a)).toEqual(spans(entities));
    a.forEach((e, i) => expect(e.score).toBeCloseTo(entities[i].score, 5));
    expect(Array.isArray(b)).toBe(true);
  });

  it('starts from a model directory: all of it when its head fits, else its encoder and a fresh head', async () => {
    const init = path.join(tmp, 'ci', 'best');
    const source = await weights(init);
    for (const head of ['crf', 'softmax'] as const) {
      const config = tinyConfig(path.join(tmp, `from-${head}`), { model: { init, head } });
      const modelConfig = await runModelConfig(config, KMOU_SCHEME, tokenizer);
      expect(modelConfig).toMatchObject({ hiddenSize: 32, numHiddenLayers: 2, head });
      const created = await createModel(config, modelConfig, 1);
      expect(created.init).toBe(head === 'crf' ? 'model' : 'encoder');
      if (head === 'softmax') expect(created.note).toMatch(/encoder only/);
      const file = path.join(tmp, `from-${head}.safetensors`);
      await created.model.saveWeights(file);
      const loaded = await weights(file);
      for (const [name, values] of loaded) {
        const same =
          source.has(name) &&
          maxDifference(new Map([[name, source.get(name)!]]), new Map([[name, values]])) === 0;
        // The encoder always comes from the directory; the head only when it fits.
        expect(same, name).toBe(name.startsWith('bert.') || head === 'crf');
      }
    }
  });

  it('resumes to the same weights as an uninterrupted run (dropout on), and refuses another data order', async () => {
    const changes = { maxSteps: 12, evalEvery: 4, epochs: 5 };
    const whole = path.join(tmp, 'whole');
    const split = path.join(tmp, 'split');
    const uninterrupted = await run({ config: tinyConfig(whole, changes) });
    expect(uninterrupted.step).toBe(12);
    expect(tinyConfig(whole, changes).model.dropout).toBeGreaterThan(0);

    const first = await run({ config: tinyConfig(split, changes), stopAfter: 6 });
    expect(first).toMatchObject({ reason: 'stopped', step: 6 });
    expect(existsSync(path.join(split, 'curves.svg'))).toBe(false);
    await expect(
      run({ config: tinyConfig(split, { ...changes, batchSize: 4 }), resume: true }),
    ).rejects.toThrow(/data order differs/);
    const second = await run({ config: tinyConfig(split, changes), resume: true });
    expect(second).toMatchObject({ reason: 'max-steps', step: 12 });

    const difference = maxDifference(
      await weights(path.join(whole, 'last')),
      await weights(path.join(split, 'last')),
    );
    expect(difference).toBeLessThanOrEqual(1e-6);
    const [a, b] = await Promise.all([
      readTrainerState(path.join(whole, 'last')),
      readTrainerState(path.join(split, 'last')),
    ]);
    expect({ ...b, elapsedSeconds: 0 }).toEqual({ ...a, elapsedSeconds: 0 });
    // The log reads as one run: the resumed start replaces nothing (it resumed at a checkpoint).
    const { events } = await readMetrics(split);
    expect(events.filter((e) => e.type === 'eval').map((e) => e.step)).toEqual([4, 8, 12]);
  });

  it('trains with the auxiliary POS head and the syllable channel; the model tags with syllables', async () => {
    const output = path.join(tmp, 'pos-syllables');
    // The tiny corpus keeps only 3 lines per block: give it the morpheme lines too.
    const train = path.join(tmp, 'train-morphemes.txt');
    const blocks = readFileSync(path.join(KMOU, 'train', 'EXOBRAIN_NE_CORPUS_001.txt'), 'utf8')
      .split(/\r?\n\s*\r?\n/)
      .filter((b) => b.startsWith('## '))
      .slice(0, 40);
    writeFileSync(train, blocks.join('\n\n') + '\n');
    const config = tinyConfig(output, {
      corpus: { format: 'kmou', train, validation: path.join(TINY, 'val.txt') },
      model: {
        ...JSON.parse(readFileSync(path.join(CONFIGS, 'tiny-ci.json'), 'utf8')).model,
        posWeight: 0.5,
        syllables: true,
      },
    });
    const result = await run({ config });
    expect(result.reason).toBe('completed');
    const { events } = await readMetrics(output);
    expect(events.some((e) => e.type === 'train' && Number.isFinite(e.loss))).toBe(true);
    const dir = path.join(output, 'last');
    const saved = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(saved.pos_labels).toContain('NNP');
    expect(saved.syllable_vocab_size).toBeGreaterThan(11172);
    const names = (await weights(dir)).keys();
    expect([...names]).toEqual(
      expect.arrayContaining([
        'pos_classifier.weight',
        'bert.embeddings.syllable_embeddings.weight',
      ]),
    );
    const model = await NerModel.load(dir);
    const text = '오에 겐자부로는 일본 현대문학의 초석을 놓은 작가이다.';
    const entities = await model.predict([text, text.repeat(12)], { windowOverlap: 8 });
    for (const e of entities.flat())
      expect(e.text).toBe((e.start < text.length ? text : text.repeat(12)).slice(e.start, e.end));
    await expect(model.logits([[2, 3]])).rejects.toThrow(/syllable channel/);
    // A POS head needs gold morphemes: a CoNLL corpus is refused, naming the field.
    expect(() =>
      tinyConfig(output, {
        corpus: { format: 'conll', train, validation: train },
        model: { init: 'scratch', posWeight: 1 },
      }),
    ).toThrow(/model\.posWeight" needs the gold morphemes of a KMOU corpus/);
  });

  it('distils a teacher into a student over the corpus and unlabelled text', async () => {
    const teacher = path.join(tmp, 'ci', 'best');
    const text = path.join(tmp, 'unlabelled.txt.gz');
    const lines = execFileSync('bash', [
      '-c',
      `zcat ${path.join(SHARED, 'kowiki-text', 'kowiki-part-00.txt.gz')} | head -n 30`,
    ]).toString();
    writeFileSync(text, gzipSync(lines));
    const output = path.join(tmp, 'distilled');
    const config = tinyConfig(output, {
      distill: { teacher, weight: 0.5, temperature: 2, text: [text], paragraphs: 20 },
    });
    const result = await run({ config });
    expect(result.reason).toBe('completed');
    const { events } = await readMetrics(output);
    const trainEvents = events.filter((e) => e.type === 'train');
    expect(trainEvents.length).toBeGreaterThan(0);
    for (const e of trainEvents) {
      expect(e.type === 'train' && e.distillLoss! > 0 && e.taggingLoss! > 0).toBe(true);
    }
    const start = events.find((e) => e.type === 'start');
    expect(start?.totalSteps).toBeGreaterThan(5); // 40 sentences plus the paragraphs' windows
    // A teacher of other labels is refused, naming it.
    const other = path.join(tmp, 'other-teacher');
    mkdirSync(other, { recursive: true });
    const teacherConfig = JSON.parse(readFileSync(path.join(teacher, 'config.json'), 'utf8'));
    teacherConfig.id2label = { 0: 'O', 1: 'B-X', 2: 'I-X' };
    delete teacherConfig.label2id;
    writeFileSync(path.join(other, 'config.json'), JSON.stringify(teacherConfig));
    await expect(
      run({ config: tinyConfig(path.join(tmp, 'bad-teacher'), { distill: { teacher: other } }) }),
    ).rejects.toThrow(
      /distill\.teacher: .*other-teacher tags 3 labels \(O, B-X, I-X, …\), not the corpus's 21/,
    );

    // An ensemble teaches the mean of its members' distributions; a bad member is named by index.
    const student = path.join(output, 'best');
    const sentences = valSentences.slice(0, 20);
    const taught = async (teachers: string[], combine?: 'marginals' | 'emissions') => {
      const data = prepareExamples(sentences, tokenizer, { scheme: KMOU_SCHEME, maxLength: 64 });
      await addTeacherTargets(teachers, data, sentences, tokenizer, KMOU_SCHEME, 8, combine);
      return data.examples;
    };
    const targets = async (teachers: string[]) =>
      (await taught(teachers)).map((e) => e.softTargets!);
    const [a, b, both] = [
      await targets([teacher]),
      await targets([student]),
      await targets([teacher, student]),
    ];
    let apart = 0;
    both.forEach((rows, i) => {
      expect(rows.length).toBe(a[i].length);
      for (let j = 0; j < rows.length; j++) {
        apart = Math.max(apart, Math.abs(a[i][j] - b[i][j]));
        expect(rows[j]).toBeCloseTo((a[i][j] + b[i][j]) / 2, 6);
      }
      const K = KMOU_SCHEME.labels.length;
      for (let p = 0; p < rows.length / K; p++) {
        const sum = rows.subarray(p * K, (p + 1) * K).reduce((x, y) => x + y, 0);
        expect(sum).toBeCloseTo(1, 5);
      }
    });
    expect(apart).toBeGreaterThan(0.01); // two different teachers, so the mean is not either one
    await expect(targets([teacher, other])).rejects.toThrow(
      /^distill\.teacher\[1\]: .*other-teacher tags 3 labels/,
    );

    // Combining emissions: one CRF over the members' mean emissions and mean CRF parameters.
    const K = KMOU_SCHEME.labels.length;
    const joint = await taught([teacher, student], 'emissions');
    const members = await Promise.all([teacher, student].map((dir) => NerModel.load(dir)));
    const params = await Promise.all(
      [teacher, student].map((dir) =>
        native().readTensors(
          path.join(dir, 'model.safetensors'),
          ['crf.transitions', 'crf.start_transitions', 'crf.end_transitions'],
          true,
        ),
      ),
    );
    const mean = (name: string) => {
      const [a, b] = params.map((p) => new Float32Array(p[name].data.slice().buffer));
      return a.map((x, j) => (x + b[j]) / 2);
    };
    for (const example of joint) {
      const [ea, eb] = await Promise.all(members.map((m) => m.logits([Array.from(example.ids)])));
      const L = example.ids.length;
      const expected = crfMarginals({
        emissions: ea[0].map((x, j) => (x + eb[0][j]) / 2),
        shape: [1, L, K],
        transitions: mean('crf.transitions'),
        start: mean('crf.start_transitions'),
        end: mean('crf.end_transitions'),
        constraints: bioConstraints(KMOU_SCHEME.labels),
      })[0].flat();
      const got = example.softTargets!;
      expect(got.length).toBe(L * K);
      for (let j = 0; j < got.length; j++) {
        expect(got[j]).toBeCloseTo(expected[j], 5);
      }
    }
    // A member combined with itself is that member: its own CRF marginals.
    (await taught([teacher, teacher], 'emissions')).forEach((example, i) => {
      for (let j = 0; j < a[i].length; j++) expect(example.softTargets![j]).toBeCloseTo(a[i][j], 5);
    });
    await Promise.all(members.map((m) => m.dispose()));
    // A softmax head has no CRF to combine, and is named.
    const softmax = path.join(tmp, 'softmax-teacher');
    mkdirSync(softmax, { recursive: true });
    writeFileSync(
      path.join(softmax, 'config.json'),
      JSON.stringify({
        ...JSON.parse(readFileSync(path.join(teacher, 'config.json'), 'utf8')),
        head: 'softmax',
      }),
    );
    await expect(taught([teacher, softmax], 'emissions')).rejects.toThrow(
      /^distill\.teacher\[1\]: .*softmax-teacher has a softmax head: combining emissions needs a CRF/,
    );
  });

  it('refuses to start over an existing run without --resume', async () => {
    const output = path.join(tmp, 'whole');
    await expect(run({ config: tinyConfig(output, { maxSteps: 12 }) })).rejects.toThrow(
      /already holds a training run/,
    );
    await expect(run({ config: tinyConfig(path.join(tmp, 'none')), resume: true })).rejects.toThrow(
      /no checkpoint to resume from/,
    );
  });

  it('resumes a run killed with SIGKILL into a valid final checkpoint', async () => {
    const output = path.join(tmp, 'killed');
    const config = tinyConfigFile('killed', { maxSteps: 400, evalEvery: 10, epochs: 100 });
    const cli = spawnCli(['train', '--config', config, '--output', output]);
    const state = path.join(output, 'last', 'trainer-state.json');
    const deadline = Date.now() + 60_000;
    while (!existsSync(state) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    cli.child.kill('SIGKILL');
    const exit = await cli.exited;
    expect(exit.signal, cli.output()).toBe('SIGKILL');
    const killedAt = (await readTrainerState(path.join(output, 'last'))).step;
    expect(killedAt).toBeGreaterThan(0);
    expect(killedAt).toBeLessThan(400);

    const parsed = parseTrainConfig(JSON.parse(readFileSync(config, 'utf8')), config);
    const result = await run({ config: { ...parsed, output }, resume: true });
    expect(result).toMatchObject({ reason: 'max-steps', step: 400 });
    const final = await readTrainerState(path.join(output, 'last'));
    expect(final.step).toBe(400);
    expect(readdirSync(output).filter((n) => n.includes('.tmp-') || n.endsWith('.old'))).toEqual(
      [],
    );
    const model = await NerModel.load(path.join(output, 'last'));
    expect(Array.isArray(await model.predict('부산에서 열린 회의'))).toBe(true);
    const { events } = await readMetrics(output);
    expect(events.filter((e) => e.type === 'start').map((e) => e.step)).toEqual([0, killedAt]);
  });

  it('fails on a bad config before writing anything, naming the field', async () => {
    const output = path.join(tmp, 'bad');
    const config = tinyConfigFile('bad', { optimizer: { lr: -1 }, batchSize: 0 });
    const errors: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((m: unknown) => {
      errors.push(String(m));
    });
    try {
      expect(await runCommand(trainCommand, ['--config', config, '--output', output])).toBe(2);
      expect(await runCommand(trainCommand, ['--config', config, '--max-steps', 'x'])).toBe(2);
    } finally {
      spy.mockRestore();
    }
    expect(errors[0]).toMatch(/field "optimizer\.lr" must be a positive number/);
    expect(errors[0]).toMatch(/field "batchSize"/);
    expect(errors[1]).toMatch(/--max-steps expects an integer ≥ 1, got 'x'[^]*usage: koner train/);
    expect(existsSync(output)).toBe(false);
  });

  it('trains data parallel with --nproc 2, rank 0 saving', async () => {
    const output = path.join(tmp, 'dp');
    const config = tinyConfigFile('dp', { maxSteps: 4, epochs: 4 });
    const cli = spawnCli(['train', '--config', config, '--output', output, '--nproc', '2']);
    const exit = await cli.exited;
    expect(exit.code, cli.output()).toBe(0);
    expect(cli.output()).toMatch(/\[rank 0\]/);
    const state = await readTrainerState(path.join(output, 'last'));
    expect(state.step).toBe(4);
    const ranks = JSON.parse(await readFile(path.join(output, 'last', 'rng-ranks.json'), 'utf8'));
    expect(ranks.worldSize).toBe(2);
    expect(ranks.states[0]).toBe(state.rng.native);
    expect(existsSync(path.join(output, 'curves.svg'))).toBe(true);
    const model = await NerModel.load(path.join(output, 'best'));
    expect(Array.isArray(await model.predict('서울'))).toBe(true);
  });
});
