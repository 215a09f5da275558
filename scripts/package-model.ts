/**
 * Packs a trained checkpoint directory as a model that ships in the repository: float16 weights,
 * the checkpoint's tokenizer files (as tokenizer.model and vocab.json) with the config.json that
 * names them, and the checkpoint's eval.json. A pretraining checkpoint (`koner pretrain`'s
 * `last/`) keeps its pretrain-state.json, so that a later `koner pretrain` with this directory
 * as `model.init` continues the text where it stopped: a pretraining that spans sessions keeps
 * only this compact directory, not the run's optimizer state. An ELECTRA checkpoint's generator
 * (`generator/`) is packed the same way beside it, so that the generator continues too. The model
 * card (README.md) is written by hand. With --int8 or --int4, the large matrices are stored in
 * fewer bits (scripts/storage-flag.ts), for an encoder too big for the repository's budget in
 * float16; koner reads them back as float32.
 *
 *   npx tsx scripts/package-model.ts [--int8 | --int4] <checkpoint-dir> <out-dir>
 */
import { existsSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';

import { copyModelDirectory } from '../lib/model/copy-model.js';
import { GENERATOR_DIR, PRETRAIN_STATE_FILE } from '../lib/pretrain/pretrainer.js';
import { STORAGE_USAGE, storageFlag } from './storage-flag.js';

const { dtype, label, rest: args } = storageFlag(process.argv.slice(2));
const [src, out, ...rest] = args;
if (!src || !out || rest.length > 0) {
  console.error(
    `usage: npx tsx scripts/package-model.ts ${STORAGE_USAGE} <checkpoint-dir> <out-dir>`,
  );
  process.exit(2);
}
/** Packs the model directory `from` into `to`: its weights as `dtype`, tokenizer, config. */
const packModel = (from: string, to: string) => copyModelDirectory(from, to, { dtype });
const count = await packModel(src, out);
const copied = [];
if (existsSync(path.join(src, GENERATOR_DIR))) {
  await packModel(path.join(src, GENERATOR_DIR), path.join(out, GENERATOR_DIR));
  copied.push(`${GENERATOR_DIR}/`);
}
for (const name of ['eval.json', PRETRAIN_STATE_FILE]) {
  if (!existsSync(path.join(src, name))) continue;
  await copyFile(path.join(src, name), path.join(out, name));
  copied.push(name);
}
console.log(
  `${out}: ${count} tensors as ${label === 'float16' ? label : `${label} and float16`}, tokenizer, ` +
    'config.json' +
    copied.map((name) => `, ${name}`).join(''),
);
