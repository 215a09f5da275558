import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { packageRoot } from '../lib/native.js';
import { loadPretrainConfig } from '../lib/pretrain/config.js';
import { loadTrainConfig } from '../lib/train/config.js';

const DIR = path.join(packageRoot, 'configs');
const files = readdirSync(DIR).filter((f) => f.endsWith('.json'));

describe('configs/', () => {
  it('holds the recipes', () => {
    expect(files).toEqual(
      expect.arrayContaining(['kmou-small-pretrained.json', 'pretrain-small.json']),
    );
  });

  // A recipe that no longer validates would fail only when someone runs it, hours in.
  it.each(files)('%s validates against the schema it names', async (file) => {
    const full = path.join(DIR, file);
    const schema = (JSON.parse(readFileSync(full, 'utf8')) as { $schema?: string }).$schema;
    if (schema === '../schemas/pretrain.schema.json') {
      await expect(loadPretrainConfig(full)).resolves.toMatchObject({
        maxSteps: expect.any(Number),
      });
    } else {
      expect(schema).toBe('../schemas/train.schema.json');
      await expect(loadTrainConfig(full)).resolves.toMatchObject({ output: expect.any(String) });
    }
  });
});
