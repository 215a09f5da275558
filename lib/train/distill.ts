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
import { readModelConfig, WEIGHTS_FILE } from '../model/config.js';
import { bioConstraints } from '../model/ner-model.js';
import { native, type NativeInputs } from '../native.js';
import { ValidationLeakGuard } from '../pretrain/leak-guard.js';
import { readParagraphs } from '../pretrain/text-stream.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { collateSyllables, pieceSyllables } from '../tokenizer/syllables.js';
import { padSequences } from './batching.js';
import { pathListField } from './config.js';
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
 * mean, a distribution again, which averages away where single models disagree.
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
): Promise<{ seconds: number }> {
  const started = performance.now();
  if (teacherDirs.length === 0) throw new Error('distill.teacher: names no model directory');
  const sums = data.examples.map(() => undefined as Float32Array | undefined);
  for (let t = 0; t < teacherDirs.length; t++) {
    const field = pathListField('distill.teacher', teacherDirs, t);
    await addMarginals(field, teacherDirs[t], data, sentences, tokenizer, scheme, batchSize, sums);
  }
  const scale = 1 / teacherDirs.length;
  data.examples.forEach((example, i) => {
    const sum = sums[i]!;
    if (scale !== 1) for (let j = 0; j < sum.length; j++) sum[j] *= scale;
    example.softTargets = sum;
  });
  return { seconds: (performance.now() - started) / 1000 };
}

/** Adds one teacher's marginals ([length × K] per example) into `sums`. */
async function addMarginals(
  field: string,
  teacherDir: string,
  data: PreparedData,
  sentences: readonly Sentence[],
  tokenizer: Tokenizer,
  scheme: LabelScheme,
  batchSize: number,
  sums: (Float32Array | undefined)[],
): Promise<void> {
  const config = await readModelConfig(teacherDir);
  const where = `${field}: ${teacherDir}`;
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
  const teacher = new (native().Model)({ ...config, tokenizer: undefined });
  await teacher.loadWeights(path.join(teacherDir, WEIGHTS_FILE));
  const K = config.labels.length;
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
    const decoded = await teacher.decode(
      ids,
      [batch.length, T],
      lengths,
      { constraints, marginals: true },
      inputs,
    );
    const marginals = decoded.marginals!;
    indices.forEach((index, b) => {
      const rows = marginals.subarray(b * T * K, (b * T + lengths[b]) * K);
      const sum = sums[index];
      if (!sum) sums[index] = rows.slice();
      else for (let j = 0; j < rows.length; j++) sum[j] += rows[j];
    });
  }
  await teacher.dispose(); // the next teacher, then the student, need the memory
}
