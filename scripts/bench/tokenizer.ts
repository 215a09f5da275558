/**
 * Tokenizer throughput: our TypeScript tokenizer against SentencePiece's Python binding on every
 * sentence of the KMOU corpus, both measured in this run.
 *
 *   npx tsx scripts/bench/tokenizer.ts [--rounds N]      (or: npm run bench:tokenizer)
 *
 * Each side loads once (not timed), runs one untimed warm-up pass, then N timed passes over all
 * sentences; the best pass is reported. Python times its own loop with time.perf_counter, so
 * process start-up and the transfer of sentences are excluded.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Tokenizer } from '../../lib/tokenizer/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const shared = path.resolve(repoRoot, '../shared');
const modelPath = path.join(shared, 'data/kobert-tokenizer/tokenizer_78b3253a26.model');
const vocabPath = path.join(shared, 'data/kobert-tokenizer/kobertvocab_f38b8a4d6d.json');
const corpusDir = path.join(shared, 'data/kmou-ner');
const python = '/usr/bin/python3';

const roundsArg = process.argv.indexOf('--rounds');
const rounds = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 5;

/** The raw sentence (second `## ` line) of every block, train files then val files. */
function corpusSentences(): string[] {
  const out: string[] = [];
  for (const split of ['train', 'val']) {
    const dir = path.join(corpusDir, split);
    for (const name of readdirSync(dir)
      .filter((n) => n.endsWith('.txt'))
      .sort()) {
      let text = readFileSync(path.join(dir, name), 'utf8');
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      for (const block of text.split('\n\n')) {
        const heads = block.split('\n').filter((line) => line.startsWith('## '));
        if (heads.length >= 2) out.push(heads[1].slice(3));
      }
    }
  }
  return out;
}

// Python's side: the same sentences arrive as JSON on stdin; timings go back as JSON on stdout.
const PYTHON_BENCH = `
import json, sys, time
import sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
rounds = int(sys.argv[2])
sentences = json.load(sys.stdin)

def pieces(s):
    return sp.encode(s, out_type=str)

def proto(s):
    return sp.encode_as_immutable_proto(s)

def proto_read(s):
    return [(p.piece, p.id, p.begin, p.end) for p in sp.encode_as_immutable_proto(s).pieces]

out = {}
for name, fn in (('pieces', pieces), ('proto', proto), ('proto_read', proto_read)):
    for s in sentences:
        fn(s)
    best = float('inf')
    for _ in range(rounds):
        t0 = time.perf_counter()
        for s in sentences:
            fn(s)
        best = min(best, time.perf_counter() - t0)
    out[name] = best
json.dump(out, sys.stdout)
`;

function timeOurs(tokenizer: Tokenizer, sentences: string[]): number {
  let sink = 0;
  for (const s of sentences) sink += tokenizer.encode(s).ids.length;
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (const s of sentences) sink += tokenizer.encode(s).ids.length;
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  if (sink === 0) throw new Error('no pieces produced');
  return best;
}

async function main(): Promise<void> {
  if (!existsSync(shared)) {
    console.error(`shared data not found at ${shared}`);
    process.exit(1);
  }
  const sentences = corpusSentences();
  const tokenizer = await Tokenizer.load(modelPath, { vocab: vocabPath });
  const ours = timeOurs(tokenizer, sentences);
  const py = JSON.parse(
    execFileSync(python, ['-c', PYTHON_BENCH, modelPath, String(rounds)], {
      input: JSON.stringify(sentences),
      maxBuffer: 1 << 20,
      encoding: 'utf8',
    }),
  ) as Record<'pieces' | 'proto' | 'proto_read', number>;

  const rate = (seconds: number): number => sentences.length / seconds;
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(9);
  const oursRate = rate(ours);
  const rows: Array<[string, number]> = [
    ['python encode(out_type=str)        pieces', rate(py.pieces)],
    ['python encode_as_immutable_proto   pieces+offsets', rate(py.proto)],
    ['python   same, read into tuples    pieces+ids+offsets', rate(py.proto_read)],
  ];
  const line = (label: string, r: number): string => `  ${label.padEnd(55)} ${fmt(r)} sentences/s`;
  console.log(`${sentences.length} sentences, best of ${rounds} passes each`);
  console.log(line('ours   Tokenizer.encode              pieces+ids+offsets', oursRate));
  for (const [label, r] of rows) {
    console.log(`${line(label, r)}   ours/python = ${(oursRate / r).toFixed(2)}x`);
  }
  const fastest = Math.max(...rows.map(([, r]) => r));
  console.log(`ratio ours / fastest python: ${(oursRate / fastest).toFixed(2)}x`);
}

await main();
