/**
 * A model directory's tokenizer: the SentencePiece model and the vocabulary JSON live in the
 * directory as `tokenizer.model` and `vocab.json`, named by config.json's `tokenizer` field (as
 * Hugging Face keeps a tokenizer beside its weights), so a directory can be moved, shipped or
 * installed alone. Everything that writes a model directory copies them in with
 * {@link copyTokenizerFiles}; {@link resolveTokenizerFiles} finds them when one is loaded.
 */
import { existsSync } from 'node:fs';
import { chmod, copyFile, realpath } from 'node:fs/promises';
import path from 'node:path';

import type { ModelConfig } from './config.js';

/** Where a tokenizer's two files are. */
export interface TokenizerFiles {
  /** SentencePiece model (KoBERT's `tokenizer_78b3253a26.model`). */
  model: string;
  /** Vocabulary JSON with the model's ids (KoBERT's `kobertvocab_f38b8a4d6d.json`). */
  vocab: string;
}

/** The names the tokenizer files take inside a model directory. */
export const TOKENIZER_FILE_NAMES: Readonly<TokenizerFiles> = {
  model: 'tokenizer.model',
  vocab: 'vocab.json',
};

/** KoBERT's own file names, as SKT Brain publishes them (and `$KONER_TOKENIZER_DIR` may hold). */
export const KOBERT_FILE_NAMES: Readonly<TokenizerFiles> = {
  model: 'tokenizer_78b3253a26.model',
  vocab: 'kobertvocab_f38b8a4d6d.json',
};

/**
 * The tokenizer files in a directory, under koner's names or KoBERT's, when both files of one
 * naming exist; otherwise null.
 */
export function tokenizerFilesIn(dir: string): TokenizerFiles | null {
  for (const names of [TOKENIZER_FILE_NAMES, KOBERT_FILE_NAMES]) {
    const files = { model: path.join(dir, names.model), vocab: path.join(dir, names.vocab) };
    if (existsSync(files.model) && existsSync(files.vocab)) return files;
  }
  return null;
}

/**
 * The tokenizer files of a model directory. In order: `explicit` (an option), then
 * `$KONER_TOKENIZER_DIR`, then the paths config.json's `tokenizer` names (relative to the
 * directory), then `tokenizer.model` and `vocab.json` in the directory. Nothing outside the
 * directory is looked at unless the caller or the environment says so.
 *
 * @throws Error listing every place looked at when none holds both files.
 */
export function resolveTokenizerFiles(
  dir: string,
  config: ModelConfig,
  explicit?: TokenizerFiles,
): TokenizerFiles {
  const tried: string[] = [];
  const usable = (files: TokenizerFiles, source: string): boolean => {
    const ok = existsSync(files.model) && existsSync(files.vocab);
    if (!ok) tried.push(`${source} (${files.model}, ${files.vocab})`);
    return ok;
  };
  if (explicit && usable(explicit, 'the tokenizer option')) return explicit;
  const env = process.env.KONER_TOKENIZER_DIR;
  if (env) {
    const files = tokenizerFilesIn(env);
    if (files) return files;
    tried.push(
      `$KONER_TOKENIZER_DIR (${env} has neither ${TOKENIZER_FILE_NAMES.model} + ` +
        `${TOKENIZER_FILE_NAMES.vocab} nor ${KOBERT_FILE_NAMES.model} + ${KOBERT_FILE_NAMES.vocab})`,
    );
  }
  if (config.tokenizer) {
    const files = {
      model: path.resolve(dir, config.tokenizer.model),
      vocab: path.resolve(dir, config.tokenizer.vocab),
    };
    if (usable(files, 'config.json "tokenizer"')) return files;
  } else {
    const files = {
      model: path.join(dir, TOKENIZER_FILE_NAMES.model),
      vocab: path.join(dir, TOKENIZER_FILE_NAMES.vocab),
    };
    if (usable(files, 'the model directory')) return files;
  }
  throw new Error(
    `${dir}: the tokenizer files were not found; looked in: ${tried.join('; ')}. A model ` +
      `directory holds ${TOKENIZER_FILE_NAMES.model} and ${TOKENIZER_FILE_NAMES.vocab}; otherwise ` +
      `pass { tokenizer: { model, vocab } } or set KONER_TOKENIZER_DIR.`,
  );
}

/**
 * Copies a tokenizer's files into a model directory as `tokenizer.model` and `vocab.json`
 * (ordinary 0644 files, even when the originals are read-only) and returns the names to store
 * as config.json's `tokenizer` field:
 *
 * ```ts
 * const tokenizer = await copyTokenizerFiles(dir, { model, vocab });
 * await writeModelConfig(dir, { ...config, tokenizer });
 * ```
 *
 * Files that already are the directory's own are left as they are.
 */
export async function copyTokenizerFiles(
  dir: string,
  files: TokenizerFiles,
): Promise<TokenizerFiles> {
  for (const key of ['model', 'vocab'] as const) {
    const to = path.join(dir, TOKENIZER_FILE_NAMES[key]);
    let from: string;
    try {
      from = await realpath(files[key]);
    } catch (error) {
      throw new Error(
        `${files[key]}: cannot read the tokenizer ${key} file ` +
          `(${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      );
    }
    if (existsSync(to) && from === (await realpath(to))) continue; // copying onto itself truncates it
    await copyFile(from, to);
    await chmod(to, 0o644);
  }
  return { ...TOKENIZER_FILE_NAMES };
}
