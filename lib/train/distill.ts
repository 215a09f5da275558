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
import type { Sentence } from '../corpus/types.js';
import type { LabelScheme } from '../labels/scheme.js';
import { readNetworkConfig, type ModelConfig } from '../model/config.js';
import { loadEnsemble } from '../model/ensemble.js';
import { loadNetwork } from '../model/load-network.js';
import { bioConstraints } from '../model/ner-model.js';
import type { NativeInputs } from '../native.js';
import { ValidationLeakGuard } from '../pretrain/leak-guard.js';
import { readParagraphs } from '../pretrain/text-stream.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { collateSyllables, pieceSyllables } from '../tokenizer/syllables.js';
import { padSequences } from './batching.js';
import { pathListField, type TeacherCombination } from './config.js';
import type { PreparedData, TrainingExample } from './data.js';

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
 * combination (see {@link TeacherCombination}), a distribution again. With `emissions` the
 * teachers are loaded together, as one model (lib/model/ensemble.ts); otherwise one at a time.
 *
 * @throws Error when a teacher's labels are not the scheme's, or its vocabulary is not the
 *   tokenizer's, naming that teacher, before any teacher is loaded.
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
  const configs = await teacherConfigs(teacherDirs, tokenizer, scheme, combine);
  // Each teacher, or the ensemble of them all: a model whose marginals are summed into `sums`.
  const teachers =
    combine === 'emissions'
      ? [() => loadEnsemble(teacherDirs, configs[0])]
      : teacherDirs.map((dir, t) => () => loadNetwork(dir, configs[t]));
  const K = scheme.labels.length;
  const constraints = bioConstraints(scheme.labels);
  const syllables = configs[0].syllableVocabSize ? syllablesOf(sentences, tokenizer) : undefined;
  const sums = data.examples.map(() => undefined as Float32Array | undefined);
  for (const load of teachers) {
    const teacher = await load();
    try {
      for (const batch of teacherBatches(data, batchSize, configs[0].padTokenId, syllables)) {
        const decoded = await teacher.decode(
          batch.ids,
          [batch.indices.length, batch.T],
          batch.lengths,
          { constraints, marginals: true },
          batch.inputs,
        );
        batch.indices.forEach((index, b) => {
          const rows = decoded.marginals!.subarray(
            b * batch.T * K,
            (b * batch.T + batch.lengths[b]) * K,
          );
          const sum = sums[index];
          if (!sum) sums[index] = rows.slice();
          else for (let j = 0; j < rows.length; j++) sum[j] += rows[j];
        });
      }
    } finally {
      await teacher.dispose(); // the next teacher, then the student, need the memory
    }
  }
  const scale = 1 / teachers.length;
  data.examples.forEach((example, i) => {
    const sum = sums[i]!;
    if (scale !== 1) for (let j = 0; j < sum.length; j++) sum[j] *= scale;
    example.softTargets = sum;
  });
  return { seconds: (performance.now() - started) / 1000 };
}

/** Every teacher's config, checked against the scheme, the tokenizer and the combination. */
async function teacherConfigs(
  teacherDirs: readonly string[],
  tokenizer: Tokenizer,
  scheme: LabelScheme,
  combine: TeacherCombination,
): Promise<ModelConfig[]> {
  if (teacherDirs.length === 0) throw new Error('distill.teacher: names no model directory');
  const configs: ModelConfig[] = [];
  for (const [t, dir] of teacherDirs.entries()) {
    const field = pathListField('distill.teacher', teacherDirs, t);
    const where = `${field}: ${dir}`;
    const config = await readNetworkConfig(dir, field);
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
    if (combine === 'emissions' && config.head === 'softmax') {
      throw new Error(`${where} has a softmax head: combining emissions needs a CRF`);
    }
    configs.push(config);
  }
  return configs;
}

/** The pieces' syllable ids of an example, for teachers with a syllable channel. */
type SyllablesOf = (example: TrainingExample) => ReturnType<typeof pieceSyllables>;

/** Syllables of examples by their sentence's offsets, each sentence tokenized once. */
function syllablesOf(sentences: readonly Sentence[], tokenizer: Tokenizer): SyllablesOf {
  const offsetsOf = new Map<number, [number, number][]>();
  return (e) => {
    const sentence = sentences[e.sentence];
    let offsets = offsetsOf.get(e.sentence);
    if (!offsets) {
      offsets = tokenizer.encode(sentence.text).offsets;
      offsetsOf.set(e.sentence, offsets);
    }
    return pieceSyllables(sentence.text, offsets.slice(e.start, e.end));
  };
}

/** One batch of examples for a teacher: their indices, padded ids and inputs. */
interface TeacherBatch {
  indices: number[];
  ids: Int32Array;
  lengths: Int32Array;
  T: number;
  inputs: NativeInputs | undefined;
}

/** `data`'s examples in batches of similar length, longest first (little padding). */
function* teacherBatches(
  data: PreparedData,
  batchSize: number,
  padTokenId: number,
  syllables: SyllablesOf | undefined,
): Generator<TeacherBatch> {
  const order = data.examples.map((_, i) => i).sort((a, b) => data.lengths[b] - data.lengths[a]);
  for (let first = 0; first < order.length; first += batchSize) {
    const indices = order.slice(first, first + batchSize);
    const batch = indices.map((i) => data.examples[i]);
    const padded = padSequences(
      batch.map((e) => e.ids),
      padTokenId,
    );
    let inputs: NativeInputs | undefined;
    if (syllables) {
      const collated = collateSyllables(batch.map(syllables), padded.cols);
      inputs = { syllables: collated.ids, syllablesPerPiece: collated.syllables };
    }
    yield { indices, ids: padded.data, lengths: padded.lengths, T: padded.cols, inputs };
  }
}
