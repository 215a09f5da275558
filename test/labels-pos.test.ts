import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

import { readKmouCorpus } from '../lib/corpus/kmou.js';
import type { KmouSentence, MorphemeSpan } from '../lib/corpus/types.js';
import {
  emptyPosTargetStats,
  POS_IGNORE,
  POS_OTHER_ID,
  POS_TAGS,
  pos2id,
  posTargets,
  type PieceOffset,
} from '../lib/labels/index.js';
import { Tokenizer } from '../lib/tokenizer/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const data = path.join(path.resolve(repoRoot, '../shared'), 'data');
const hasShared = existsSync(path.join(data, 'kmou-ner/train'));
if (!hasShared) console.warn(`labels-pos.test: ${data} is absent; skipping the real-corpus tests`);

const id = (tag: string) => POS_TAGS.indexOf(tag as (typeof POS_TAGS)[number]);
const names = (targets: Int32Array) => [...targets].map((y) => (y < 0 ? '-' : POS_TAGS[y]));

describe('POS classes', () => {
  it('are the Sejong tags then OTHER, and map joined and unknown tags', () => {
    expect(POS_TAGS).toHaveLength(44);
    expect(new Set(POS_TAGS).size).toBe(44);
    expect(POS_TAGS[POS_OTHER_ID]).toBe('OTHER');
    POS_TAGS.forEach((tag, k) => expect(pos2id(tag)).toBe(k));
    expect(pos2id('NNG')).toBe(0);
    expect(pos2id('VV+ETM')).toBe(id('VV'));
    expect(pos2id('NNB+VCP+EF')).toBe(id('NNB'));
    expect(pos2id('+EP')).toBe(id('EP'));
    for (const unknown of ['XSB', '', '+', 'nng', 'XSB+JX', '_']) {
      expect(pos2id(unknown)).toBe(POS_OTHER_ID);
    }
  });
});

describe('posTargets', () => {
  // 서울시청에서 / 했다 / ㈜ : pieces as the tokenizer could cut them, one of them a bare space.
  const text = '서울시청에서  했다 ㈜';
  const morphemes: MorphemeSpan[] = [
    { start: 0, end: 2, pos: 'NNP' }, // 서울
    { start: 2, end: 4, pos: 'NNG' }, // 시청
    { start: 4, end: 6, pos: 'JKB' }, // 에서
    { start: 8, end: 9, pos: 'VV+EP' }, // 했
    { start: 9, end: 10, pos: 'EF' }, // 다
  ];
  const offsets: PieceOffset[] = [
    [0, 2], // ▁서울
    [2, 6], // 시청에서: two morphemes
    [6, 7], // ▁ alone
    [7, 10], // ▁했다 (leading space in the span): two morphemes, the first is VV+EP
    [11, 11], // ▁( of ㈜: empty span
    [11, 12], // ) of ㈜: under no morpheme
  ];

  it('gives each piece the POS of its first character, and counts', () => {
    const stats = emptyPosTargetStats();
    const targets = posTargets(text, offsets, morphemes, stats);
    expect(targets).toBeInstanceOf(Int32Array);
    expect(names(targets)).toEqual(['NNP', 'NNG', '-', 'VV', '-', '-']);
    expect(stats).toEqual({ pieces: 6, empty: 2, uncovered: 1, multiMorpheme: 2 });
    posTargets(text, offsets, morphemes, stats);
    expect(stats.pieces).toBe(12);
    expect(POS_IGNORE).toBe(-1);
    expect(posTargets(text, [], morphemes)).toHaveLength(0);
    expect(names(posTargets(text, offsets, []))).toEqual(['-', '-', '-', '-', '-', '-']);
  });

  it('refuses morphemes out of order, overlapping or outside the text', () => {
    const swapped = [morphemes[1], morphemes[0]];
    expect(() => posTargets(text, offsets, swapped)).toThrow(/morpheme 1 \[0, 2\) is out of order/);
    const overlapping = [morphemes[0], { ...morphemes[1], start: 1 }];
    expect(() => posTargets(text, offsets, overlapping)).toThrow(/morpheme 1/);
    expect(() => posTargets(text, offsets, [{ start: 12, end: 14, pos: 'NNG' }])).toThrow(
      /outside the text/,
    );
  });
});

describe.skipIf(!hasShared)('POS targets on the KMOU corpus', () => {
  let train: KmouSentence[];
  let val: KmouSentence[];
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    [train, val, tokenizer] = await Promise.all([
      readKmouCorpus(path.join(data, 'kmou-ner/train')),
      readKmouCorpus(path.join(data, 'kmou-ner/val')),
      Tokenizer.load(path.join(data, 'kobert-tokenizer/tokenizer_78b3253a26.model'), {
        vocab: path.join(data, 'kobert-tokenizer/kobertvocab_f38b8a4d6d.json'),
      }),
    ]);
  });

  it('has exactly the tags the corpus uses', () => {
    const parts = new Map<string, number>();
    for (const s of [...train, ...val]) {
      for (const m of s.morphemes) {
        for (const part of m.pos.split('+')) if (part) parts.set(part, (parts.get(part) ?? 0) + 1);
      }
    }
    expect([...parts.keys()].filter((tag) => pos2id(tag) === POS_OTHER_ID)).toEqual(['XSB']);
    expect(POS_TAGS.filter((tag) => tag !== 'OTHER' && !parts.has(tag))).toEqual([]);
  });

  it('labels real pieces: every piece with a character gets a class, fused forms their stem', () => {
    const stats = emptyPosTargetStats();
    const all = val.map((s) => {
      const encoding = tokenizer.encode(s.text);
      return { s, encoding, targets: posTargets(s.text, encoding.offsets, s.morphemes, stats) };
    });
    expect(stats.uncovered).toBe(0);
    expect(stats.pieces).toBe(29_234);
    // Measured by scripts/stats/pos.ts: 3,230 pieces (11%) span more than one morpheme.
    expect(stats.multiMorpheme).toBe(3_230);
    for (const { s, encoding, targets } of all) {
      encoding.offsets.forEach(([start, end], p) => {
        const content = s.text.slice(start, end).trim() !== '';
        if (content !== (targets[p] !== POS_IGNORE)) expect.fail(`${s.file}:${s.line} piece ${p}`);
      });
    }
    const second = all.find(({ s }) => s.text === '신지애-최경주 부진한 출발')!;
    expect(second.encoding.pieces).toEqual([
      '▁신',
      '지',
      '애',
      '-',
      '최',
      '경',
      '주',
      '▁부진',
      '한',
      '▁출발',
    ]);
    // 부진한 is one morpheme line tagged VA+ETM: both of its pieces are VA.
    expect(names(second.targets)).toEqual([
      'NNP',
      'NNP',
      'NNP',
      'SO',
      'NNP',
      'NNP',
      'NNP',
      'VA',
      'VA',
      'NNG',
    ]);
  });
});
