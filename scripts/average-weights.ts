/**
 * Averages the weights of model directories that share one architecture (checkpoint averaging:
 * the snapshots of one run's last epochs; or a model soup: fine-tunes of one encoder) into a new
 * model directory with the first one's config and tokenizer, float32 weights.
 *
 *   npx tsx scripts/average-weights.ts <out-dir> <model-dir> <model-dir> ...
 */
import path from 'node:path';

import { copyModelDirectory } from '../lib/model/copy-model.js';
import { WEIGHTS_FILE } from '../lib/model/config.js';
import { native, type CheckpointExtra } from '../lib/native.js';

const [out, ...dirs] = process.argv.slice(2);
if (!out || dirs.length < 2) {
  console.error('usage: npx tsx scripts/average-weights.ts <out-dir> <model-dir> <model-dir> ...');
  process.exit(2);
}
const sums = new Map<string, { shape: number[]; values: Float32Array }>();
for (const dir of dirs) {
  const tensors = await native().readTensors(path.join(dir, WEIGHTS_FILE), null, true);
  if (sums.size > 0 && Object.keys(tensors).length !== sums.size) {
    throw new Error(`${dir}: ${Object.keys(tensors).length} tensors, ${dirs[0]} has ${sums.size}`);
  }
  for (const [name, t] of Object.entries(tensors)) {
    // Floating tensors arrive as float32; anything else cannot be averaged.
    if (t.dtype !== 'float32') throw new Error(`${dir}: ${name} is ${t.dtype}, not floating`);
    const values = new Float32Array(t.data.slice().buffer);
    if (dir === dirs[0]) {
      sums.set(name, { shape: t.shape, values });
      continue;
    }
    const sum = sums.get(name);
    if (!sum) throw new Error(`${dir}: ${name} is not in ${dirs[0]}`);
    if (sum.shape.join() !== t.shape.join()) {
      throw new Error(`${dir}: ${name} is [${t.shape}], ${dirs[0]} has [${sum.shape}]`);
    }
    for (let i = 0; i < values.length; i++) sum.values[i] += values[i];
  }
}
const extra: CheckpointExtra[] = [...sums].map(([name, { shape, values }]) => ({
  name,
  shape,
  init: 'values',
  values: values.map((v) => v / dirs.length),
}));
const count = await copyModelDirectory(dirs[0], out, { dtype: 'float32', renames: [], extra });
console.log(`${out}: the mean of ${dirs.length} models' ${count} tensors`);
