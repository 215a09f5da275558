/**
 * The exact-span entity F1 that a perfect piece tagger could reach: gold spans → BIO labels
 * over koner's tokenizer pieces → decoded back to spans, with and without boundary
 * refinement → compared with the gold spans by exact (start, end, label).
 *
 *   npx tsx scripts/bench/alignment-ceiling.ts [sharedDir]
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { readKmouCorpus } from '../../lib/corpus/kmou.js';
import type { KmouSentence } from '../../lib/corpus/types.js';
import {
  addAlignmentStats,
  alignEntities,
  emptyAlignmentStats,
  type PieceOffset,
} from '../../lib/labels/align.js';
import { decodeEntities, type DecodeOptions } from '../../lib/labels/decode.js';
import { Tokenizer } from '../../lib/tokenizer/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const shared = path.resolve(process.argv[2] ?? path.join(repoRoot, '../shared'));
const data = path.join(shared, 'data');

interface Score {
  gold: number;
  predicted: number;
  correct: number;
}

function f1({ gold, predicted, correct }: Score): string {
  const p = predicted ? correct / predicted : 0;
  const r = gold ? correct / gold : 0;
  const f = p + r ? (2 * p * r) / (p + r) : 0;
  return `P ${(100 * p).toFixed(2)}  R ${(100 * r).toFixed(2)}  F1 ${(100 * f).toFixed(2)}`;
}

const pct = (n: number, of: number): string => `${n} (${((100 * n) / of).toFixed(2)}%)`;

const tokenizer = await Tokenizer.load(
  path.join(data, 'kobert-tokenizer/tokenizer_78b3253a26.model'),
  { vocab: path.join(data, 'kobert-tokenizer/kobertvocab_f38b8a4d6d.json') },
);

const variants: [string, DecodeOptions['refine']][] = [
  ['whole pieces (no refinement)', false],
  ['refined, general rules only', { table: null }],
  ['refined (learned table + rules)', true],
];

for (const split of ['train', 'val']) {
  const started = performance.now();
  const sentences: KmouSentence[] = await readKmouCorpus(path.join(data, 'kmou-ner', split));
  const stats = emptyAlignmentStats();
  const scores = variants.map((): Score => ({ gold: 0, predicted: 0, correct: 0 }));
  let pieces = 0;
  let spaced = 0;
  for (const sentence of sentences) {
    const { text, entities } = sentence;
    const offsets: PieceOffset[] = tokenizer.encode(text).offsets;
    pieces += offsets.length;
    const { labels, stats: sentenceStats } = alignEntities(text, offsets, entities);
    addAlignmentStats(stats, sentenceStats);
    const gold = new Set(entities.map((e) => `${e.start}:${e.end}:${e.label}`));
    spaced += entities.filter((e) => /^\s|\s$/.test(e.text)).length;
    variants.forEach(([, refine], v) => {
      const decoded = decodeEntities(text, offsets, labels, { refine });
      scores[v].gold += gold.size;
      scores[v].predicted += decoded.length;
      scores[v].correct += decoded.filter((d) =>
        gold.has(`${d.start}:${d.end}:${d.entity}`),
      ).length;
    });
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `\n${split}: ${sentences.length} sentences, ${pieces} pieces, ${stats.entities} entities (${seconds.toFixed(1)} s)`,
  );
  console.log(`  boundary inside a piece: ${pct(stats.straddling, stats.entities)} entities`);
  console.log(`    start inside first piece: ${pct(stats.startInsidePiece, stats.entities)}`);
  console.log(`    end inside last piece:    ${pct(stats.endInsidePiece, stats.entities)}`);
  console.log(`  entities with no piece of their own (lost): ${stats.lost}`);
  console.log(`  gold entities with outer whitespace (never exact): ${spaced}`);
  console.log(
    `  exact-span ceiling (${split === 'train' ? 'table learned here: in-sample' : 'held out'}):`,
  );
  variants.forEach(([name], v) => {
    const s = scores[v];
    console.log(
      `    ${name.padEnd(32)} correct ${s.correct} / gold ${s.gold} / predicted ${s.predicted}  ${f1(s)}`,
    );
  });
}
