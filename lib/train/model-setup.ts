/**
 * The model a run trains: its config (from `model.size` for a scratch encoder, or from the
 * `config.json` of `model.init`), and the native model built from it with seeded weights —
 * drawn from scratch, or loaded from the init directory. When the init directory's head does not
 * fit the run (other labels, another head kind, or a plain encoder), only its encoder is loaded and
 * the head starts fresh from the seeded draw.
 *
 * @packageDocumentation
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { POS_TAGS } from '../labels/pos.js';
import type { LabelScheme } from '../labels/scheme.js';
import { readNetworkConfig, type ModelConfig, WEIGHTS_FILE } from '../model/config.js';
import { native, type NativeModel } from '../native.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { SYLLABLE_VOCAB_SIZE } from '../tokenizer/syllables.js';
import type { TrainConfig } from './config.js';

/**
 * The model config of a run. Scratch: `model.size`, the tokenizer's vocabulary size and pad id,
 * and Hugging Face's BERT defaults. Pretrained: the init directory's shape, vocabulary and pad id.
 * Both take labels from the scheme and head, dropout and RNN size from the training config.
 *
 * @throws Error when the tokenizer has more ids than the pretrained encoder's vocabulary.
 */
export async function runModelConfig(
  config: TrainConfig,
  scheme: LabelScheme,
  tokenizer: Tokenizer,
): Promise<ModelConfig> {
  const m = config.model;
  const shared = {
    hiddenAct: 'gelu' as const,
    hiddenDropoutProb: m.dropout,
    attentionProbsDropoutProb: m.dropout,
    head: m.head,
    labels: [...scheme.labels],
    posLabels: m.posWeight === null ? undefined : [...POS_TAGS],
  };
  if (m.init === 'scratch') {
    const size = m.size!;
    return {
      ...shared,
      vocabSize: tokenizer.vocabSize,
      hiddenSize: size.hiddenSize,
      numHiddenLayers: size.numHiddenLayers,
      numAttentionHeads: size.numAttentionHeads,
      intermediateSize: size.intermediateSize,
      maxPositionEmbeddings: size.maxPositionEmbeddings,
      typeVocabSize: 2,
      layerNormEps: 1e-12,
      initializerRange: 0.02,
      padTokenId: tokenizer.specialIds.pad,
      rnnHiddenSize: m.rnnHiddenSize ?? Math.max(1, Math.floor(size.hiddenSize / 2)),
      syllableVocabSize: m.syllables ? SYLLABLE_VOCAB_SIZE : undefined,
    };
  }
  const base = await readNetworkConfig(m.init, 'model.init');
  if (tokenizer.vocabSize > base.vocabSize) {
    throw new Error(
      `model.init: ${m.init} has vocab_size ${base.vocabSize} but the tokenizer has ` +
        `${tokenizer.vocabSize} ids: use the tokenizer the encoder was trained with`,
    );
  }
  const sameRnn = base.head === m.head;
  return {
    ...base,
    ...shared,
    rnnHiddenSize:
      m.rnnHiddenSize ??
      (sameRnn ? base.rnnHiddenSize : Math.max(1, Math.floor(base.hiddenSize / 2))),
    tokenizer: undefined,
    // A pretraining checkpoint's masked-LM or replaced-token head is left behind: tagging never
    // runs it.
    mlmHead: undefined,
    rtdHead: undefined,
    // A channel the directory has is kept (its weights are part of the encoder).
    syllableVocabSize: m.syllables ? SYLLABLE_VOCAB_SIZE : base.syllableVocabSize,
  };
}

/** How the weights were set. */
export type InitKind = 'scratch' | 'model' | 'encoder';

/**
 * Builds the native model and sets its weights: `model.seed(seed)` draws every parameter first,
 * so a scratch model — and a fresh head on a pretrained encoder — is the same for the same seed,
 * and LibTorch's generator (which dropout draws from next) starts from a known state. With
 * `loadInit: false` only the seeded draw is made (the caller loads a checkpoint over it).
 */
export async function createModel(
  config: TrainConfig,
  modelConfig: ModelConfig,
  seed: number,
  options: { loadInit?: boolean } = {},
): Promise<{ model: NativeModel; init: InitKind; note?: string }> {
  const model = new (native().Model)({ ...modelConfig, tokenizer: undefined });
  await model.seed(seed);
  // A resumed run overwrites every weight from its checkpoint: reading the init weights is waste.
  if (config.model.init === 'scratch' || options.loadInit === false) {
    return { model, init: 'scratch' };
  }
  const dir = config.model.init;
  const weights = path.join(dir, WEIGHTS_FILE);
  const base = await readNetworkConfig(dir, 'model.init');
  const names = (await native().inspectCheckpoint(weights)).map((t) => t.name);
  const prefixed = names.some((n) => n.startsWith('bert.'));
  const same = (a: readonly string[] = [], b: readonly string[] = []): boolean =>
    a.length === b.length && a.every((x, i) => x === b[i]);
  const sameHead =
    base.head === modelConfig.head &&
    same(base.posLabels, modelConfig.posLabels) &&
    (base.syllableVocabSize ?? 0) === (modelConfig.syllableVocabSize ?? 0) &&
    base.rnnHiddenSize === modelConfig.rnnHiddenSize &&
    base.labels.length === modelConfig.labels.length &&
    base.labels.every((l, i) => l === modelConfig.labels[i]);
  if (!prefixed || sameHead) {
    const { kind } = await model.loadWeights(weights);
    return { model, init: kind };
  }
  // A full model whose head does not fit: keep its encoder only (keys without `bert.`, which the
  // loader reads as a plain encoder), leaving the seeded head.
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'koner-encoder-'));
  try {
    const encoder = path.join(tmp, WEIGHTS_FILE);
    const renames = names
      .filter((n) => n.startsWith('bert.'))
      .map((n): [string, string] => [n, n.slice('bert.'.length)]);
    await native().convertCheckpoint(weights, encoder, renames);
    await model.loadWeights(encoder);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const why =
    base.head !== modelConfig.head
      ? `its head is ${base.head}, the run's ${modelConfig.head}`
      : !same(base.labels, modelConfig.labels)
        ? `its labels (${base.labels.length}) differ from the corpus's (${modelConfig.labels.length})`
        : !same(base.posLabels, modelConfig.posLabels)
          ? "its POS head differs from the run's"
          : 'the run adds a syllable channel';
  return { model, init: 'encoder', note: `${dir}: loaded the encoder only (${why}); fresh head` };
}
