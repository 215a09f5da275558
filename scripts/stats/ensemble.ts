/**
 * How good an ensemble (and a distillation teacher) is, on the validation set. Each row is a
 * model or a set of them, scored two ways:
 * - "mean marginals": every piece takes the tag of highest mean CRF marginal — the distribution
 *   `distill.combine: "marginals"` teaches (lib/train/distill.ts);
 * - "joint Viterbi": one CRF over the mean emissions and transitions, decoded as `koner eval`
 *   decodes (BIO constraints, refined spans) — the ensemble `distill.combine: "emissions"`
 *   teaches, and for a single model exactly its `koner eval` scores.
 *
 *   npx tsx scripts/stats/ensemble.ts [--subsets] <model-dir> <model-dir> ...
 *
 * Rows: each model, then all of them together; with `--subsets`, every subset of two or more.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { readKmouCorpus } from '../../lib/corpus/kmou.js';
import { decodeEntities } from '../../lib/labels/decode.js';
import { KMOU_SCHEME } from '../../lib/labels/scheme.js';
import { readModelConfig } from '../../lib/model/config.js';
import { loadEnsemble } from '../../lib/model/ensemble.js';
import { NerModel } from '../../lib/model/ner-model.js';
import { resolveTokenizerFiles } from '../../lib/model/tokenizer-files.js';
import { Tokenizer } from '../../lib/tokenizer/index.js';
import { prepareExamples } from '../../lib/train/data.js';
import { addTeacherTargets } from '../../lib/train/distill.js';
import {
  evaluateModel,
  scorePredictions,
  type SentencePrediction,
} from '../../lib/train/evaluate.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const valDir = path.resolve(repoRoot, '../shared/data/kmou-ner/val');
const MAX_LENGTH = 128;

const args = process.argv.slice(2);
const subsets = args.includes('--subsets');
const dirs = args.filter((a) => a !== '--subsets').map((d) => path.resolve(d));
if (dirs.length === 0) {
  console.error('usage: npx tsx scripts/stats/ensemble.ts [--subsets] <model-dir> <model-dir> ...');
  process.exit(2);
}
const first = await readModelConfig(dirs[0]);
const files = resolveTokenizerFiles(dirs[0], first);
const tokenizer = await Tokenizer.load(files.model, { vocab: files.vocab });
const val = await readKmouCorpus(valDir);
const encodings = val.map((s) => tokenizer.encode(s.text));
const K = KMOU_SCHEME.labels.length;

/** Validation scores of the mean marginals of `teachers`, each piece decoded on its own. */
async function meanMarginals(teachers: string[]) {
  const data = prepareExamples(val, tokenizer, { scheme: KMOU_SCHEME, maxLength: MAX_LENGTH });
  await addTeacherTargets(teachers, data, val, tokenizer, KMOU_SCHEME, 32);
  const tags = encodings.map((e) => new Array<string | undefined>(e.offsets.length));
  for (const example of data.examples) {
    const rows = example.softTargets!;
    // Row 0 is [CLS]; pieces start..end follow; a piece an earlier window covered keeps its tag.
    for (let p = example.start; p < example.end; p++) {
      const row = p - example.start + 1;
      if (tags[example.sentence][p] !== undefined) continue;
      let best = 0;
      for (let k = 1; k < K; k++) if (rows[row * K + k] > rows[row * K + best]) best = k;
      tags[example.sentence][p] = KMOU_SCHEME.labels[best];
    }
  }
  const predictions: SentencePrediction[] = val.map((sentence, i) => {
    const pieceTags = tags[i].map((t) => t ?? 'O');
    const entities = decodeEntities(sentence.text, encodings[i].offsets, pieceTags);
    return { offsets: encodings[i].offsets, tags: pieceTags, entities };
  });
  return scorePredictions(val, predictions, KMOU_SCHEME);
}

/**
 * Validation scores of `teachers` loaded as one model (lib/model/ensemble.ts: one CRF over their
 * mean emissions and transitions), decoded as `koner eval` decodes.
 */
async function jointViterbi(teachers: string[]) {
  const ensemble = await loadEnsemble(teachers, first);
  try {
    // A view over the ensemble: disposing it lets go, so the ensemble is freed here.
    const model = NerModel.fromNative(ensemble, first, tokenizer, dirs[0]);
    return await evaluateModel(model, val, KMOU_SCHEME);
  } finally {
    await ensemble.dispose();
  }
}

/** Every subset of `items` with at least two members, smaller ones first. */
function allSubsets<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let mask = 1; mask < 1 << items.length; mask++) {
    const subset = items.filter((_, i) => mask & (1 << i));
    if (subset.length > 1) out.push(subset);
  }
  return out.sort((a, b) => a.length - b.length);
}

const pct = (x: number) => (100 * x).toFixed(2);
const cells = (e: Awaited<ReturnType<typeof jointViterbi>>) =>
  `${pct(e.entity.f1)} / ${pct(e.tokenMacroF1)}, ${pct(e.perType.LOC.f1)}, ${pct(e.perType.POH.f1)}`;
console.log(
  '| models | joint Viterbi: entity F1 / token macro F1, LOC, POH | mean marginals: the same |',
);
console.log('|---|---|---|');
const sets = [
  ...dirs.map((d) => [d]),
  ...(subsets ? allSubsets(dirs) : dirs.length > 1 ? [dirs] : []),
];
for (const teachers of sets) {
  const name = teachers.map((d) => path.relative(repoRoot, d)).join(' + ');
  console.log(
    `| ${name} | ${cells(await jointViterbi(teachers))} | ${cells(await meanMarginals(teachers))} |`,
  );
}
