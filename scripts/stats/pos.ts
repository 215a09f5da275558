/**
 * What the POS targets look like on KMOU: how the morpheme lines align to the raw sentences
 * (exact vs fallback characters), how pieces meet morphemes, the class distribution, and the
 * accuracy on val of the trivial baseline a POS head has to beat — the most frequent POS of
 * each piece id on train (the majority class for ids train never saw).
 *
 *   npx tsx scripts/stats/pos.ts [sharedDir]
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { readKmouFile } from '../../lib/corpus/kmou.js';
import {
  addMorphemeStats,
  emptyMorphemeStats,
  type MorphemeAlignmentStats,
} from '../../lib/corpus/morphemes.js';
import type { KmouSentence } from '../../lib/corpus/types.js';
import {
  emptyPosTargetStats,
  POS_IGNORE,
  POS_TAGS,
  posTargets,
  type PosTargetStats,
} from '../../lib/labels/pos.js';
import { Tokenizer } from '../../lib/tokenizer/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const shared = path.resolve(process.argv[2] ?? path.join(repoRoot, '../shared'));
const data = path.join(shared, 'data');

const pct = (n: number, of: number): string => `${n} (${((100 * n) / of).toFixed(2)}%)`;

async function readSplit(
  split: string,
): Promise<{ sentences: KmouSentence[]; morphemes: MorphemeAlignmentStats }> {
  const dir = path.join(data, 'kmou-ner', split);
  const names = (await readdir(dir)).filter((n) => n.endsWith('.txt')).sort();
  const sentences: KmouSentence[] = [];
  const morphemes = emptyMorphemeStats();
  for (const name of names) {
    const result = await readKmouFile(path.join(dir, name));
    sentences.push(...result.sentences);
    addMorphemeStats(morphemes, result.morphemeStats);
  }
  return { sentences, morphemes };
}

const tokenizer = await Tokenizer.load(
  path.join(data, 'kobert-tokenizer/tokenizer_78b3253a26.model'),
  { vocab: path.join(data, 'kobert-tokenizer/kobertvocab_f38b8a4d6d.json') },
);
const K = POS_TAGS.length;

interface SplitTargets {
  ids: Int32Array[];
  targets: Int32Array[];
  stats: PosTargetStats;
  /** How many pieces each morpheme's characters fall into: index 1, 2, 3 = 3 or more. */
  piecesPerMorpheme: number[];
}

function targetsOf(sentences: readonly KmouSentence[]): SplitTargets {
  const out: SplitTargets = {
    ids: [],
    targets: [],
    stats: emptyPosTargetStats(),
    piecesPerMorpheme: [0, 0, 0, 0],
  };
  for (const s of sentences) {
    const encoding = tokenizer.encode(s.text);
    out.ids.push(encoding.ids);
    out.targets.push(posTargets(s.text, encoding.offsets, s.morphemes, out.stats));
    let p = 0;
    for (const m of s.morphemes) {
      while (p < encoding.offsets.length && encoding.offsets[p][1] <= m.start) p++;
      let n = 0;
      for (let q = p; q < encoding.offsets.length && encoding.offsets[q][0] < m.end; q++) {
        if (encoding.offsets[q][1] > encoding.offsets[q][0]) n++;
      }
      out.piecesPerMorpheme[Math.min(Math.max(n, 0), 3)]++;
    }
  }
  return out;
}

const total = emptyMorphemeStats();
const splits: Record<string, SplitTargets> = {};
for (const split of ['train', 'val']) {
  const { sentences, morphemes } = await readSplit(split);
  addMorphemeStats(total, morphemes);
  const m = morphemes;
  console.log(`\n${split}: ${sentences.length} sentences, ${m.characters} non-space characters`);
  console.log(
    `  morpheme alignment: exact ${pct(m.exact, m.characters)}, fallback ${pct(m.fallback, m.characters)}, ` +
      `uncovered ${pct(m.uncovered, m.characters)}; ${m.dropped} morphemes dropped, ` +
      `${m.eojeolMismatches} sentences with an eojeol count mismatch`,
  );
  const t = targetsOf(sentences);
  splits[split] = t;
  const st = t.stats;
  console.log(
    `  pieces ${st.pieces}: ${pct(st.multiMorpheme, st.pieces)} span more than one morpheme, ` +
      `${pct(st.empty, st.pieces)} without a character, ${pct(st.uncovered, st.pieces)} uncovered`,
  );
  const morphemeCount = t.piecesPerMorpheme.reduce((a, b) => a + b, 0);
  console.log(
    `  morphemes ${morphemeCount}: in 1 piece ${pct(t.piecesPerMorpheme[1], morphemeCount)}, ` +
      `2 pieces ${pct(t.piecesPerMorpheme[2], morphemeCount)}, 3+ ${pct(t.piecesPerMorpheme[3], morphemeCount)}`,
  );
}
console.log(
  `\ntrain+val morpheme alignment: exact ${pct(total.exact, total.characters)}, ` +
    `fallback ${pct(total.fallback, total.characters)}, uncovered ${pct(total.uncovered, total.characters)}`,
);

// Class distribution and the per-piece-id majority baseline.
const byId = new Map<number, Int32Array>();
const classCounts = new Int32Array(K);
const train = splits.train;
train.targets.forEach((targets, s) => {
  targets.forEach((y, p) => {
    if (y === POS_IGNORE) return;
    classCounts[y]++;
    const id = train.ids[s][p];
    let counts = byId.get(id);
    if (!counts) byId.set(id, (counts = new Int32Array(K)));
    counts[y]++;
  });
});
const argmax = (a: Int32Array): number => a.reduce((best, v, k) => (v > a[best] ? k : best), 0);
const majority = argmax(classCounts);
const trainTargets = classCounts.reduce((a, b) => a + b, 0);
console.log(
  `\ntrain POS classes (${trainTargets} targets): ` +
    [...classCounts.entries()]
      .sort((a, b) => b[1] - a[1])
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${POS_TAGS[k]} ${((100 * n) / trainTargets).toFixed(2)}%`)
      .join(', '),
);

let n = 0;
let byPiece = 0;
let byMajority = 0;
let unseen = 0;
let unseenRight = 0;
const val = splits.val;
val.targets.forEach((targets, s) => {
  targets.forEach((y, p) => {
    if (y === POS_IGNORE) return;
    n++;
    const counts = byId.get(val.ids[s][p]);
    const guess = counts ? argmax(counts) : majority;
    if (!counts) unseen++;
    if (guess === y) {
      byPiece++;
      if (!counts) unseenRight++;
    }
    if (y === majority) byMajority++;
  });
});
console.log(`\nval POS accuracy over ${n} piece targets:`);
console.log(`  majority class (${POS_TAGS[majority]}): ${((100 * byMajority) / n).toFixed(2)}%`);
console.log(
  `  most frequent POS of the piece id on train: ${((100 * byPiece) / n).toFixed(2)}% ` +
    `(${unseen} pieces with ids unseen on train, ${unseenRight} of them right)`,
);
