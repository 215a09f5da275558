import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { Type } from '@sinclair/typebox';

import { PATH_FORMAT, readConfig, TrainConfigError } from '../lib/json-config.js';
import { parsePretrainConfig } from '../lib/pretrain/config.js';
import { parseTrainConfig } from '../lib/train/config.js';
import { schemaFiles } from '../scripts/schemas.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TOKENIZER = { model: '/tok/sp.model', vocab: '/tok/vocab.json' };

describe('readConfig', () => {
  const schema = Type.Object({
    files: Type.Array(Type.String({ format: PATH_FORMAT }), { minItems: 1 }),
    pair: Type.Tuple([Type.Number(), Type.Number()], { default: [1, 2] }),
    choice: Type.Union(
      [
        Type.Object({ ratio: Type.Number({ minimum: 0, default: 0.5 }) }),
        Type.Object({ steps: Type.Integer({ minimum: 0 }) }),
      ],
      { default: {} },
    ),
    inner: Type.Object({ n: Type.Integer({ minimum: 1, default: 3 }) }, { default: {} }),
  });
  const read = (raw: unknown) => readConfig(schema, raw, { baseDir: '/base' });

  it('fills defaults (nested ones too), resolves paths and takes one path for a list', () => {
    const r = read({ files: 'a.txt' });
    expect(r.issues).toEqual([]);
    expect(r.value).toEqual({
      files: ['/base/a.txt'],
      pair: [1, 2],
      choice: { ratio: 0.5 },
      inner: { n: 3 },
    });
    expect(read({ files: ['/x', 'y'], choice: { steps: 4 } }).value.choice).toEqual({ steps: 4 });
  });

  it('names the innermost field it can: an alternative, a list member, a whole tuple', () => {
    const r = read({ files: ['a', 7], pair: [1, 'x'], choice: { steps: -1 }, inner: { n: 0 } });
    expect(r.issues).toEqual([
      { field: 'files[1]', problem: 'must be a path, got 7' },
      { field: 'pair', problem: 'must be a list of 2, each a number, got [1,"x"]' },
      { field: 'choice.steps', problem: 'must be an integer ≥ 0, got -1' },
      { field: 'inner.n', problem: 'must be an integer ≥ 1, got 0' },
    ]);
    expect(r.valid('inner')).toBe(false);
    expect(r.valid('inner.n')).toBe(false);
    const missing = read({ inner: 5 });
    expect(missing.issues.map((i) => i.field)).toEqual(['files', 'inner']);
    // A member of an invalid parent was never read.
    expect(missing.valid('inner.n')).toBe(false);
  });

  it('quotes a wrong value by its kind when asked (an HTTP body may be huge)', () => {
    const huge = 'x'.repeat(100_000);
    const r = readConfig(schema, { files: [huge], pair: huge }, { baseDir: '/', quote: 'kind' });
    expect(r.issues).toEqual([
      { field: 'pair', problem: 'must be a list of 2, each a number, got a string' },
    ]);
  });

  it('never crashes a cross-field check on a parent of the wrong type', () => {
    const error = (() => {
      try {
        parseTrainConfig(
          { corpus: 'data', model: { init: 'm', posWeight: 1 }, output: 'o' },
          '/c/train.json',
          { defaultTokenizer: TOKENIZER },
        );
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(TrainConfigError);
    expect((error as TrainConfigError).issues.map((i) => i.field)).toEqual(['corpus']);
  });
});

describe('config schemas', () => {
  it('checks in the JSON Schemas the TypeBox schemas give (npm run schemas writes them)', async () => {
    for (const [file, text] of Object.entries(await schemaFiles())) {
      expect(await readFile(path.join(repoRoot, file), 'utf8'), file).toBe(text);
    }
  });

  it('lets a config leave out exactly the fields that have defaults', async () => {
    const train = JSON.parse((await schemaFiles())['schemas/train.schema.json']);
    expect(train.required).toEqual(['corpus', 'model', 'output']);
    expect(train.properties.model.required).toEqual(['init']);
    expect(train.properties.optimizer.properties.lr.default).toBe(5e-5);
    expect(train.additionalProperties).toBe(false);
  });

  it('names its schema in every checked-in config, and each config reads', async () => {
    const dir = path.join(repoRoot, 'configs');
    for (const name of await readdir(dir)) {
      const file = path.join(dir, name);
      const raw = JSON.parse(await readFile(file, 'utf8'));
      const pretrain = name.startsWith('pretrain');
      expect(raw.$schema, name).toBe(`../schemas/${pretrain ? 'pretrain' : 'train'}.schema.json`);
      const parse = pretrain ? parsePretrainConfig : parseTrainConfig;
      expect(() => parse(raw, file, { defaultTokenizer: TOKENIZER }), name).not.toThrow();
    }
  });
});
