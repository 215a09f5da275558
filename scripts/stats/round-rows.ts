/**
 * What storing a model's matrices in fewer bits would cost, measured before any format exists:
 * writes a copy of a model directory whose matrices (those of 16,384 or more values, as int8
 * rows quantize) are rounded to `bits`-bit symmetric integers with one scale per `group` values
 * of a row, stored as float32 so that every reader takes it as it is. `koner eval` or
 * `scripts/stats/ensemble.ts` then score the rounded model; the tokenizer stays where it was.
 *
 *   npx tsx scripts/stats/round-rows.ts <model-dir> <out-dir> <bits> <group>
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import { readNetworkConfig, WEIGHTS_FILE, writeModelConfig } from '../../lib/model/config.js';
import { resolveTokenizerFiles } from '../../lib/model/tokenizer-files.js';
import { type CheckpointExtra, native } from '../../lib/native.js';

const [src, out, bitsArg, groupArg, ...rest] = process.argv.slice(2);
const bits = Number(bitsArg);
const group = Number(groupArg);
if (!src || !out || !(bits >= 2 && bits <= 8) || !(group >= 1) || rest.length > 0) {
  console.error(
    'usage: npx tsx scripts/stats/round-rows.ts <model-dir> <out-dir> <bits 2..8> <group>',
  );
  process.exit(2);
}
const levels = 2 ** (bits - 1) - 1;
const config = await readNetworkConfig(src, 'model-dir');
const tensors = await native().readTensors(path.join(src, WEIGHTS_FILE), null, true);
const extra: CheckpointExtra[] = [];
let rounded = 0;
for (const [name, t] of Object.entries(tensors)) {
  const values = new Float32Array(Uint8Array.from(t.data).buffer);
  if (t.shape.length === 2 && values.length >= 16384) {
    const cols = t.shape[1];
    for (let row = 0; row < values.length; row += cols) {
      for (let lo = row; lo < row + cols; lo += group) {
        const hi = Math.min(lo + group, row + cols);
        let max = 0;
        for (let i = lo; i < hi; i++) max = Math.max(max, Math.abs(values[i]));
        const step = max / levels || 1;
        for (let i = lo; i < hi; i++) values[i] = Math.round(values[i] / step) * step;
      }
    }
    rounded++;
  }
  extra.push({ name, shape: t.shape, init: 'values', values });
}
await mkdir(out, { recursive: true });
await native().convertCheckpoint(path.join(src, WEIGHTS_FILE), path.join(out, WEIGHTS_FILE), [], {
  dtype: 'float32',
  extra,
});
await writeModelConfig(out, { ...config, tokenizer: resolveTokenizerFiles(src, config) });
console.log(`${out}: ${rounded} matrices rounded to ${bits} bits, a scale per ${group} values`);
