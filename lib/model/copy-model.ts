/**
 * A model directory written from another's: its weights converted (and renamed, when asked), its
 * tokenizer files copied, its config.json (or a changed one) written last, so that a directory
 * with a config.json has its weights and tokenizer. scripts/package-model.ts packs checkpoints
 * with it; lib/pretrain/stack.ts writes deeper encoders.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import { type ConvertOptions, native } from '../native.js';
import { type ModelConfig, readModelConfig, WEIGHTS_FILE, writeModelConfig } from './config.js';
import { copyTokenizerFiles, resolveTokenizerFiles } from './tokenizer-files.js';

export interface CopyModelOptions {
  dtype: ConvertOptions['dtype'];
  /** `[from, to]` tensor names (default: every tensor of `from`, as it is named). */
  renames?: [string, string][];
  /** The config to write (default: `from`'s). */
  config?: ModelConfig;
  /** Tensors written beside the renamed ones. */
  extra?: ConvertOptions['extra'];
  /** Copy the tokenizer files (default true); false for an ensemble's member, which has none. */
  withTokenizer?: boolean;
}

/** Writes the model directory `to` from `from`; returns the number of tensors written. */
export async function copyModelDirectory(
  from: string,
  to: string,
  options: CopyModelOptions,
): Promise<number> {
  const config = options.config ?? (await readModelConfig(from));
  const withTokenizer = options.withTokenizer ?? true;
  const tokenizer = withTokenizer ? resolveTokenizerFiles(from, config) : undefined;
  const weights = path.join(from, WEIGHTS_FILE);
  const renames =
    options.renames ??
    (await native().inspectCheckpoint(weights)).map((t): [string, string] => [t.name, t.name]);
  await mkdir(to, { recursive: true });
  await native().convertCheckpoint(weights, path.join(to, WEIGHTS_FILE), renames, {
    dtype: options.dtype,
    extra: options.extra,
  });
  await writeModelConfig(to, {
    ...config,
    tokenizer: tokenizer ? await copyTokenizerFiles(to, tokenizer) : undefined,
  });
  return renames.length + (options.extra?.length ?? 0);
}
