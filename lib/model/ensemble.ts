/**
 * An ensemble of CRF taggers that tags as one model. The members' linear-chain scores add up, so
 * their mean emissions under their mean transitions (and start and end scores) are one CRF
 * again — a product of experts — and its Viterbi path is the ensemble's joint answer. On the
 * KMOU validation set that beats every member (README, "Ensembles, decoded as one CRF"), where
 * the mean of the members' marginals gives most of the gain away.
 *
 * An ensemble directory holds config.json (the members' architecture and labels, plus `ensemble`:
 * the member directories inside it), the tokenizer files, and one model directory per member
 * (config.json and model.safetensors, no tokenizer). `NerModel.load` reads it like any model.
 *
 * @packageDocumentation
 */
import path from 'node:path';

import type { CrfParameters } from '../crf/index.js';
import {
  native,
  type EncoderDtype,
  type NativeDecoded,
  type NativeDecodeOptions,
  type ConvertOptions,
  type NativeInputs,
  type NativeModel,
} from '../native.js';
import {
  type InferenceDtype,
  type ModelConfig,
  readModelConfig,
  WEIGHTS_FILE,
  writeModelConfig,
} from './config.js';
import { copyModelDirectory } from './copy-model.js';
import { loadNetwork, type NetworkPlacement } from './load-network.js';
import { copyTokenizerFiles, resolveTokenizerFiles } from './tokenizer-files.js';

/** The CRF parameter tensors of a koner model directory, with the fields they fill. */
const CRF_TENSORS = [
  ['crf.transitions', 'transitions'],
  ['crf.start_transitions', 'start'],
  ['crf.end_transitions', 'end'],
] as const;

/**
 * The mean CRF parameters of model directories with CRF heads of K tags.
 *
 * @throws Error naming the directory whose CRF tensors are missing or of another size.
 */
export async function meanCrfParameters(
  dirs: readonly string[],
  K: number,
): Promise<CrfParameters> {
  const crf: CrfParameters = {
    transitions: new Float32Array(K * K),
    start: new Float32Array(K),
    end: new Float32Array(K),
  };
  for (const dir of dirs) {
    const file = path.join(dir, WEIGHTS_FILE);
    const names = CRF_TENSORS.map(([name]) => name);
    const tensors = await native().readTensors(file, names, true);
    for (const [name, field] of CRF_TENSORS) {
      const raw = tensors[name];
      if (!raw) throw new Error(`${file}: has no ${name} (a CRF head is needed)`);
      const values = new Float32Array(raw.data.slice().buffer);
      if (values.length !== crf[field].length) {
        throw new Error(
          `${file}: ${name} has ${values.length} values, expected ${crf[field].length}`,
        );
      }
      for (let j = 0; j < values.length; j++) crf[field][j] += values[j] / dirs.length;
    }
  }
  return crf;
}

/** Refuses what only a single network has (its weights, hidden states, training loss). */
function single(what: string): never {
  throw new Error(`an ensemble has no single ${what}: load one of its members for that`);
}

/**
 * The native-model interface over several members: emissions are the members' mean, decoding is
 * the joint CRF's. Members run one after another, each with every thread.
 */
export class EnsembleModel implements NativeModel {
  readonly #members: NativeModel[];
  readonly #crf: CrfParameters;
  readonly #K: number;

  constructor(members: NativeModel[], crf: CrfParameters) {
    if (members.length === 0) throw new Error('an ensemble needs at least one member');
    this.#members = members;
    this.#crf = crf;
    this.#K = crf.start.length;
  }

  async emissions(
    ids: Int32Array,
    shape: number[],
    lengths: Int32Array,
    inputs?: NativeInputs,
  ): Promise<Float32Array> {
    let sum: Float32Array | undefined;
    for (const member of this.#members) {
      const e = await member.emissions(ids, shape, lengths, inputs);
      if (!sum) sum = e;
      else for (let j = 0; j < e.length; j++) sum[j] += e[j];
    }
    return this.#mean(sum!);
  }

