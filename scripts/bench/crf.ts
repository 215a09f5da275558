/**
 * CRF benchmark: koner's fused native CRF against a PyTorch CRF written the way the common
 * libraries write it (vectorised over the batch, a Python loop over time, autograd for the
 * backward pass: scripts/fixtures/crf_reference.py), same shapes, same thread count, same run.
 *
 *   npm run bench:crf -- [--batch 32] [--time 64] [--tags 21] [--threads N] [--iters 200]
 *
 * Measures NLL forward+backward (all four gradients, reduction 'mean') and 1-best Viterbi,
 * in ms per call; koner's figures include the typed-array copies of the N-API calls.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { native, packageRoot } from '../../lib/native.js';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '32' },
    time: { type: 'string', default: '64' },
    tags: { type: 'string', default: '21' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    iters: { type: 'string', default: '200' },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});
const B = Number(values.batch);
const T = Number(values.time);
const K = Number(values.tags);
const threads = Number(values.threads);
const iters = Number(values.iters);

function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function msPerCall(f: () => void): number {
  for (let i = 0; i < Math.max(5, iters / 10); i++) f();
  const start = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) f();
  return Number(process.hrtime.bigint() - start) / 1e6 / iters;
}

const addon = native();
addon.setNumThreads(threads);
const rand = random(0);
const floats = (n: number) => Float32Array.from({ length: n }, () => rand() * 4 - 2);
const emissions = floats(B * T * K);
const transitions = floats(K * K);
const start = floats(K);
const end = floats(K);
// Lengths as the Python side draws them: within [T/2, T], the first one full.
const lengths = Int32Array.from({ length: B }, (_, b) =>
  b === 0 ? T : Math.floor(T / 2) + Math.floor(rand() * (T - Math.floor(T / 2) + 1)),
);
const tags = Int32Array.from({ length: B * T }, () => Math.floor(rand() * K));
const shape = [B, T, K];

const ours = {
  nll: msPerCall(() =>
    addon.crfNll(emissions, shape, tags, lengths, transitions, start, end, 'mean'),
  ),
  viterbi: msPerCall(() => addon.crfDecode(emissions, shape, lengths, transitions, start, end)),
};

const script = path.join(packageRoot, 'scripts', 'fixtures', 'crf_reference.py');
const args = ['bench', '--batch', String(B), '--time', String(T), '--tags', String(K)];
args.push('--threads', String(threads), '--iters', String(Math.max(10, Math.round(iters / 4))));
const py = spawnSync(values.python, [script, ...args], { encoding: 'utf8' });
if (py.status !== 0) {
  console.error(`crf bench: ${values.python} ${script} failed:\n${py.stderr}`);
  process.exit(1);
}
const torch = JSON.parse(py.stdout) as { torch: string; threads: number } & typeof ours;

console.log(
  `CRF B=${B} T=${T} K=${K}, ${threads} thread(s); koner (LibTorch ${addon.version()}) ` +
    `vs PyTorch ${torch.torch} (${torch.threads} thread(s)), ${os.cpus()[0]?.model ?? 'CPU'}`,
);
console.log('op                         koner ms/iter   PyTorch ms/iter   speed-up');
for (const [name, label] of [
  ['nll', 'NLL forward+backward'],
  ['viterbi', 'Viterbi (1-best)'],
] as const) {
  const row = [
    label.padEnd(26),
    ours[name].toFixed(3).padStart(13),
    torch[name].toFixed(3).padStart(17),
    `${(torch[name] / ours[name]).toFixed(1)}x`.padStart(10),
  ];
  console.log(row.join(' '));
}
