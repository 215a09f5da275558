/**
 * The model that ships with koner: four 6 × 384 CRF taggers decoded as one CRF (an ensemble
 * directory, lib/model/ensemble.ts), all fine-tuned on the KMOU training set from an encoder
 * pretrained on Korean Wikipedia (`configs/pretrain-medium.json`,
 * `configs/pretrain-medium-continue.json`): a student distilled from five fine-tunes
 * (`configs/kmou-medium-ensemble-distilled.json`) and three of those fine-tunes
 * (`configs/ablation-medium-seed-101.json`, `-seed-102.json`, `-layer-decay.json`), stored as
 * int4 groups (binding/io/quantized_rows.h). Scores in README and models/kmou-small/eval.json,
 * model card in models/kmou-small/README.md. Like every model directory it holds its tokenizer:
 * KoBERT's, which is also the tokenizer koner uses when a command is given none.
 */
import path from 'node:path';

import { packageRoot } from '../native.js';
import { TOKENIZER_FILE_NAMES, type TokenizerFiles } from './tokenizer-files.js';

/** The directory of the default model (`models/kmou-small` in the package). */
export function defaultModelDir(): string {
  return path.join(packageRoot, 'models', 'kmou-small');
}

/** KoBERT's tokenizer files, as the bundled model holds them (third_party/kobert-tokenizer). */
export function bundledTokenizerFiles(): TokenizerFiles {
  const dir = defaultModelDir();
  return {
    model: path.join(dir, TOKENIZER_FILE_NAMES.model),
    vocab: path.join(dir, TOKENIZER_FILE_NAMES.vocab),
  };
}
