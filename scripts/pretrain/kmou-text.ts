/**
 * Writes the KMOU training sentences as pretraining text (one paragraph per line), for
 * task-adaptive pretraining: `koner pretrain` continuing the Wikipedia encoder on the fine-tuning
 * corpus' own text, without its labels (configs/pretrain-ablation-tapt.json). Each file's
 * sentences are joined, in order, into lines of about 300 characters (so windows carry
 * context, as Wikipedia paragraphs do), and the lines are shuffled with a fixed seed. Only
 * training sentences are read; `koner pretrain` still drops any line that shares a 20-character
 * run with a validation sentence.
 *
 *   npx tsx scripts/pretrain/kmou-text.ts <kmou train dir> <out.txt>
 */
import { writeFileSync } from 'node:fs';

import { readKmouCorpus } from '../../lib/corpus/index.js';
import { Rng } from '../../lib/train/rng.js';

const LINE_CHARS = 300;
const SEED = 7;

const [trainDir, out] = process.argv.slice(2);
if (!trainDir || !out) {
  console.error('usage: npx tsx scripts/pretrain/kmou-text.ts <kmou train dir> <out.txt>');
  process.exit(2);
}
const sentences = await readKmouCorpus(trainDir);
const byFile = new Map<string, string[]>();
for (const s of sentences) {
  const texts = byFile.get(s.file) ?? [];
  texts.push(s.text.trim());
  byFile.set(s.file, texts);
}
const lines: string[] = [];
for (const texts of byFile.values()) {
  let line = '';
  for (const text of texts) {
    if (line && line.length + text.length > LINE_CHARS) {
      lines.push(line);
      line = '';
    }
    line = line ? `${line} ${text}` : text;
  }
  if (line) lines.push(line);
}
Rng.fromSeed(SEED, 0).shuffle(lines);
writeFileSync(out, `${lines.join('\n')}\n`);
console.log(
  `${sentences.length} sentences of ${byFile.size} files → ${lines.length} lines in ${out}`,
);
