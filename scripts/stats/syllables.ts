/**
 * How the syllable numbering covers real text, and how many characters pieces have: the
 * figures behind the choices in lib/tokenizer/syllables.ts.
 *
 * - coverage: the share of characters (code points, whitespace left out) with a dedicated id
 *   (Hangul, jamo, ASCII, listed symbol), a hash bucket, or the unknown id, on KMOU train and on
 *   the first 100,000 kowiki paragraphs; the most frequent bucketed and unknown characters;
 * - characters per piece on KMOU train and val and on 10,000 kowiki paragraphs, to choose
 *   maxSyllables.
 *
 *   npx tsx scripts/stats/syllables.ts [sharedDir] [kowikiParagraphs]
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';

import { readKmouCorpus } from '../../lib/corpus/kmou.js';
import { Tokenizer } from '../../lib/tokenizer/index.js';
import {
  DEFAULT_MAX_SYLLABLES,
  pieceSyllables,
  syllableId,
  syllableKind,
  type SyllableKind,
} from '../../lib/tokenizer/syllables.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const shared = path.resolve(process.argv[2] ?? path.join(repoRoot, '../shared'));
const wikiParagraphs = Number(process.argv[3] ?? 100_000);
const data = path.join(shared, 'data');

const pct = (n: number, of: number): string => `${((100 * n) / of).toFixed(3)}%`;

class Coverage {
  readonly kinds = new Map<SyllableKind, number>();
  readonly chars = new Map<number, number>();
  total = 0;

  add(text: string): void {
    for (const ch of text) {
      if (/\s/.test(ch)) continue;
      const codePoint = ch.codePointAt(0)!;
      const kind = syllableKind(syllableId(codePoint));
      this.kinds.set(kind, (this.kinds.get(kind) ?? 0) + 1);
      this.chars.set(codePoint, (this.chars.get(codePoint) ?? 0) + 1);
      this.total++;
    }
  }

  report(name: string): void {
    const n = (kind: SyllableKind): number => this.kinds.get(kind) ?? 0;
    const dedicated = n('hangul') + n('jamo') + n('ascii') + n('symbol');
    console.log(`\n${name}: ${this.total} characters (whitespace left out)`);
    console.log(
      `  dedicated ${pct(dedicated, this.total)} (Hangul ${pct(n('hangul'), this.total)}, ` +
        `jamo ${pct(n('jamo'), this.total)}, ASCII ${pct(n('ascii'), this.total)}, ` +
        `symbols ${pct(n('symbol'), this.total)}), bucket ${pct(n('bucket'), this.total)}, ` +
        `unknown ${pct(n('unknown'), this.total)}`,
    );
    const hangul = [...this.chars.keys()].filter((c) => syllableKind(syllableId(c)) === 'hangul');
    console.log(`  distinct Hangul syllables: ${hangul.length} of 11172`);
    // Bucket purity: the share of bucketed characters that are their bucket's most frequent one.
    const best = new Map<number, number>();
    for (const [c, count] of this.chars) {
      const id = syllableId(c);
      if (syllableKind(id) === 'bucket') best.set(id, Math.max(best.get(id) ?? 0, count));
    }
    const pure = [...best.values()].reduce((a, b) => a + b, 0);
    console.log(
      `  buckets used: ${best.size}, purity ${pct(pure, n('bucket'))} of bucketed characters`,
    );
    for (const kind of ['bucket', 'unknown'] as const) {
      const top = [...this.chars.entries()]
        .filter(([c]) => syllableKind(syllableId(c)) === kind)
        .sort((a, b) => b[1] - a[1]);
      const shown = top
        .slice(0, 25)
        .map(([c, count]) => `${JSON.stringify(String.fromCodePoint(c))}×${count}`);
      console.log(`  most frequent ${kind} (${top.length} distinct): ${shown.join(' ')}`);
    }
  }
}

const kmou = await readKmouCorpus(path.join(data, 'kmou-ner/train'));
const kmouCoverage = new Coverage();
for (const s of kmou) kmouCoverage.add(s.text);
kmouCoverage.report('KMOU train');

const wikiCoverage = new Coverage();
let paragraphs = 0;
const lines = createInterface({
  input: createReadStream(path.join(data, 'kowiki-text/kowiki-part-00.txt.gz')).pipe(
    createGunzip(),
  ),
  crlfDelay: Infinity,
});
/** Paragraphs kept for the characters-per-piece count (tokenizing all of them would be slow). */
const WIKI_PIECE_PARAGRAPHS = 10_000;
const wikiTexts: string[] = [];
for await (const line of lines) {
  if (paragraphs >= wikiParagraphs) break;
  wikiCoverage.add(line);
  if (paragraphs < WIKI_PIECE_PARAGRAPHS) wikiTexts.push(line);
  paragraphs++;
}
lines.close();
wikiCoverage.report(`kowiki, first ${paragraphs} paragraphs of part 00`);
const both = new Coverage();
for (const c of [kmouCoverage, wikiCoverage]) {
  for (const [kind, n] of c.kinds) both.kinds.set(kind, (both.kinds.get(kind) ?? 0) + n);
  both.total += c.total;
}
const d = (k: SyllableKind): number => both.kinds.get(k) ?? 0;
console.log(
  `\nKMOU train + kowiki together: dedicated ${pct(d('hangul') + d('jamo') + d('ascii') + d('symbol'), both.total)}, ` +
    `bucket ${pct(d('bucket'), both.total)}, unknown ${pct(d('unknown'), both.total)}`,
);

const tokenizer = await Tokenizer.load(
  path.join(data, 'kobert-tokenizer/tokenizer_78b3253a26.model'),
  { vocab: path.join(data, 'kobert-tokenizer/kobertvocab_f38b8a4d6d.json') },
);
const WIDE = 64;
const val = await readKmouCorpus(path.join(data, 'kmou-ner/val'));
const splits: [string, string[]][] = [
  ['KMOU train', kmou.map((s) => s.text)],
  ['KMOU val', val.map((s) => s.text)],
  [`kowiki, first ${wikiTexts.length} paragraphs`, wikiTexts],
];
for (const [split, texts] of splits) {
  const histogram: number[] = [];
  let pieces = 0;
  for (const text of texts) {
    const { counts } = pieceSyllables(text, tokenizer.encode(text).offsets, WIDE);
    for (const n of counts) {
      histogram[n] = (histogram[n] ?? 0) + 1;
      pieces++;
    }
  }
  const over = (k: number): number => histogram.slice(k + 1).reduce((a, b) => a + (b ?? 0), 0);
  const mean = histogram.reduce((sum, count, n) => sum + (count ?? 0) * n, 0) / pieces;
  console.log(`\n${split}: ${pieces} pieces, ${mean.toFixed(2)} characters on average`);
  console.log(
    '  characters: ' +
      histogram
        .map((count, n) => (count ? `${n}: ${count} (${pct(count, pieces)})` : ''))
        .filter((entry) => entry !== '')
        .join(', '),
  );
  console.log(
    `  more than 4: ${over(4)} (${pct(over(4), pieces)}), more than 6: ${over(6)} ` +
      `(${pct(over(6), pieces)}), more than ${DEFAULT_MAX_SYLLABLES} (cut by the default): ` +
      `${over(DEFAULT_MAX_SYLLABLES)} (${pct(over(DEFAULT_MAX_SYLLABLES), pieces)}); ` +
      `longest ${histogram.length - 1}`,
  );
}
