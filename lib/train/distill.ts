/**
 * Knowledge distillation, `koner train`'s `distill`: a teacher model's per-piece tag
 * distributions — its CRF marginals under the BIO constraints, what it believes of each piece
 * after weighing every path — become soft targets for the model being trained, on the training
 * sentences and on unlabelled text (raw paragraphs, read as sentences without tags). The student
 * learns the teacher's uncertainty, not only its best guess (Hinton et al., 2015); its own CRF
 * still learns the transitions from the gold tags, which unlabelled rows do not have.
 *
 * The teacher runs once, before training, over every example; the targets are a pure function of
 * the teacher and the data, so a resumed run recomputes the same ones.
 *
 * @packageDocumentation
 */
import path from 'node:path';

import type { Sentence } from '../corpus/types.js';
import type { LabelScheme } from '../labels/scheme.js';
import type { CrfParameters } from '../crf/index.js';
import { meanCrfParameters } from '../model/ensemble.js';
import { readNetworkConfig, WEIGHTS_FILE, type ModelConfig } from '../model/config.js';
import { bioConstraints } from '../model/ner-model.js';
import { native, type NativeInputs, type NativeModel } from '../native.js';
import { ValidationLeakGuard } from '../pretrain/leak-guard.js';
import { readParagraphs } from '../pretrain/text-stream.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { collateSyllables, pieceSyllables } from '../tokenizer/syllables.js';
import { padSequences } from './batching.js';
import { pathListField, type TeacherCombination } from './config.js';
import type { PreparedData } from './data.js';

/**
 * The first `count` paragraphs of `files` that share no text with the validation sentences, as
 * sentences without entities. Returns them and how many were dropped as leaks.
 */
export async function unlabelledSentences(
  files: readonly string[],
  count: number,
  validation: readonly Sentence[],
): Promise<{ sentences: Sentence[]; leaks: number }> {
  const guard = new ValidationLeakGuard(validation.map((s) => s.text));
  const sentences: Sentence[] = [];
  let leaks = 0;
  for await (const paragraph of readParagraphs(files)) {
    if (sentences.length >= count) break;
    if (guard.contains(paragraph.text)) leaks++;
    else sentences.push({ text: paragraph.text, entities: [] });
  }
  return { sentences, leaks };
}

/**
 * `extra` (prepared from unlabelled sentences) appended to `data`, its examples marked untagged
 * and their sentence indices shifted past `data`'s `sentences` (so that `[...sentences,
 * ...extraSentences]` indexes both).
 */
export function withUnlabelled(data: PreparedData, extra: PreparedData): PreparedData {
  const shifted = extra.examples.map((e) => ({
    ...e,
    sentence: e.sentence + data.sentences,
    tagged: false,
  }));
  const examples = [...data.examples, ...shifted];
  return {
    ...data,
    examples,
    lengths: Int32Array.from(examples, (e) => e.ids.length),
    sentences: data.sentences + extra.sentences,
    pieces: data.pieces + extra.pieces,
  };
}

/**
 * Sets `softTargets` ([length × K]) on every example of `data`, whose `sentences` are those
 * `data` was prepared from: the teacher's marginals, or with several teachers (an ensemble) their
 * combination (see {@link TeacherCombination}), a distribution again.
 *
 * @throws Error when a teacher's labels are not the scheme's, or its vocabulary is not the
 *   tokenizer's, naming that teacher.
 */
