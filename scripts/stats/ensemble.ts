/**
 * How good a distillation teacher is: each model's, and the ensemble's, validation scores when
 * every piece takes the tag of highest CRF marginal — the distribution `koner train`'s `distill`
 * teaches (lib/train/distill.ts), so the rows compare what the student is shown. Viterbi decoding
 * (`koner eval`) usually scores a little higher than this.
 *
 *   npx tsx scripts/stats/ensemble.ts <model-dir> <model-dir> ...
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { readKmouCorpus } from '../../lib/corpus/kmou.js';
import { decodeEntities } from '../../lib/labels/decode.js';
import { KMOU_SCHEME } from '../../lib/labels/scheme.js';
import { readModelConfig } from '../../lib/model/config.js';
import { resolveTokenizerFiles } from '../../lib/model/tokenizer-files.js';
import { Tokenizer } from '../../lib/tokenizer/index.js';
import { prepareExamples } from '../../lib/train/data.js';
import { addTeacherTargets } from '../../lib/train/distill.js';
import { scorePredictions, type SentencePrediction } from '../../lib/train/evaluate.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const valDir = path.resolve(repoRoot, '../shared/data/kmou-ner/val');
const MAX_LENGTH = 128;

const dirs = process.argv.slice(2).map((d) => path.resolve(d));
if (dirs.length === 0) {
  console.error('usage: npx tsx scripts/stats/ensemble.ts <model-dir> <model-dir> ...');
  process.exit(2);
}
const first = await readModelConfig(dirs[0]);
const files = resolveTokenizerFiles(dirs[0], first);
const tokenizer = await Tokenizer.load(files.model, { vocab: files.vocab });
const val = await readKmouCorpus(valDir);
const encodings = val.map((s) => tokenizer.encode(s.text));
const K = KMOU_SCHEME.labels.length;

/** Validation scores of the mean marginals of `teachers`, each piece decoded on its own. */
async function score(teachers: string[]) {
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

const pct = (x: number) => (100 * x).toFixed(2);
console.log('| teacher | entity F1 | token macro F1 | LOC F1 | POH F1 |');
console.log('|---|---|---|---|---|');
const rows = dirs.length > 1 ? [...dirs.map((d) => [d]), dirs] : [dirs];
for (const teachers of rows) {
  const e = await score(teachers);
  const name = teachers.map((d) => path.relative(repoRoot, d)).join(' + ');
  console.log(
    `| ${name} | ${pct(e.entity.f1)} | ${pct(e.tokenMacroF1)} | ` +
      `${pct(e.perType.LOC.f1)} | ${pct(e.perType.POH.f1)} |`,
  );
}
