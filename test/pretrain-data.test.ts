import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readKmouCorpus } from '../lib/corpus/index.js';
import {
  checkState,
  planBuffer,
  PretrainBatcher,
  type PretrainBatch,
  type PretrainBatcherOptions,
  type PretrainDataState,
} from '../lib/pretrain/batcher.js';
import { buildEvalSet, heldOutSplit } from '../lib/pretrain/eval-set.js';
import { paragraphWindows, type MaskedBatch } from '../lib/pretrain/examples.js';
import { removeWhitespace, ValidationLeakGuard } from '../lib/pretrain/leak-guard.js';
import { NOT_JUDGED, replacedBatch } from '../lib/pretrain/replaced.js';
import {
  BERT_MASKING,
  IGNORE_LABEL,
  startsWord,
  WholeWordMasker,
} from '../lib/pretrain/masking.js';
import {
  countLines,
  readEpochs,
  readParagraphs,
  TextStreamError,
  type Paragraph,
  type TextPosition,
} from '../lib/pretrain/text-stream.js';
import { Tokenizer } from '../lib/tokenizer/index.js';
import { defaultTokenizerFiles } from '../lib/train/config.js';
import { Rng } from '../lib/train/rng.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const data = path.resolve(repoRoot, '../shared/data');
const kowikiFiles = [0, 1, 2, 3].map((i) =>
  path.join(data, 'kowiki-text', `kowiki-part-0${i}.txt.gz`),
);
const valDir = path.join(data, 'kmou-ner', 'val');
const tokenizerFiles = defaultTokenizerFiles();
const haveData = tokenizerFiles !== null && kowikiFiles.every(existsSync) && existsSync(valDir);
if (!haveData) {
  console.warn(
    `pretrain-data tests on real data SKIPPED: the KoBERT tokenizer, kowiki-text or KMOU val ` +
      `is absent under ${data}`,
  );
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'koner-pretrain-data-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Writes `content` under the temp directory, gzipped when the name ends in `.gz`. */
async function fixture(name: string, content: string | Buffer): Promise<string> {
  const file = path.join(tmp, name);
  await mkdir(path.dirname(file), { recursive: true });
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  await writeFile(file, name.endsWith('.gz') ? gzipSync(bytes) : bytes);
  return file;
}

async function collect<T>(items: AsyncIterable<T>, limit = Infinity): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) {
    out.push(item);
    if (out.length >= limit) break;
  }
  return out;
}

/** The first `lines` lines of a kowiki part, streamed (the generator stops the file early). */
async function kowikiLines(file: number, lines: number): Promise<string[]> {
  const out: string[] = [];
  for await (const p of readParagraphs([kowikiFiles[file]])) {
    out.push(p.text);
    if (out.length >= lines) break;
  }
  return out;
}

