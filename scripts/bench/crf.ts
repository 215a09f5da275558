/**
 * Row (b) alone: koner's fused CRF against a PyTorch CRF written the way the common libraries
 * write it (vectorised over the batch, a Python loop over time), interleaved, best of N.
 *
 *   npm run bench:crf -- [--batch 32] [--time 64] [--tags 21] [--threads N] [--iters 200]
 *                        [--rounds 5] [--quick] [--device cpu|cuda]
 *
 * The logic lives in bench/crf.ts (compiled into dist-test/ for the GPU machine).
 */
import { parseArgs } from 'node:util';

import { parseBenchArgs } from '../../bench/args.js';
import { formatTable, machineLine } from '../../bench/common.js';
import { crfBench } from '../../bench/crf.js';

const { values, tokens } = parseArgs({
  options: {
    batch: { type: 'string' },
    time: { type: 'string' },
    tags: { type: 'string' },
    iters: { type: 'string' },
  },
  strict: false,
  tokens: true,
});
// The CRF's own options are taken out; the rest are the shared ones (--threads, --quick, ...).
const own = new Set(['batch', 'time', 'tags', 'iters']);
const rest: string[] = [];
for (const t of tokens ?? []) {
  if (t.kind === 'option' && !own.has(t.name)) {
    rest.push(t.rawName);
    if (t.value !== undefined) rest.push(t.value);
  }
}
const number = (v: unknown) => (typeof v === 'string' ? Number(v) : undefined);
const options = parseBenchArgs(rest);
const { rows } = await crfBench({
  ...options,
  batch: number(values.batch),
  time: number(values.time),
  tags: number(values.tags),
  iters: number(values.iters),
});
console.log(`${machineLine()}; ${options.threads} thread(s) on both sides`);
console.log(formatTable(rows));
