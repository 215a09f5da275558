/**
 * Measures the pretraining batch stream on real text, single thread: windows/s and pieces/s of
 * `PretrainBatcher` (read, gunzip, leak check, tokenize, window, bucket, mask, pad), next to the
 * tokenizer alone on the same paragraphs, so the ratio shows what the rest of the pipeline costs.
 * CPU time is reported beside wall time: on a shared machine, wall time also counts other jobs.
 *
 *   npx tsx scripts/pretrain/batcher-throughput.ts [--batches N] [--max-length L] [--batch-size B]
 *
 * Reads the kowiki parts and KMOU val under ../shared/data and the default KoBERT tokenizer.
 */
import path from 'node:path';

import { readKmouCorpus } from '../../lib/corpus/index.js';
import { PretrainBatcher } from '../../lib/pretrain/batcher.js';
import { ValidationLeakGuard } from '../../lib/pretrain/leak-guard.js';
import { readParagraphs } from '../../lib/pretrain/text-stream.js';
import { Tokenizer } from '../../lib/tokenizer/index.js';
import { defaultTokenizerFiles } from '../../lib/train/config.js';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}
const batchCount = option('--batches', 3000);
const maxLength = option('--max-length', 128);
const batchSize = option('--batch-size', 32);

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const data = path.resolve(root, '..', 'shared', 'data');
const files = [0, 1, 2, 3].map((i) => path.join(data, 'kowiki-text', `kowiki-part-0${i}.txt.gz`));
const tokenizerFiles = defaultTokenizerFiles();
if (tokenizerFiles === null) throw new Error(`no KoBERT tokenizer under ${data}`);
const tokenizer = await Tokenizer.load(tokenizerFiles.model, { vocab: tokenizerFiles.vocab });
const val = await readKmouCorpus(path.join(data, 'kmou-ner', 'val'));
const guard = new ValidationLeakGuard(val.map((s) => s.text));

function clock(): () => { wall: number; cpu: number } {
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  return () => {
    const cpu = process.cpuUsage(cpu0);
    return { wall: (performance.now() - wall0) / 1000, cpu: (cpu.user + cpu.system) / 1e6 };
  };
}

const batcher = new PretrainBatcher({ files, tokenizer, guard, maxLength, batchSize, seed: 1 });
let stop = clock();
let firstBatch = 0;
let rows = 0;
let pieces = 0;
let cells = 0;
let masked = 0;
let paragraphs = 0;
for await (const batch of batcher.batches()) {
  if (rows === 0) firstBatch = stop().wall;
  rows += batch.shape[0];
  cells += batch.shape[0] * batch.shape[1];
  for (const length of batch.lengths) pieces += length - 2;
  masked += batch.maskedCount;
  if (batch.next.stats.batches >= batchCount) {
    paragraphs = batch.next.stats.paragraphs;
    break;
  }
}
const b = stop();
const perCpu = (x: number): string => Math.round(x / b.cpu).toLocaleString('en-US');
const perWall = (x: number): string => Math.round(x / b.wall).toLocaleString('en-US');
console.log(
  `batcher (maxLength ${maxLength}, batch ${batchSize}, buffer ${batcher.config.bufferWindows}): ` +
    `${batchCount} batches, ${rows} windows, ${pieces} pieces from ${paragraphs} paragraphs ` +
    `in ${b.wall.toFixed(1)} s wall / ${b.cpu.toFixed(1)} s CPU; first batch after ` +
    `${firstBatch.toFixed(2)} s`,
);
console.log(
  `  ${perCpu(rows)} windows/s and ${perCpu(pieces)} pieces/s per CPU second ` +
    `(${perWall(rows)} and ${perWall(pieces)} per wall second); ` +
    `padding: ${((100 * (pieces + 2 * rows)) / cells).toFixed(1)}% of cells are real; ` +
    `${((100 * masked) / pieces).toFixed(2)}% of pieces masked`,
);

// The tokenizer alone on the same paragraphs (read first, so reading is not timed).
const texts: string[] = [];
for await (const p of readParagraphs(files)) {
  texts.push(p.text);
  if (texts.length >= paragraphs) break;
}
stop = clock();
let tokenized = 0;
for (const text of texts) tokenized += tokenizer.encode(text).ids.length;
const t = stop();
console.log(
  `tokenizer alone: ${texts.length} paragraphs, ${tokenized} pieces in ${t.cpu.toFixed(1)} s CPU: ` +
    `${Math.round(tokenized / t.cpu).toLocaleString('en-US')} pieces/s; ` +
    `the batcher costs ${(b.cpu / t.cpu).toFixed(2)}× the tokenizer's CPU time`,
);
