/**
 * `npm run bench`: rows (a)–(f) in one run, printed as one table (row, koner, peer, speed-up,
 * unit). Each row's two sides are measured interleaved (round by round, best of N) with the same
 * thread count, so a change in the machine's load affects both alike; the load average before
 * and after is printed with the table.
 *
 *   (a) NerModel.predict throughput, KoBERT-size model, batch 1 and 32 (bench/inference.ts)
 *   (b) CRF NLL forward+backward and Viterbi, B=32 T=64 K=21 (bench/crf.ts)
 *   (c) training throughput, default small model (bench/train.ts)
 *   (d) tokenizer throughput (bench/tokenizer.ts)
 *   (e) encoder GFLOP/s next to the GEMM peak (bench/encoder.ts)
 *   (f) NerModel.predict against onnxruntime-node on the same weights: KoBERT-size and the
 *       bundled model in fp32, the KoBERT-size one also with bf16 and int8 products, batch 1
 *       and 32 (bench/peer.ts)
 */
import { writeFileSync } from 'node:fs';

import { native } from '../lib/native.js';
import type { ParsedBenchArgs } from './args.js';
import { type BenchRow, formatTable, loadAverage, machineLine, progress } from './common.js';
import { crfBench } from './crf.js';
import { encoderBench } from './encoder.js';
import { inferenceBench } from './inference.js';
import { peerBench } from './peer.js';
import { tokenizerBench } from './tokenizer.js';
import { trainBench } from './train.js';

export const ROWS = ['a', 'b', 'c', 'd', 'e', 'f'] as const;

export interface AllBenchResult {
  rows: BenchRow[];
  header: string;
  loadBefore: string;
  loadAfter: string;
}

/** Runs the selected rows (all by default), shortest first, and returns them in a…f order. */
export async function runAll(options: ParsedBenchArgs): Promise<AllBenchResult> {
  const only = new Set(options.only ?? ROWS);
  for (const r of only) {
    if (!(ROWS as readonly string[]).includes(r)) throw new TypeError(`--only: unknown row ${r}`);
  }
  const loadBefore = loadAverage();
  const header =
    `koner bench: LibTorch ${native().version()}, ${options.threads} thread(s) on both sides, ` +
    `python ${options.python}, device ${options.device}${options.quick ? ', --quick' : ''}`;
  progress(header);
  progress(machineLine());
  const out: Partial<Record<(typeof ROWS)[number], BenchRow[]>> = {};
  const shared = { ...options, rounds: options.rounds };
  const cuda = options.device !== 'cpu';
  if (only.has('d') && !cuda) out.d = await tokenizerBench(shared);
  if (only.has('b')) out.b = (await crfBench(shared)).rows;
  if (only.has('e')) out.e = await encoderBench(shared);
  if (only.has('c') && !cuda) out.c = await trainBench(shared);
  if (only.has('a') && !cuda) out.a = await inferenceBench(shared);
  if (only.has('f') && !cuda) out.f = await peerBench(shared);
  const rows = ROWS.flatMap((r) => out[r] ?? []);
  const loadAfter = loadAverage();
  if (options.json) {
    writeFileSync(
      options.json,
      JSON.stringify({ header, machine: machineLine(), loadBefore, loadAfter, rows }, null, 2) +
        '\n',
    );
  }
  return { rows, header, loadBefore, loadAfter };
}

/** The table with its header lines, as `npm run bench` prints it. */
export function formatAll(result: AllBenchResult): string {
  return [
    result.header,
    `${machineLine()}; load average before ${result.loadBefore}, after ${result.loadAfter}`,
    formatTable(result.rows),
  ].join('\n');
}
