/**
 * Row (d): tokenizer throughput on every sentence of the KMOU corpus (training and validation):
 * koner's TypeScript SentencePiece (`Tokenizer.encode`: pieces, KoBERT ids and UTF-16 offsets)
 * against SentencePiece's Python binding (scripts/bench/python/tokenizer.py), interleaved pass by
 * pass, best of N. Python times its own loop, so start-up and the transfer of the sentences are
 * excluded on both sides.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { Tokenizer } from '../lib/tokenizer/index.js';
import { type BenchOptions, type BenchRow, interleaved, progress } from './common.js';
import { sharedDataDir, tokenizerFiles } from './inference.js';
import { PythonServer, pythonScript } from './python.js';

export interface TokenizerBenchOptions extends BenchOptions {
  /** Timed passes per side (default 5; --quick: 2), after one untimed warm-up pass. */
  rounds?: number;
}

/** The raw sentence (second `## ` line) of every block, train files then val files. */
export function corpusSentences(): string[] {
  const out: string[] = [];
  for (const split of ['train', 'val']) {
    const dir = path.join(sharedDataDir(), 'kmou-ner', split);
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

export async function tokenizerBench(options: TokenizerBenchOptions): Promise<BenchRow[]> {
  const rounds = options.rounds ?? (options.quick ? 2 : 5);
  const files = tokenizerFiles();
  const sentences = corpusSentences();
  const tokenizer = await Tokenizer.load(files.model, { vocab: files.vocab });
  const python = await PythonServer.start(options.python, pythonScript('tokenizer.py'), [
    '--model',
    files.model,
    '--vocab',
    files.vocab,
  ]);
  try {
    await python.request('load', { sentences });
    let sink = 0;
    const ours = async (): Promise<number> => {
      const t0 = process.hrtime.bigint();
      for (const s of sentences) sink += tokenizer.encode(s).ids.length;
      return Number(process.hrtime.bigint() - t0) / 1e9;
    };
    const theirs = (variant: string) => async () =>
      (await python.request<{ seconds: number }>('run', { variant })).seconds;
    const sides = [ours, theirs('reference'), theirs('pieces'), theirs('proto')];
    for (const side of sides) await side(); // warm-up
    const samples = await interleaved(rounds, sides, (round, s) =>
      progress(
        `tokenizer round ${round + 1}: koner ${s[0].toFixed(2)} s, python reference ` +
          `${s[1].toFixed(2)} s, pieces ${s[2].toFixed(2)} s, proto ${s[3].toFixed(2)} s`,
      ),
    );
    if (sink === 0) throw new Error('tokenizer: no pieces produced');
    const rate = (xs: number[]) => sentences.length / xs[0];
    const n = `${sentences.length} KMOU sentences`;
    return [
      {
        row: '(d) tokenizer',
        koner: rate(samples[0]),
        peer: rate(samples[1]),
        unit: 'sentences/s',
        note: `sentencepiece ${String(python.info.sentencepiece)} pieces + vocab ids, as the reference (${n})`,
      },
      {
        row: '(d) tokenizer (vs pieces only)',
        koner: rate(samples[0]),
        peer: rate(samples[2]),
        unit: 'sentences/s',
        note: 'fastest Python call: encode(out_type=str), no ids, no offsets',
      },
      {
        row: '(d) tokenizer (vs pieces+ids+offsets)',
        koner: rate(samples[0]),
        peer: rate(samples[3]),
        unit: 'sentences/s',
        note: 'encode_as_immutable_proto read into tuples: what koner returns',
      },
    ];
  } finally {
    await python.close();
  }
}