export async function addTeacherTargets(
  teacherDirs: readonly string[],
  data: PreparedData,
  sentences: readonly Sentence[],
  tokenizer: Tokenizer,
  scheme: LabelScheme,
  batchSize: number,
  combine: TeacherCombination = 'marginals',
): Promise<{ seconds: number }> {
  const started = performance.now();
  if (combine === 'emissions') {
    const ensemble = await ensembleEmissions(
      teacherDirs,
      data,
      sentences,
      tokenizer,
      scheme,
      batchSize,
    );
    const constraints = bioConstraints(scheme.labels);
    const K = scheme.labels.length;
    data.examples.forEach((example, i) => {
      const emissions = ensemble.emissions[i];
      const L = emissions.length / K;
      example.softTargets = native().crfMarginals(
        emissions,
        [1, L, K],
        Int32Array.of(L),
        ensemble.crf.transitions,
        ensemble.crf.start,
        ensemble.crf.end,
        constraints,
      );
    });
    return { seconds: (performance.now() - started) / 1000 };
  }
  const sums = data.examples.map(() => undefined as Float32Array | undefined);
  await forEachTeacher(teacherDirs, data, sentences, tokenizer, scheme, batchSize, {
    async batch(teacher, batch) {
      const decoded = await teacher.decode(
        batch.ids,
        [batch.indices.length, batch.T],
        batch.lengths,
        { constraints: batch.constraints, marginals: true },
        batch.inputs,
      );
      addRows(sums, decoded.marginals!, batch, scheme.labels.length);
    },
  });
  const scale = 1 / teacherDirs.length;
  data.examples.forEach((example, i) => {
    const sum = sums[i]!;
    if (scale !== 1) for (let j = 0; j < sum.length; j++) sum[j] *= scale;
    example.softTargets = sum;
  });
  return { seconds: (performance.now() - started) / 1000 };
}

/** An ensemble of CRF taggers as one: its mean emissions per example and mean CRF parameters. */
export interface EnsembleEmissions {
  /** Per example of the data, [length × K]: the mean of the teachers' emissions. */
  emissions: Float32Array[];
  /** The mean of the teachers' transitions, start and end scores. */
  crf: CrfParameters;
}

/**
 * Runs every teacher over `data`'s examples and averages their emissions and CRF parameters
 * (their linear-chain scores add up, so the mean is one CRF again: a product of experts).
 *
 * @throws Error naming the teacher when one has no CRF head, or labels or vocabulary differ.
 */
export async function ensembleEmissions(
  teacherDirs: readonly string[],
  data: PreparedData,
  sentences: readonly Sentence[],
  tokenizer: Tokenizer,
  scheme: LabelScheme,
  batchSize: number,
): Promise<EnsembleEmissions> {
  const K = scheme.labels.length;
  const sums = data.examples.map(() => undefined as Float32Array | undefined);
  await forEachTeacher(teacherDirs, data, sentences, tokenizer, scheme, batchSize, {
    async loaded(where, config) {
      // forEachTeacher has refused heads that cannot tag; a softmax head has no CRF to add up.
      if (config.head === 'softmax') {
        throw new Error(`${where} has a softmax head: combining emissions needs a CRF`);
      }
    },
    async batch(teacher, batch) {
      const emissions = await teacher.emissions(
        batch.ids,
        [batch.indices.length, batch.T],
        batch.lengths,
        batch.inputs,
      );
      addRows(sums, emissions, batch, K);
    },
  });
  const scale = 1 / teacherDirs.length;
  for (const values of sums) for (let j = 0; j < values!.length; j++) values![j] *= scale;
  return { emissions: sums as Float32Array[], crf: await meanCrfParameters(teacherDirs, K) };
}

/** One batch of a teacher's pass: the examples' indices, padded ids and what decoding needs. */
interface TeacherBatch {
  indices: number[];
  ids: Int32Array;
  lengths: Int32Array;
  T: number;
  inputs: NativeInputs | undefined;
  constraints: ReturnType<typeof bioConstraints>;
}

/** Adds each example's rows of a [B, T, K] result into `sums` (the first teacher's start them). */
function addRows(
  sums: (Float32Array | undefined)[],
  values: Float32Array,
  batch: TeacherBatch,
  K: number,
): void {
  batch.indices.forEach((index, b) => {
    const rows = values.subarray(b * batch.T * K, (b * batch.T + batch.lengths[b]) * K);
    const sum = sums[index];
    if (!sum) sums[index] = rows.slice();
    else for (let j = 0; j < rows.length; j++) sum[j] += rows[j];
  });
}