async function errorOf(run: () => Promise<unknown>): Promise<Error> {
  try {
    await run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

describe('readParagraphs', () => {
  // A line longer than any stream chunk (zlib 16 KiB, file 64 KiB), so lines span chunks.
  const long = '가나다라마바사 '.repeat(30_000).trim();

  async function threeFiles(): Promise<{ files: string[]; expected: Paragraph[] }> {
    const files = [
      await fixture('stream/a.txt.gz', 'first\n\n  \nsecond\r\n' + long + '\nthird'),
      await fixture('stream/b.txt', '\nfourth\nfifth\n'),
      await fixture('stream/c.txt.gz', 'sixth\n'),
    ];
    const p = (text: string, file: number, line: number): Paragraph => ({
      text,
      at: { file, line },
      position: { file, line: line + 1 },
    });
    const expected = [
      p('first', 0, 0),
      p('second', 0, 3),
      p(long, 0, 4),
      p('third', 0, 5),
      p('fourth', 1, 1),
      p('fifth', 1, 2),
      p('sixth', 2, 0),
    ];
    return { files, expected };
  }

  it('streams paragraphs across files, skipping blank lines, with exact positions', async () => {
    const { files, expected } = await threeFiles();
    expect(await collect(readParagraphs(files))).toEqual(expected);
    expect(await Promise.all(files.map(countLines))).toEqual([6, 3, 1]);
  });

  it('resumes from the position of every paragraph, and from any line', async () => {
    const { files, expected } = await threeFiles();
    for (let i = 0; i < expected.length; i++) {
      expect(await collect(readParagraphs(files, expected[i].position))).toEqual(
        expected.slice(i + 1),
      );
    }
    // From each line of the first file, blank ones included.
    for (let line = 0; line <= 6; line++) {
      const rest = await collect(readParagraphs(files, { file: 0, line }));
      expect(rest).toEqual(expected.filter((p) => p.at.file > 0 || p.at.line >= line));
    }
    expect(await collect(readParagraphs(files, { file: 3, line: 0 }))).toEqual([]);
  });

  it('stops before `until`', async () => {
    const { files, expected } = await threeFiles();
    const until: TextPosition = { file: 1, line: 2 };
    expect(await collect(readParagraphs(files, undefined, { until }))).toEqual(
      expected.slice(0, 5),
    );
    expect(
      await collect(readParagraphs(files, { file: 0, line: 4 }, { until: { file: 0, line: 5 } })),
    ).toEqual([expected[2]]);
  });

  it('names the file for a missing file, a non-gzip .gz, and corrupt or truncated gzip', async () => {
    const good = await fixture('errors/good.txt.gz', 'a paragraph\n');
    const missing = path.join(tmp, 'errors', 'missing.txt.gz');
    let e = await errorOf(() => collect(readParagraphs([good, missing])));
    expect(e).toBeInstanceOf(TextStreamError);
    expect(e.message).toBe(`${missing}: cannot open: no such file`);

    const plain = path.join(tmp, 'errors', 'plain.txt.gz');
    await writeFile(plain, 'not compressed\n');
    e = await errorOf(() => collect(readParagraphs([plain])));
    expect(e.message).toBe(`${plain}: not a gzip file (it does not start with 1f 8b)`);

    // Varied text, so the deflate stream is long enough to damage in the middle.
    const text = Array.from({ length: 20_000 }, (_, i) => `문단 ${i} ${(i * 7919) % 10007}`);
    const zipped = gzipSync(Buffer.from(text.join('\n')));
    const truncated = path.join(tmp, 'errors', 'truncated.txt.gz');
    await writeFile(truncated, zipped.subarray(0, zipped.length >> 1));
    e = await errorOf(() => collect(readParagraphs([truncated])));
    expect(e.message).toMatch(
      new RegExp(`^${escape(truncated)}: corrupt or truncated gzip data after line \\d+ \\(`),
    );
    const damaged = Buffer.from(zipped);
    for (let i = 2000; i < 2400; i++) damaged[i] ^= 0x5a;
    const corrupt = path.join(tmp, 'errors', 'corrupt.txt.gz');
    await writeFile(corrupt, damaged);
    e = await errorOf(() => collect(readParagraphs([corrupt])));
    expect(e.message).toMatch(new RegExp(`^${escape(corrupt)}: corrupt or truncated gzip data`));
    e = await errorOf(() => countLines(corrupt));
    expect(e.message).toMatch(new RegExp(`^${escape(corrupt)}: corrupt or truncated gzip data`));

    const dir = path.join(tmp, 'errors', 'dir.txt.gz');
    await mkdir(dir);
    e = await errorOf(() => collect(readParagraphs([dir])));
    expect(e.message).toBe(`${dir}: cannot read: is a directory`);
  });

  it('names file and line for invalid UTF-8, and for a position past the end', async () => {
    const bad = Buffer.concat([
      Buffer.from('good\nalso good\n'),
      Buffer.from([0x41, 0xff, 0x42]),
      Buffer.from('\nafter\n'),
    ]);
    const file = await fixture('utf8/bad.txt.gz', bad);
    const seen: string[] = [];
    const e = await errorOf(async () => {
      for await (const p of readParagraphs([file])) seen.push(p.text);
    });
    expect(e.message).toBe(`${file}:3: invalid UTF-8`);
    // The bad line is skipped when a resume starts after it.
    expect(
      (await collect(readParagraphs([file], { file: 0, line: 3 }))).map((p) => p.text),
    ).toEqual(['after']);
    const past = await errorOf(() => collect(readParagraphs([file], { file: 0, line: 9 })));
    expect(past.message).toMatch(/:.*position line 9 is past the end of the file \(4 lines\)/);
    await expect(collect(readParagraphs([file], { file: 2, line: 0 }))).rejects.toThrow(
      /from must be \{ file, line \} with file in 0\.\.1/,
    );
  });

  it('reads pass after pass, with the pass in the position, and resumes inside a pass', async () => {
    const files = [
      await fixture('epochs/a.txt.gz', 'one\ntwo\n'),
      await fixture('epochs/b.txt.gz', 'three\n'),
    ];
    const all = await collect(readEpochs(files, undefined, { epochs: 3 }));
    expect(all.map((p) => `${p.at.epoch}:${p.text}`)).toEqual([
      '0:one',
      '0:two',
      '0:three',
      '1:one',
      '1:two',
      '1:three',
      '2:one',
      '2:two',
      '2:three',
    ]);
    for (let i = 0; i < all.length; i++) {
      expect(await collect(readEpochs(files, all[i].position, { epochs: 3 }))).toEqual(
        all.slice(i + 1),
      );
    }
    const endless = await collect(readEpochs(files), 10);
    expect(endless[9].at).toEqual({ epoch: 3, file: 0, line: 0 });
    const empty = await fixture('epochs/empty.txt.gz', '\n \n');
    await expect(collect(readEpochs([empty]), 1)).rejects.toThrow(/no paragraph to read/);
  });

  it.skipIf(!haveData)(
    'streams the real kowiki parts and stops early without reading on',
    async () => {
      const lines = await kowikiLines(0, 3000);
      expect(lines).toHaveLength(3000);
      expect(lines.every((l) => l.length >= 30)).toBe(true);
      const resumed = await collect(readParagraphs(kowikiFiles, { file: 0, line: 2990 }), 10);
      expect(resumed.map((p) => p.text)).toEqual(lines.slice(2990));
    },
  );
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('ValidationLeakGuard', () => {
  const val = [
    '한국해양대학교 자연언어처리 연구실에서 만든 개체명 말뭉치입니다.',
    '짧은 문장 하나.', // 7 characters without spaces: too short to check
    '열 글자가 넘는 짧은 문장', // 12 characters: checked whole
  ];

  it('flags a shared 20-character run whatever the spacing, and nothing shorter', () => {
    const guard = new ValidationLeakGuard(val);
    expect(guard.unchecked).toBe(1);
    const run = removeWhitespace(val[0]).slice(5, 25); // 20 characters
    const spaced = run.split('').join(' ');
    expect(guard.find(`앞 문장. ${spaced} 뒤 문장.`)).toEqual({ sentence: 0, shared: run });
    expect(guard.contains(`앞${run.slice(0, 10)}\t\n${run.slice(10)}뒤`)).toBe(true);
    expect(guard.contains(`${run.slice(0, 19)}X${run.slice(20)}`)).toBe(false);
    expect(guard.contains(run.slice(0, 19))).toBe(false);
    expect(guard.contains(val[0])).toBe(true);
    expect(guard.contains('전혀 관계없는 위키백과 문단입니다. 자연언어처리 연구.')).toBe(false);
  });

  it('flags a short sentence contained whole, unless it is under minSentence', () => {
    const guard = new ValidationLeakGuard(val);
    expect(guard.find('그것은 열글자가넘는 짧은 문장이었다')).toEqual({
      sentence: 2,
      shared: '열글자가넘는짧은문장',
    });
    expect(guard.contains('열 글자가 넘는 짧은 문')).toBe(false);
    expect(guard.contains('짧은 문장 하나.')).toBe(false);
    expect(new ValidationLeakGuard(val, { minSentence: 5 }).contains('짧은 문장 하나.')).toBe(true);
    expect(() => new ValidationLeakGuard(val, { run: 5, minSentence: 6 })).toThrow(/minSentence/);
  });

  it('agrees with a plain substring search on random text', () => {
    // A 3-letter alphabet and short runs make matches, near misses and hash collisions common.
    const rng = Rng.fromSeed(7);
    const word = (n: number): string =>
      Array.from({ length: n }, () => 'ab c'[rng.nextInt(4)]).join('');
    const sentences = Array.from({ length: 30 }, () => word(4 + rng.nextInt(14)));
    const guard = new ValidationLeakGuard(sentences, { run: 8, minSentence: 5 });
    const keys: string[] = [];
    for (const s of sentences) {
      const c = removeWhitespace(s);
      if (c.length < 5) continue;
      if (c.length < 8) keys.push(c);
      else for (let i = 0; i + 8 <= c.length; i++) keys.push(c.slice(i, i + 8));
    }
    let flagged = 0;
    for (let t = 0; t < 3000; t++) {
      const paragraph = word(rng.nextInt(40));
      const compact = removeWhitespace(paragraph);
      const expected = keys.some((k) => compact.includes(k));
      expect(guard.contains(paragraph), paragraph).toBe(expected);
      if (expected) flagged++;
    }
    expect(flagged).toBeGreaterThan(100);
    expect(flagged).toBeLessThan(2900);
  });

  it.skipIf(!haveData)(
    'passes real kowiki paragraphs and catches a real validation sentence inside one',
    async () => {
      const sentences = (await readKmouCorpus(valDir)).map((s) => s.text);
      const guard = new ValidationLeakGuard(sentences);
      expect(guard.unchecked).toBeLessThan(30);
      for (let f = 0; f < 4; f++) {
        const lines = await kowikiLines(f, 1000);
        expect(lines.filter((l) => guard.contains(l))).toEqual([]);
        const long = sentences.findIndex((s) => removeWhitespace(s).length >= 40);
        const leak = `${lines[5]} ${sentences[long].replace(/ /g, '  ')} ${lines[6]}`;
        expect(guard.find(leak)?.sentence).toBe(long);
      }
    },
  );
});

/** Word index of each piece (a word starts at `▁` or at the window's first piece). */
function wordsOf(pieces: readonly string[]): number[] {
  let w = -1;
  return pieces.map((p, i) => (i === 0 || startsWord(p) ? ++w : w));
}

describe('WholeWordMasker', () => {
  const special = { unk: 0, pad: 1, cls: 2, sep: 3, mask: 4 };

  it('groups a lone ▁ with the pieces after it and always masks at least one piece', () => {
    const masker = new WholeWordMasker(special, 100, {
      maskProbability: 0.15,
      replaceWithMask: 1,
      replaceWithRandom: 0,
    });
    // One 8-piece word: the budget (1 piece) fits no word, so the word is taken anyway.
    const ids = Int32Array.from([10, 11, 12, 13, 14, 15, 16, 17]);
    const pieces = ['▁가', '나', '다', '라', '마', '바', '사', '아'];
    const m = masker.mask(ids, pieces, Rng.fromSeed(1));
    expect(Array.from(m.ids)).toEqual([2, 4, 4, 4, 4, 4, 4, 4, 4, 3]);
    expect(Array.from(m.labels)).toEqual([-1, 10, 11, 12, 13, 14, 15, 16, 17, -1]);
    expect(m.masked).toBe(8);
    // `▁` `1` form one word; a window may start mid-word.
    const mixed = ['x', '▁', '1', '▁y', 'z'];
    expect(wordsOf(mixed)).toEqual([0, 1, 1, 2, 2]);
    for (let seed = 0; seed < 200; seed++) {
      const r = masker.mask(Int32Array.from([20, 21, 22, 23, 24]), mixed, Rng.fromSeed(seed));
      const chosen = Array.from(r.labels.subarray(1, 6), (l) => l !== IGNORE_LABEL);
      expect(chosen[1]).toBe(chosen[2]);
      expect(chosen[3]).toBe(chosen[4]);
      expect(chosen.some(Boolean)).toBe(true);
    }
    expect(masker.mask(new Int32Array(0), [], Rng.fromSeed(1)).ids).toEqual(
      Int32Array.from([2, 3]),
    );
  });

  it('draws random replacements from normal ids only, wherever the special ids are', () => {
    const odd = { unk: 3, pad: 7, cls: 0, sep: 9, mask: 5 };
    const masker = new WholeWordMasker(odd, 12);
    const rng = Rng.fromSeed(3);
    const counts = new Map<number, number>();
    for (let i = 0; i < 70_000; i++) {
      const id = masker.randomNormalId(rng);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([1, 2, 4, 6, 8, 10, 11]);
    for (const c of counts.values()) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    expect(() => new WholeWordMasker(odd, 9)).toThrow(/special id 9 is not in 0\.\.8/);
    expect(
      () =>
        new WholeWordMasker(special, 100, {
          maskProbability: 0.15,
          replaceWithMask: 0.8,
          replaceWithRandom: 0.3,
        }),
    ).toThrow(/must be ≤ 1/);
  });

  it.skipIf(!haveData)(
    'masks ≈15% of pieces by whole words, 80/10/10, labels only at chosen pieces',
    async () => {
      const tokenizer = await Tokenizer.load(tokenizerFiles!.model, {
        vocab: tokenizerFiles!.vocab,
      });
      const sp = tokenizer.specialIds;
      const specials = new Set(Object.values(sp));
      const masker = new WholeWordMasker(sp, tokenizer.vocabSize);
      const rng = Rng.fromSeed(11);
      let pieces = 0;
      let labelled = 0;
      const words = { mask: 0, random: 0, kept: 0 };
      let emptyWindows = 0;
      // Plain checks gathered into a list: an `expect` per piece would dominate the test's time.
      const problems: string[] = [];
      const check = (ok: boolean, what: string): void => {
        if (!ok && problems.length < 10) problems.push(what);
      };
      for (const text of await kowikiLines(1, 2000)) {
        for (const w of paragraphWindows(text, tokenizer, { maxLength: 128 }).windows) {
          const m = masker.mask(w.ids, w.pieces, rng);
          const n = w.ids.length;
          check(m.ids.length === n + 2 && m.labels.length === n + 2, `length of ${text}`);
          check(m.ids[0] === sp.cls && m.ids[n + 1] === sp.sep, `[CLS]/[SEP] in ${text}`);
          check(m.labels[0] === IGNORE_LABEL && m.labels[n + 1] === IGNORE_LABEL, `labels ${text}`);
          const wordOf = wordsOf(w.pieces);
          const wordSize = new Map<number, number>();
          for (const x of wordOf) wordSize.set(x, (wordSize.get(x) ?? 0) + 1);
          const chosenWords = new Map<number, number[]>();
          let count = 0;
          for (let i = 0; i < n; i++) {
            const out = m.ids[i + 1];
            if (m.labels[i + 1] === IGNORE_LABEL) {
              check(out === w.ids[i], `unchosen piece ${i} changed in ${text}`);
              continue;
            }
            count++;
            check(m.labels[i + 1] === w.ids[i], `label of piece ${i} in ${text}`);
            if (out !== sp.mask && out !== w.ids[i]) {
              check(!specials.has(out), `special id ${out} as a random piece in ${text}`);
            }
            const list = chosenWords.get(wordOf[i]) ?? [];
            list.push(i);
            chosenWords.set(wordOf[i], list);
          }
          if (count === 0) emptyWindows++;
          check(count === m.masked, `masked count of ${text}`);
          for (const [word, positions] of chosenWords) {
            // Whole words: every piece of a chosen word is chosen.
            check(positions.length === wordSize.get(word), `part of word ${word} in ${text}`);
            if (positions.every((i) => m.ids[i + 1] === sp.mask)) words.mask++;
            else if (positions.every((i) => m.ids[i + 1] === w.ids[i])) words.kept++;
            else words.random++;
          }
          pieces += n;
          labelled += count;
        }
      }
      expect(problems).toEqual([]);
      expect(emptyWindows).toBe(0);
      expect(pieces).toBeGreaterThan(100_000);
      const share = labelled / pieces;
      expect(share).toBeGreaterThan(0.14);
      expect(share).toBeLessThan(0.155);
      const total = words.mask + words.random + words.kept;
      expect(words.mask / total).toBeCloseTo(0.8, 1);
      expect(Math.abs(words.random / total - 0.1)).toBeLessThan(0.015);
      expect(Math.abs(words.kept / total - 0.1)).toBeLessThan(0.015);
    },
  );

  it('masks the same way from the same generator state', () => {
    const masker = new WholeWordMasker(special, 50);
    const ids = Int32Array.from({ length: 40 }, (_, i) => 5 + i);
    const pieces = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? '▁p' : 'q'));
    const a = masker.mask(ids, pieces, Rng.fromSeed(9, 2));
    const b = masker.mask(ids, pieces, Rng.fromSeed(9, 2));
    expect(a).toEqual(b);
    expect(a.masked).toBeGreaterThanOrEqual(4);
    expect(a.masked).toBeLessThanOrEqual(6);
    expect(BERT_MASKING.maskProbability).toBe(0.15);
  });
});

describe('replacedBatch (ELECTRA)', () => {
  // Two rows of width 5: [CLS] 10 [MASK] 12 [SEP] and [CLS] [MASK] [MASK] [SEP] [PAD]; the masked
  // positions held 11, 20 and 21.
  const _ = IGNORE_LABEL;
  const batch: MaskedBatch = {
    ids: Int32Array.from([2, 10, 4, 12, 3, 2, 4, 4, 3, 1]),
    labels: Int32Array.from([_, _, 11, _, _, _, 20, 21, _, _]),
    shape: [2, 5],
    lengths: Int32Array.from([5, 4]),
    maskedCount: 3,
  };

  it('puts the draws into the original windows; a draw of the original piece counts as original', () => {
    const r = replacedBatch(batch, Int32Array.from([30, 20, 40]));
    expect(Array.from(r.ids)).toEqual([2, 10, 30, 12, 3, 2, 20, 40, 3, 1]);
    expect(Array.from(r.labels)).toEqual([0, 0, 1, 0, 0, 0, 0, 1, 0, NOT_JUDGED]);
    expect(r.replaced).toBe(2);
    expect(r.shape).toEqual([2, 5]);
    expect(Array.from(r.lengths)).toEqual([5, 4]);
    // The masked batch itself is left as it was.
    expect(Array.from(batch.ids)).toEqual([2, 10, 4, 12, 3, 2, 4, 4, 3, 1]);
  });

  it('refuses a number of draws that is not the number of masked positions', () => {
    expect(() => replacedBatch(batch, Int32Array.from([30, 20]))).toThrow(
      /samples: 2 draws for 3 masked positions/,
    );
  });
});

describe('planBuffer', () => {
  it('plans buffers into equal shares per worker, batches of near-equal size', () => {
    for (const n of [1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 100, 1001]) {
      for (const batchSize of [1, 2, 8, 32]) {
        for (const worldSize of [1, 2, 3]) {
          const { sizes, used } = planBuffer(n, batchSize, worldSize);
          expect(sizes.length % worldSize).toBe(0);
          expect(sizes.reduce((a, b) => a + b, 0)).toBe(used);
          for (const s of sizes) expect(s >= 1 && s <= batchSize).toBe(true);
          if (sizes.length > 0)
            expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
          if (batchSize >= 2 && n >= 2 * worldSize) expect(used).toBe(n);
        }
      }
    }
  });
});

/**
 * Everything a batch hands the trainer, as one string: comparing these is much faster than deep
 * equality of typed arrays.
 */
function digest(b: PretrainBatch): string {
  const base64 = (a: Int32Array): string =>
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
  return [
    b.shape.join('x'),
    base64(b.ids),
    base64(b.labels),
    base64(b.lengths),
    b.maskedCount,
    b.epoch,
  ].join('|');
}

/** Each row of a batch with the masking undone: the window the row was made from. */
function unmaskedRows(batch: MaskedBatch): string[] {
  const [rows, cols] = batch.shape;
  const out: string[] = [];
  for (let r = 0; r < rows; r++) {
    const ids: number[] = [];
    for (let c = 0; c < batch.lengths[r]; c++) {
      const label = batch.labels[r * cols + c];
      ids.push(label === IGNORE_LABEL ? batch.ids[r * cols + c] : label);
    }
    out.push(ids.join(','));
  }
  return out;
}

describe.skipIf(!haveData)('pretraining windows, batches and the held-out set', () => {
  let tokenizer: Tokenizer;
  let guard: ValidationLeakGuard;
  let valSentences: string[];
  let files: string[];
  let lines: string[];
  let planted: string;

  beforeAll(async () => {
    tokenizer = await Tokenizer.load(tokenizerFiles!.model, { vocab: tokenizerFiles!.vocab });
    valSentences = (await readKmouCorpus(valDir)).map((s) => s.text);
    guard = new ValidationLeakGuard(valSentences);
    // Real paragraphs in three small parts, two validation sentences planted in the second.
    lines = await kowikiLines(2, 600);
    const parts = [lines.slice(0, 250), lines.slice(250, 450), lines.slice(450)];
    const long = valSentences.filter((v) => removeWhitespace(v).length >= 30);
    planted = long[3];
    parts[1].splice(10, 0, `${lines[0]} ${long[2]}`);
    parts[1].splice(50, 0, planted);
    files = await Promise.all(
      parts.map((p, i) => fixture(`batcher/part-${i}.txt.gz`, p.join('\n') + '\n')),
    );
  });

  function options(extra: Partial<PretrainBatcherOptions> = {}): PretrainBatcherOptions {
    return {
      files,
      tokenizer,
      guard,
      maxLength: 64,
      batchSize: 8,
      bufferWindows: 64,
      seed: 5,
      epochs: 2,
      ...extra,
    };
  }

  it('cuts long paragraphs into windows at word starts and drops short tails', () => {
    const text = lines.slice(0, 40).join(' ');
    const all = tokenizer.encode(text);
    const { windows, pieces, dropped } = paragraphWindows(text, tokenizer, {
      maxLength: 130,
      minPieces: 8,
    });
    expect(pieces).toBe(all.ids.length);
    expect(windows.length).toBeGreaterThan(5);
    let at = 0;
    for (const w of windows) {
      expect(w.ids.length).toBeLessThanOrEqual(128);
      expect(w.ids.length).toBeGreaterThanOrEqual(8);
      expect(Array.from(w.ids)).toEqual(Array.from(all.ids.subarray(at, at + w.ids.length)));
      expect(startsWord(w.pieces[0])).toBe(true);
      at += w.ids.length;
    }
    // Only the last window can be short (a cut searches back at most half a window).
    expect(dropped).toBeLessThanOrEqual(1);
    if (dropped === 0) expect(at).toBe(all.ids.length);
    else expect(all.ids.length - at).toBeLessThan(8);
    const short = paragraphWindows('짧은 문단', tokenizer, { maxLength: 64 });
    expect(short.windows).toEqual([]);
    expect(short.dropped).toBe(1);
    expect(() => paragraphWindows('x', tokenizer, { maxLength: 2 })).toThrow(/maxLength/);
  });

  it('batches padded rows sorted into length buckets, drops and counts leaks', async () => {
    const batcher = new PretrainBatcher(options({ epochs: 1 }));
    const batches = await collect(batcher.batches());
    const pad = tokenizer.specialIds.pad;
    let real = 0;
    let cells = 0;
    for (const b of batches) {
      const [rows, cols] = b.shape;
      expect(rows).toBeLessThanOrEqual(8);
      expect(cols).toBeLessThanOrEqual(64);
      expect(Math.max(...b.lengths)).toBe(cols);
      for (let r = 0; r < rows; r++) {
        expect(b.ids[r * cols]).toBe(tokenizer.specialIds.cls);
        expect(b.ids[r * cols + b.lengths[r] - 1]).toBe(tokenizer.specialIds.sep);
        for (let c = b.lengths[r]; c < cols; c++) {
          expect(b.ids[r * cols + c]).toBe(pad);
          expect(b.labels[r * cols + c]).toBe(IGNORE_LABEL);
        }
      }
      real += b.lengths.reduce((a, x) => a + x, 0);
      cells += rows * cols;
      expect(b.maskedCount).toBe(b.labels.filter((l) => l !== IGNORE_LABEL).length);
    }
    expect(real / cells).toBeGreaterThan(0.9);
    const stats = batches[batches.length - 1].next.stats;
    expect(stats.paragraphs).toBe(602);
    expect(stats.leaks).toBe(2);
    expect(stats.batches).toBe(batches.length);
    expect(stats.windows).toBe(batches.reduce((a, b) => a + b.shape[0], 0) + stats.unbatched);
    expect(stats.maskedPieces / stats.pieces).toBeGreaterThan(0.13);
    const plantedIds = tokenizer.encode(planted).ids.join(',');
    const rows = batches.flatMap(unmaskedRows);
    expect(rows.some((r) => r.includes(plantedIds))).toBe(false);
  });

  it('resumes from any saved state to exactly the batches of an uninterrupted run', async () => {
    const batcher = new PretrainBatcher(options());
    const full = await collect(batcher.batches());
    expect(full.length).toBeGreaterThan(20);
    expect(new Set(full.map((b) => b.epoch))).toEqual(new Set([0, 1]));
    // Every state of the first two buffers (mid-buffer states and a boundary), then a sample
    // across both passes, and the end; each compared on the next 12 batches, a few to the end.
    const perBuffer = full.findIndex((b) => b.next.batch === 0) + 1;
    const points = new Set<number>();
    for (let i = 0; i < 2 * perBuffer; i++) points.add(i);
    for (let i = 0; i < full.length; i += 29) points.add(i);
    points.add(full.length - 2);
    points.add(full.length - 1);
    const toEnd = new Set([3, Math.floor(full.length / 2) + 1, full.length - 2]);
    for (const i of points) {
      const saved = JSON.parse(JSON.stringify(full[i].next)) as PretrainDataState;
      const fresh = new PretrainBatcher(options());
      const rest = await collect(fresh.batches(saved), toEnd.has(i) ? Infinity : 12);
      expect(rest.map(digest), `resumed after batch ${i}`).toEqual(
        full.slice(i + 1, i + 1 + rest.length).map(digest),
      );
      if (toEnd.has(i) || i === full.length - 1) {
        expect(rest.length).toBe(full.length - i - 1);
        if (rest.length > 0) expect(rest[rest.length - 1].next).toEqual(full[full.length - 1].next);
      } else {
        expect(rest.length).toBe(12);
      }
    }
    expect(full.some((b) => b.next.batch > 0)).toBe(true);
    expect(full.some((b, i) => i + 1 < full.length && b.next.batch === 0)).toBe(true);
    // A different seed is a different stream.
    const other = await collect(new PretrainBatcher(options({ seed: 6 })).batches(), 3);
    expect(other.map(digest)).not.toEqual(full.slice(0, 3).map(digest));
  });

  it('gives workers disjoint, equally many batches that together cover the text, resumably', async () => {
    const single = await collect(new PretrainBatcher(options({ epochs: 1 })).batches());
    const ranks = await Promise.all(
      [0, 1, 2].map((rank) =>
        collect(new PretrainBatcher(options({ epochs: 1, rank, worldSize: 3 })).batches()),
      ),
    );
    expect(new Set(ranks.map((r) => r.length)).size).toBe(1);
    const rows = ranks.map((r) => r.flatMap(unmaskedRows));
    const union = rows.flat();
    expect(new Set(union).size).toBe(union.length);
    expect(union.sort()).toEqual(single.flatMap(unmaskedRows).sort());
    // Per-worker resume.
    const k = Math.floor(ranks[1].length / 2);
    const resumed = await collect(
      new PretrainBatcher(options({ epochs: 1, rank: 1, worldSize: 3 })).batches(ranks[1][k].next),
    );
    expect(resumed.map(digest)).toEqual(ranks[1].slice(k + 1).map(digest));
    // The data state is the same on every worker, except this worker's own counters.
    const strip = (s: PretrainDataState): unknown => ({ ...s, stats: undefined });
    expect(strip(ranks[0][k].next)).toEqual(strip(ranks[2][k].next));
  });

  it('refuses a state saved under other options or malformed, naming the field', async () => {
    const batcher = new PretrainBatcher(options());
    const [first] = await collect(batcher.batches(), 1);
    const other = new PretrainBatcher(options({ batchSize: 4 }));
    await expect(collect(other.batches(first.next))).rejects.toThrow(
      /saved with batchSize = 8, but the stream now has batchSize = 4/,
    );
    expect(() => checkState({ ...first.next, batch: -1 }, batcher.config)).toThrow(/batch must/);
    expect(() => checkState({ ...first.next, rng: [0, 0, 0, 0] }, batcher.config)).toThrow(/rng/);
    expect(() => checkState({ ...first.next, position: { file: 0 } }, batcher.config)).toThrow(
      /position must be/,
    );
    expect(() => new PretrainBatcher(options({ bufferWindows: 10, worldSize: 2 }))).toThrow(
      /bufferWindows \(10\) must be at least batchSize × worldSize \(16\)/,
    );
  });

  it('holds out the last lines as fixed batches that training never reads', async () => {
    const last = files[files.length - 1];
    const split = heldOutSplit(files, await countLines(last), 60);
    expect(split.trainUntil).toEqual({ file: 2, line: 90 });
    const evalOptions = {
      files,
      from: split.evalFrom,
      tokenizer,
      guard,
      maxLength: 64,
      batchSize: 8,
      seed: 1,
    };
    const a = await buildEvalSet(evalOptions);
    const b = await buildEvalSet(evalOptions);
    expect(a).toEqual(b);
    expect(a.stats.paragraphs).toBe(60);
    const evalRows = new Set(a.batches.flatMap(unmaskedRows));
    const training = await collect(
      new PretrainBatcher(options({ until: split.trainUntil, epochs: 1 })).batches(),
    );
    const trainRows = training.flatMap(unmaskedRows);
    expect(trainRows.filter((r) => evalRows.has(r))).toEqual([]);
    expect(training[training.length - 1].next.stats.paragraphs).toBe(602 - 60);
    expect(() => heldOutSplit(files, 150, 150)).toThrow(/held-out lines must be/);
  });

  it('streams batches from the real kowiki parts', async () => {
    const batcher = new PretrainBatcher({
      files: kowikiFiles,
      tokenizer,
      guard,
      maxLength: 128,
      batchSize: 32,
      bufferWindows: 512,
      seed: 1,
    });
    const batches = await collect(batcher.batches(), 20);
    for (const b of batches) {
      // Near-equal batches: a buffer of n windows is cut into ⌈n / 32⌉ of them.
      expect(b.shape[0]).toBeGreaterThanOrEqual(28);
      expect(b.shape[0]).toBeLessThanOrEqual(32);
      expect(b.shape[1]).toBeLessThanOrEqual(128);
      expect(b.maskedCount).toBeGreaterThan(0);
    }
    const state = batches[batches.length - 1].next;
    expect(state.position.file).toBe(0);
    expect(state.stats.leaks).toBe(0);
    const resumed = await collect(batcher.batches(batches[9].next), 10);
    expect(resumed.map(digest)).toEqual(batches.slice(10).map(digest));
  });
});
