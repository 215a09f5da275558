/**
 * Writes the JSON Schemas of train.json and pretrain.json (schemas/*.schema.json) from the
 * TypeBox schemas the configs are read with, so an editor checks a file the way `koner train`
 * will. `npm run schemas` after changing a config's schema; test/schemas.test.ts fails while the
 * checked-in files differ from what this writes.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import prettier from 'prettier';

import { fileSchema } from '../lib/json-config.js';
import { PRETRAIN_SCHEMA } from '../lib/pretrain/config.js';
import { TRAIN_SCHEMA } from '../lib/train/config.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The schema files, by path relative to the repository root, as prettier formats them. */
export async function schemaFiles(): Promise<Record<string, string>> {
  const schemas = {
    'schemas/train.schema.json': fileSchema(TRAIN_SCHEMA, {
      title: 'koner train.json',
      optional: ['tokenizer'],
    }),
    'schemas/pretrain.schema.json': fileSchema(PRETRAIN_SCHEMA, {
      title: 'koner pretrain.json',
      optional: ['tokenizer'],
    }),
  };
  const out: Record<string, string> = {};
  for (const [file, schema] of Object.entries(schemas)) {
    const where = path.join(repoRoot, file);
    const options = (await prettier.resolveConfig(where)) ?? {};
    out[file] = await prettier.format(JSON.stringify(schema), { ...options, filepath: where });
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [file, text] of Object.entries(await schemaFiles())) {
    await writeFile(path.join(repoRoot, file), text);
    console.log(`wrote ${file}`);
  }
}