  async attentions(
    ids: Int32Array,
    shape: number[],
    lengths: Int32Array,
    layers: number[],
    heads: number[],
    inputs?: NativeInputs,
  ): Promise<{ emissions: Float32Array; attentions: Float32Array }> {
    // The members' mean attention: each query row still sums to 1.
    let sum: { emissions: Float32Array; attentions: Float32Array } | undefined;
    for (const member of this.#members) {
      const r = await member.attentions(ids, shape, lengths, layers, heads, inputs);
      if (!sum) sum = r;
      else {
        for (let j = 0; j < r.emissions.length; j++) sum.emissions[j] += r.emissions[j];
        for (let j = 0; j < r.attentions.length; j++) sum.attentions[j] += r.attentions[j];
      }
    }
    return { emissions: this.#mean(sum!.emissions), attentions: this.#mean(sum!.attentions) };
  }

  async decode(
    ids: Int32Array,
    shape: number[],
    lengths: Int32Array,
    options?: NativeDecodeOptions,
    inputs?: NativeInputs,
  ): Promise<NativeDecoded> {
    const emissions = await this.emissions(ids, shape, lengths, inputs);
    return this.decodeEmissions(emissions, [shape[0], shape[1], this.#K], lengths, options);
  }

  decodeEmissions(
    emissions: Float32Array,
    shape: number[],
    lengths: Int32Array,
    options: NativeDecodeOptions = {},
  ): Promise<NativeDecoded> {
    // The joint CRF has no module of its own: the CRF kernels run here on the mean parameters,
    // synchronously, a fraction of a millisecond for a batch next to the members' encoders.
    const { transitions, start, end } = this.#crf;
    const constraints = options.constraints ?? {};
    const nBest = options.nBest ?? 1;
    const paths = native().crfDecode(emissions, shape, lengths, transitions, start, end, {
      ...constraints,
      nBest,
    });
    const marginals = options.marginals
      ? native().crfMarginals(emissions, shape, lengths, transitions, start, end, constraints)
      : undefined;
    return Promise.resolve({ ...paths, ...(marginals ? { marginals } : {}) });
  }

  async to(device: string, dtype?: EncoderDtype): Promise<void> {
    for (const member of this.#members) await member.to(device, dtype);
  }

  placement(): { device: string; dtype: EncoderDtype } {
    return this.#members[0].placement();
  }

  async dispose(): Promise<void> {
    await Promise.all(this.#members.map((m) => m.dispose()));
  }

  async hidden(): Promise<Float32Array> {
    return single('hidden state');
  }

  async loss(): Promise<number> {
    return single('training loss');
  }

  async loadWeights(): Promise<{ kind: 'model' | 'encoder'; ignored: string[] }> {
    return single('set of weights');
  }

  async saveWeights(): Promise<void> {
    return single('set of weights');
  }

  parameterInfo(): { name: string; shape: number[] }[] {
    return single('parameter list');
  }

  async seed(): Promise<void> {
    return single('set of weights');
  }

  #mean(sum: Float32Array): Float32Array {
    const scale = 1 / this.#members.length;
    if (scale !== 1) for (let j = 0; j < sum.length; j++) sum[j] *= scale;
    return sum;
  }
}

/**
 * Checks that a member's config agrees with the ensemble's on everything a shared tokenizer and
 * a shared CRF need.
 *
 * @throws Error naming the member and the field.
 */
export function checkMemberConfig(ensemble: ModelConfig, member: ModelConfig, where: string): void {
  const fields: [string, unknown, unknown][] = [
    ['id2label', ensemble.labels.join(' '), member.labels.join(' ')],
    ['head', ensemble.head, member.head],
    ['vocab_size', ensemble.vocabSize, member.vocabSize],
    ['max_position_embeddings', ensemble.maxPositionEmbeddings, member.maxPositionEmbeddings],
    ['pad_token_id', ensemble.padTokenId, member.padTokenId],
    ['syllable_vocab_size', ensemble.syllableVocabSize ?? 0, member.syllableVocabSize ?? 0],
  ];
  for (const [field, want, got] of fields) {
    if (want !== got) {
      throw new Error(
        `${where}: field "${field}" is ${JSON.stringify(got)}, the ensemble's ${JSON.stringify(want)}`,
      );
    }
  }
  if (member.ensemble) throw new Error(`${where}: a member cannot be an ensemble itself`);
}

/**
 * The networks of `dirs` as one model, each checked against `reference` (the ensemble's config,
 * or the first member's) and placed as asked. What is loaded is freed again when one fails.
 *
 * @throws Error naming the member and the field that disagrees, or what its loading found.
 */
export async function loadEnsemble(
  dirs: readonly string[],
  reference: ModelConfig,
  placement: NetworkPlacement = {},
): Promise<EnsembleModel> {
  const members: NativeModel[] = [];
  try {
    for (const dir of dirs) {
      const config = await readModelConfig(dir);
      checkMemberConfig(reference, config, dir);
      members.push(await loadNetwork(dir, config, placement));
    }
    return new EnsembleModel(members, await meanCrfParameters(dirs, reference.labels.length));
  } catch (error) {
    await Promise.all(members.map((m) => m.dispose()));
    throw error;
  }
}

/**
 * Writes an ensemble directory `out` from model directories of one tokenizer and label set:
 * each member's weights (as `dtype`) and config.json in `member-<i>/`, the first member's
 * tokenizer files and its config.json with `ensemble` (and `inference_dtype`, when given) at the
 * top. Returns the member names.
 */
export async function writeEnsembleDirectory(
  out: string,
  memberDirs: readonly string[],
  dtype: ConvertOptions['dtype'],
  inferenceDtype?: InferenceDtype,
): Promise<string[]> {
  if (memberDirs.length === 0) throw new Error('an ensemble needs at least one member directory');
  const first = await readModelConfig(memberDirs[0]);
  const names: string[] = [];
  for (const [i, dir] of memberDirs.entries()) {
    const config = await readModelConfig(dir);
    checkMemberConfig(first, config, dir);
    const name = `member-${i}`;
    await copyModelDirectory(dir, path.join(out, name), { dtype, config, withTokenizer: false });
    names.push(name);
  }
  const tokenizer = await copyTokenizerFiles(out, resolveTokenizerFiles(memberDirs[0], first));
  await writeModelConfig(out, {
    ...first,
    tokenizer,
    ensemble: names,
    ...(inferenceDtype ? { inferenceDtype } : {}),
  });
  return names;
}
