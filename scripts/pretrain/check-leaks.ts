/**
 * Checks a pretraining text for KMOU validation text, with the rule the pretraining pipeline
 * applies (`ValidationLeakGuard`): prints how many paragraphs share a 20-character run (spaces
 * removed) with a validation sentence or contain a short one whole, a few of them, and the time
 * the pass took.
 *
 *   npx tsx scripts/pretrain/check-leaks.ts [--val DIR] [FILE...]
 *
 * Defaults: the KMOU validation directory and the four kowiki parts under ../shared/data.
 */
import path from 'node:path';

import { readKmouCorpus } from '../../lib/corpus/index.js';
import { ValidationLeakGuard } from '../../lib/pretrain/leak-guard.js';
import { readParagraphs } from '../../lib/pretrain/text-stream.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const data = path.resolve(root, '..', 'shared', 'data');
const args = process.argv.slice(2);
let valDir = path.join(data, 'kmou-ner', 'val');
const valAt = args.indexOf('--val');
if (valAt >= 0) {
  valDir = args[valAt + 1];
  args.splice(valAt, 2);
}
const files =
  args.length > 0
    ? args
    : [0, 1, 2, 3].map((i) => path.join(data, 'kowiki-text', `kowiki-part-0${i}.txt.gz`));

const val = await readKmouCorpus(valDir);
const guard = new ValidationLeakGuard(val.map((s) => s.text));
console.log(
  `${val.length} validation sentences from ${valDir}: ${guard.keys} keys of ${guard.run} ` +
    `characters or whole sentences of ${guard.minSentence}+; ${guard.unchecked} sentences under ` +
    `${guard.minSentence} characters not checked`,
);

const started = performance.now();
const cpu0 = process.cpuUsage();
let guardMs = 0;
let paragraphs = 0;
let characters = 0;
const flagged: string[] = [];
let currentFile = -1;
for await (const p of readParagraphs(files)) {
  if (p.at.file !== currentFile) {
    currentFile = p.at.file;
    console.log(`reading ${files[currentFile]}`);
  }
  paragraphs++;
  characters += p.text.length;
  const t = performance.now();
  const match = guard.find(p.text);
  guardMs += performance.now() - t;
  if (match) {
    flagged.push(
      `${files[p.at.file]}:${p.at.line + 1}: shares "${match.shared}" with validation sentence ` +
        `${match.sentence} (${val[match.sentence].file}:${val[match.sentence].line}): ` +
        `"${val[match.sentence].text}"`,
    );
  }
}
const wallS = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpu0);
for (const line of flagged.slice(0, 20)) console.log(line);
if (flagged.length > 20) console.log(`… and ${flagged.length - 20} more`);
console.log(
  `${flagged.length} of ${paragraphs} paragraphs flagged (${characters} characters, ` +
    `${files.length} files); ${wallS.toFixed(1)} s wall, ` +
    `${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU, of which the guard ` +
    `${(guardMs / 1000).toFixed(1)} s`,
);