/**
 * Loads each teacher in turn (checked against the scheme and tokenizer), hands it to `visit`
 * once and then batch by batch over every example, and frees it before the next.
 */
async function forEachTeacher(
  teacherDirs: readonly string[],
  data: PreparedData,
  sentences: readonly Sentence[],
  tokenizer: Tokenizer,
  scheme: LabelScheme,
  batchSize: number,
  visit: {
    loaded?: (where: string, config: ModelConfig) => Promise<void>;
    batch: (teacher: NativeModel, batch: TeacherBatch) => Promise<void>;
  },
): Promise<void> {
  if (teacherDirs.length === 0) throw new Error('distill.teacher: names no model directory');
  for (let t = 0; t < teacherDirs.length; t++) {
    const teacherDir = teacherDirs[t];
    const field = pathListField('distill.teacher', teacherDirs, t);
    const where = `${field}: ${teacherDir}`;
    const config = await readNetworkConfig(teacherDir, field);
    if (config.head === 'none') {
      throw new Error(`${where} has no tagging head (a pretrained encoder cannot teach tags)`);
    }
    if (config.labels.join(' ') !== scheme.labels.join(' ')) {
      throw new Error(
        `${where} tags ${config.labels.length} labels (${config.labels.slice(0, 4).join(', ')}, …), ` +
          `not the corpus's ${scheme.labels.length} in the same order`,
      );
    }
    if (config.vocabSize !== tokenizer.vocabSize) {
      throw new Error(
        `${where} has vocab_size ${config.vocabSize}, the tokenizer ${tokenizer.vocabSize}: ` +
          'teacher and student must share the tokenizer',
      );
    }
    await visit.loaded?.(where, config);
    const teacher = new (native().Model)({ ...config, tokenizer: undefined });
    try {
      await teacher.loadWeights(path.join(teacherDir, WEIGHTS_FILE));
      await teacherBatches(teacher, config, data, sentences, tokenizer, batchSize, visit.batch);
    } finally {
      await teacher.dispose(); // the next teacher, then the student, need the memory
    }
  }
}

/** Every example of `data` through `teacher`, in batches of similar length. */
async function teacherBatches(
  teacher: NativeModel,
  config: ModelConfig,
  data: PreparedData,
  sentences: readonly Sentence[],
  tokenizer: Tokenizer,
  batchSize: number,
  visit: (teacher: NativeModel, batch: TeacherBatch) => Promise<void>,
): Promise<void> {
  const constraints = bioConstraints(config.labels);
  const offsetsOf = new Map<number, [number, number][]>();
  // Longest first, so the batches' padding stays small.
  const order = data.examples.map((_, i) => i).sort((a, b) => data.lengths[b] - data.lengths[a]);
  for (let first = 0; first < order.length; first += batchSize) {
    const indices = order.slice(first, first + batchSize);
    const batch = indices.map((i) => data.examples[i]);
    const {
      data: ids,
      lengths,
      cols: T,
    } = padSequences(
      batch.map((e) => e.ids),
      config.padTokenId,
    );
    let inputs: NativeInputs | undefined;
    if (config.syllableVocabSize) {
      const rows = batch.map((e) => {
        const sentence = sentences[e.sentence];
        let offsets = offsetsOf.get(e.sentence);
        if (!offsets) {
          offsets = tokenizer.encode(sentence.text).offsets;
          offsetsOf.set(e.sentence, offsets);
        }
        return pieceSyllables(sentence.text, offsets.slice(e.start, e.end));
      });
      const syllables = collateSyllables(rows, T);
      inputs = { syllables: syllables.ids, syllablesPerPiece: syllables.syllables };
    }
    await visit(teacher, { indices, ids, lengths, T, inputs, constraints });
  }
}
