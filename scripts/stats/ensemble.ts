/**
 * How good an ensemble (and a distillation teacher) is, on the validation set. Each row is a
 * model or a set of them, scored two ways:
 * - "mean marginals": every piece takes the tag of highest mean CRF marginal — the distribution
 *   `distill.combine: "marginals"` teaches (lib/train/distill.ts);
 * - "joint Viterbi": one CRF over the mean emissions and transitions, decoded as `koner eval`
 *   decodes (BIO constraints, refined spans) — the ensemble `distill.combine: "emissions"`
 *   teaches, and for a single model exactly its `koner eval` scores.
 *
 *   npx tsx scripts/stats/ensemble.ts [--subsets] [--sizes 3,4] [--joint-only] <model-dir> ...
 *
 * Rows: each model, then all of them together; with `--subsets`, every subset of two or more
 * (`--sizes`: only subsets of those sizes). `--joint-only` leaves out the mean marginals. Each
 * model's emissions are computed once: a subset's joint Viterbi decodes the cached ones, so many
 * subsets cost little more than their models.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { readKmouCorpus } from '../../lib/corpus/kmou.js';
import { decodeEntities } from '../../lib/labels/decode.js';
import { KMOU_SCHEME } from '../../lib/labels/scheme.js';
import { readModelConfig } from '../../lib/model/config.js';
import { EnsembleModel, meanCrfParameters } from '../../lib/model/ensemble.js';
import { loadNetwork } from '../../lib/model/load-network.js';
import { NerModel } from '../../lib/model/ner-model.js';
import { resolveTokenizerFiles } from '../../lib/model/tokenizer-files.js';
import type { NativeModel } from '../../lib/native.js';
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

const USAGE =
  'usage: npx tsx scripts/stats/ensemble.ts [--subsets] [--sizes 3,4] [--joint-only] <model-dir> ...';
const args = process.argv.slice(2);
const subsets = args.includes('--subsets');
const jointOnly = args.includes('--joint-only');
const sizesAt = args.indexOf('--sizes');
const sizes = sizesAt < 0 ? null : (args[sizesAt + 1] ?? '').split(',').map(Number);
if (sizes && !sizes.every((n) => Number.isInteger(n) && n > 1)) {
  console.error(`--sizes expects sizes of two or more, like 3,4\n${USAGE}`);
  process.exit(2);
}
const dirs = args
  .filter((a, i) => !a.startsWith('--') && (sizesAt < 0 || i !== sizesAt + 1))
  .map((d) => path.resolve(d));
if (dirs.length === 0) {
  console.error(USAGE);
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
 * `dir`'s network, its emissions kept by batch: every subset evaluates the same batches. A copy
 * goes out each time, since EnsembleModel sums into the first member's array.
 */
async function cachedNetwork(dir: string): Promise<NativeModel> {
  const network = await loadNetwork(dir, await readModelConfig(dir));
  const cache = new Map<string, Float32Array>();
  const emissions: NativeModel['emissions'] = async (ids, shape, lengths, inputs) => {
    const key = `${shape.join(',')}:${Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength).toString('base64')}`;
    let e = cache.get(key);
    if (!e) cache.set(key, (e = await network.emissions(ids, shape, lengths, inputs)));
    return e.slice();
  };
  return new Proxy(network, {
    get: (target, prop) => {
      if (prop === 'emissions') return emissions;
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}
const networks = new Map<string, NativeModel>();
for (const dir of dirs) networks.set(dir, await cachedNetwork(dir));

/**
 * Validation scores of `teachers` as one model (lib/model/ensemble.ts: one CRF over their mean
 * emissions and transitions), decoded as `koner eval` decodes.
 */
async function jointViterbi(teachers: string[]) {
  const members = teachers.map((d) => networks.get(d)!);
  const ensemble = new EnsembleModel(members, await meanCrfParameters(teachers, K));
  // A view that is not disposed: the cached networks outlive each subset.
  const model = NerModel.fromNative(ensemble, first, tokenizer, dirs[0]);
  return evaluateModel(model, val, KMOU_SCHEME);
}

/** Every subset of `items` with at least two members, smaller ones first. */
function allSubsets<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let mask = 1; mask < 1 << items.length; mask++) {
    const subset = items.filter((_, i) => mask & (1 << i));
    if (subset.length > 1 && (!sizes || sizes.includes(subset.length))) out.push(subset);
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
  const marginals = jointOnly ? '–' : cells(await meanMarginals(teachers));
  console.log(`| ${name} | ${cells(await jointViterbi(teachers))} | ${marginals} |`);
}
for (const network of networks.values()) await network.dispose();
