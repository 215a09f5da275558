/**
 * The accuracy ablation table of the README: one row per training run (or packaged model),
 * its validation scores as the trainer recorded them for its best checkpoint (`best/eval.json`:
 * entity F1 by exact span and type, the reference project's token macro F1, LOC and POH, the
 * weakest types), its training wall time (`metrics.jsonl`'s end event), and its inference speed
 * measured here: the 931 validation sentences at batch 32 with 2 threads, best of 3 after a
 * warm-up, every model in this one process so the rows compare.
 *
 *   npx tsx scripts/stats/ablation.ts [--dtype bfloat16] <name>=<run-or-model-dir> ...
 *
 * Each model tags in its default precision (float32, or its config's `inference_dtype` where the
 * CPU has it); `--dtype` measures the speed in that precision instead (NerModel.load's `dtype`).
 * The scores stay the recorded ones.
 *
 * A run directory holds best/ and metrics.jsonl; a packaged model directory (models/kmou-small)
 * holds eval.json, and its training time comes from a `trainSeconds` number in that eval.json
 * when present.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { readKmouCorpus } from '../../lib/corpus/kmou.js';
import { NerModel } from '../../lib/model/ner-model.js';
import { ENCODER_DTYPES, type EncoderDtype } from '../../lib/native.js';
import { readJsonFile } from '../../lib/text-file.js';
import { readMetrics } from '../../lib/train/metrics-log.js';

interface Scores {
  tokenMacroF1: number;
  entity: { f1: number };
  perType: Record<string, { f1: number }>;
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const valDir = path.resolve(repoRoot, '../shared/data/kmou-ner/val');
const BATCH = 32;
const THREADS = 2;
const ROUNDS = 3;

const args = process.argv.slice(2);
let dtype: EncoderDtype | undefined;
if (args[0] === '--dtype') {
  if (!ENCODER_DTYPES.includes(args[1] as EncoderDtype)) {
    console.error(`--dtype expects one of ${ENCODER_DTYPES.join(', ')}; got ${args[1]}`);
    process.exit(2);
  }
  dtype = args[1] as EncoderDtype;
  args.splice(0, 2);
}
const specs = args.map((arg) => {
  const eq = arg.indexOf('=');
  if (eq < 1) {
    console.error(`usage: npx tsx scripts/stats/ablation.ts <name>=<dir> ...; got ${arg}`);
    process.exit(2);
  }
  return { name: arg.slice(0, eq), dir: path.resolve(arg.slice(eq + 1)) };
});
if (specs.length === 0) {
  console.error('usage: npx tsx scripts/stats/ablation.ts <name>=<run-or-model-dir> ...');
  process.exit(2);
}

/** The model directory, its scores and training seconds (null when not recorded). */
async function describe(
  dir: string,
): Promise<{ model: string; scores: Scores; seconds: number | null }> {
  if (existsSync(path.join(dir, 'best', 'eval.json'))) {
    const model = path.join(dir, 'best');
    const scores = (await readJsonFile(path.join(model, 'eval.json'))) as Scores;
    const { events } = await readMetrics(dir);
    const end = events.findLast((e) => e.type === 'end');
    return { model, scores, seconds: end?.type === 'end' ? end.elapsedSeconds : null };
  }
  if (existsSync(path.join(dir, 'eval.json'))) {
    const file = path.join(dir, 'eval.json');
    const scores = (await readJsonFile(file)) as Scores & { trainSeconds?: number };
    return { model: dir, scores, seconds: scores.trainSeconds ?? null };
  }
  throw new Error(`${dir}: neither a run directory (best/eval.json) nor a model (eval.json)`);
}

async function sentencesPerSecond(dir: string, texts: string[]): Promise<number> {
  const model = await NerModel.load(dir, { threads: THREADS, dtype });
  try {
    await model.predict(texts.slice(0, 64), { batchSize: BATCH });
    let best = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const start = process.hrtime.bigint();
      await model.predict(texts, { batchSize: BATCH });
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      best = Math.max(best, texts.length / seconds);
    }
    return best;
  } finally {
    await model.dispose();
  }
}

const texts = (await readKmouCorpus(valDir)).map((s) => s.text);
const pct = (x: number | undefined) => (x === undefined ? '–' : (100 * x).toFixed(2));
const time = (s: number | null) => (s === null ? '–' : `${Math.round(s)} s`);
console.log(
  `| run | entity F1 | token macro F1 | LOC F1 | POH F1 | training time | sentences/s (batch ${BATCH}, ${THREADS} threads${dtype ? `, ${dtype}` : ''}) |`,
);
console.log('|---|---|---|---|---|---|---|');
for (const { name, dir } of specs) {
  const { model, scores, seconds } = await describe(dir);
  const speed = await sentencesPerSecond(model, texts);
  console.log(
    `| ${name} | ${pct(scores.entity.f1)} | ${pct(scores.tokenMacroF1)} | ` +
      `${pct(scores.perType.LOC?.f1)} | ${pct(scores.perType.POH?.f1)} | ${time(seconds)} | ` +
      `${speed.toFixed(1)} |`,
  );
}
