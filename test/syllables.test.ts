import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

import { readKmouCorpus } from '../lib/corpus/kmou.js';
import type { KmouSentence } from '../lib/corpus/types.js';
import type { PieceOffset } from '../lib/labels/align.js';
import { Tokenizer } from '../lib/tokenizer/index.js';
import {
  collateSyllables,
  DEFAULT_MAX_SYLLABLES,
  pieceSyllables,
  SYLLABLE_PAD,
  SYLLABLE_UNKNOWN,
  SYLLABLE_VOCAB_SIZE,
  syllableId,
  syllableKind,
  type SyllableKind,
} from '../lib/tokenizer/syllables.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const data = path.join(path.resolve(repoRoot, '../shared'), 'data');
const hasShared = existsSync(path.join(data, 'kmou-ner/val'));
if (!hasShared) console.warn(`syllables.test: ${data} is absent; skipping the real-corpus tests`);

const of = (ch: string) => syllableId(ch.codePointAt(0)!);
const row = (ids: Int32Array, p: number, s: number) => [...ids.subarray(p * s, (p + 1) * s)];

describe('syllableId', () => {
  it('numbers every code point into its part of the fixed range', () => {
    const hits = new Int32Array(SYLLABLE_VOCAB_SIZE);
    const kinds = new Map<SyllableKind, number>();
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      const id = syllableId(cp);
      hits[id]++;
      const kind = syllableKind(id);
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      if (/\s/u.test(String.fromCodePoint(cp)) && id !== SYLLABLE_UNKNOWN) {
        expect.fail(`whitespace U+${cp.toString(16)} has id ${id}`);
      }
    }
    expect(hits[SYLLABLE_PAD]).toBe(0);
    expect(kinds.get('hangul')).toBe(11_172);
    expect(kinds.get('jamo')).toBe(94);
    expect(kinds.get('ascii')).toBe(2 * 94); // ASCII and its fullwidth forms
    for (let id = 1; id < SYLLABLE_VOCAB_SIZE; id++) {
      const kind = syllableKind(id);
      const expected = { hangul: 1, jamo: 1, symbol: 1, ascii: 2 }[kind as 'hangul'];
      if (expected !== undefined && hits[id] !== expected) {
        expect.fail(`id ${id} (${kind}) is given to ${hits[id]} code points`);
      }
      if (hits[id] === 0) expect.fail(`id ${id} (${kind}) is never used`);
    }
  });

  it('keeps the documented numbering (a trained embedding depends on it)', () => {
    expect(SYLLABLE_VOCAB_SIZE).toBe(12_495);
    expect([of('가'), of('각'), of('힣'), of('ㄱ'), of('ㆎ')]).toEqual([
      2, 3, 11_173, 11_174, 11_267,
    ]);
    expect([of('!'), of('A'), of('a'), of('~'), of('‘')]).toEqual([
      11_268, 11_300, 11_332, 11_361, 11_362,
    ]);
    expect([of('中'), of('😀'), of('é')]).toEqual([12_202, 12_273, 11_472]);
    expect(syllableKind(of('中'))).toBe('bucket');
    expect(of('Ａ')).toBe(of('A')); // fullwidth folds onto ASCII
    expect(of('A')).not.toBe(of('a')); // case is kept
    for (const ch of ['·', '…', '《', '㈜', '㎡', '℃', '①'])
      expect(syllableKind(of(ch))).toBe('symbol');
    for (const ch of ['\u00ad', '\u200b', '\ufeff', '\ufffd', '\ue000', '\t', '\u3000']) {
      expect(of(ch)).toBe(SYLLABLE_UNKNOWN);
    }
  });

  it('refuses what is not a code point or an id', () => {
    for (const bad of [-1, 0x110000, 1.5, NaN]) expect(() => syllableId(bad)).toThrow(RangeError);
    expect(() => syllableKind(SYLLABLE_VOCAB_SIZE)).toThrow(/not a syllable id/);
    expect(syllableKind(0)).toBe('pad');
  });
});

describe('pieceSyllables', () => {
  const text = '한국어 문장';
  const offsets: PieceOffset[] = [
    [0, 2], // ▁한국
    [2, 3], // 어
    [3, 5], // ▁문: the space is left out
    [5, 6], // 장
    [6, 6], // an empty piece
  ];

  it('writes each piece its characters, padded and truncated', () => {
    const { ids, counts, maxSyllables } = pieceSyllables(text, offsets);
    expect(maxSyllables).toBe(DEFAULT_MAX_SYLLABLES);
    expect(ids).toHaveLength(5 * DEFAULT_MAX_SYLLABLES);
    expect([...counts]).toEqual([2, 1, 1, 1, 0]);
    const pad = (list: number[]) => [
      ...list,
      ...Array(DEFAULT_MAX_SYLLABLES - list.length).fill(0),
    ];
    expect(row(ids, 0, DEFAULT_MAX_SYLLABLES)).toEqual(pad([of('한'), of('국')]));
    expect(row(ids, 2, DEFAULT_MAX_SYLLABLES)).toEqual(pad([of('문')]));
    expect(row(ids, 4, DEFAULT_MAX_SYLLABLES)).toEqual(pad([]));
    const one = pieceSyllables(text, offsets, 1);
    expect([...one.ids]).toEqual([of('한'), of('어'), of('문'), of('장'), 0]);
    expect([...one.counts]).toEqual([1, 1, 1, 1, 0]);
    const long = pieceSyllables('가나다라마바사아자', [[0, 9]], 8);
    expect(long.counts[0]).toBe(8);
    expect(row(long.ids, 0, 8)).toEqual([...'가나다라마바사아'].map(of));
  });

  it('reads a surrogate pair as one character and a lone surrogate as unknown', () => {
    const emoji = 'a😀\ud800b';
    const { ids, counts } = pieceSyllables(
      emoji,
      [
        [0, 3],
        [3, 5],
      ],
      4,
    );
    expect([...counts]).toEqual([2, 2]);
    expect(row(ids, 0, 4)).toEqual([of('a'), syllableId(0x1f600), 0, 0]);
    expect(row(ids, 1, 4)).toEqual([SYLLABLE_UNKNOWN, of('b'), 0, 0]);
    // A pair cut by a piece boundary: each half is a lone surrogate.
    const cut = pieceSyllables(
      '😀',
      [
        [0, 1],
        [1, 2],
      ],
      1,
    );
    expect([...cut.ids]).toEqual([SYLLABLE_UNKNOWN, SYLLABLE_UNKNOWN]);
  });

  it('refuses offsets outside the text and a bad maxSyllables', () => {
    expect(() => pieceSyllables(text, [[0, 7]])).toThrow(
      /piece 0 \[0, 7\) ends after the text \(6\)/,
    );
    expect(() =>
      pieceSyllables(text, [
        [0, 1],
        [3, 2],
      ]),
    ).toThrow(/piece 1 has offsets \[3, 2\)/);
    for (const bad of [0, -1, 2.5]) {
      expect(() => pieceSyllables(text, offsets, bad)).toThrow(
        /maxSyllables must be a positive integer/,
      );
    }
  });
});

describe('collateSyllables', () => {
  it('lays examples out as [B, T, S] behind [CLS], before [SEP] and padding', () => {
    const a = pieceSyllables(
      '가 나',
      [
        [0, 1],
        [1, 3],
      ],
      2,
    );
    const b = pieceSyllables(
      'ABC',
      [
        [0, 3],
        [3, 3],
        [3, 3],
        [3, 3],
      ],
      2,
    );
    const batch = collateSyllables([a, b]);
    expect(batch).toMatchObject({ batch: 2, length: 6, syllables: 2 });
    expect(batch.ids).toHaveLength(2 * 6 * 2);
    expect(batch.counts).toHaveLength(2 * 6);
    const at = (e: number, t: number) => [
      ...batch.ids.subarray((e * 6 + t) * 2, (e * 6 + t + 1) * 2),
    ];
    expect([0, 1, 2, 3, 4, 5].map((t) => at(0, t))).toEqual([
      [0, 0],
      [of('가'), 0],
      [of('나'), 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ]);
    expect(at(1, 1)).toEqual([of('A'), of('B')]);
    expect(at(1, 5)).toEqual([0, 0]);
    expect([...batch.counts]).toEqual([0, 1, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0]);
    expect(collateSyllables([a], 10)).toMatchObject({ length: 10 });
    expect(collateSyllables([a], 10).ids).toHaveLength(20);
  });

  it('refuses no examples, mixed widths and a length too short', () => {
    const a = pieceSyllables(
      '가나',
      [
        [0, 1],
        [1, 2],
      ],
      2,
    );
    expect(() => collateSyllables([])).toThrow(/at least one example/);
    expect(() => collateSyllables([a, pieceSyllables('가', [[0, 1]], 3)])).toThrow(
      /example 1 has maxSyllables 3, example 0 has 2/,
    );
    expect(() => collateSyllables([a], 3)).toThrow(
      /length 3 is too short: an example has 2 pieces/,
    );
    expect(() => collateSyllables([{ ...a, ids: new Int32Array(3) }])).toThrow(
      /ids hold 3 values, not 2 × 2/,
    );
  });
});

describe.skipIf(!hasShared)('syllables on the KMOU corpus', () => {
  let val: KmouSentence[];
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    [val, tokenizer] = await Promise.all([
      readKmouCorpus(path.join(data, 'kmou-ner/val')),
      Tokenizer.load(path.join(data, 'kobert-tokenizer/tokenizer_78b3253a26.model'), {
        vocab: path.join(data, 'kobert-tokenizer/kobertvocab_f38b8a4d6d.json'),
      }),
    ]);
  });

  it('spells every sentence: pieces hold its characters in order, none cut at 8', () => {
    let pieces = 0;
    let bucketed = 0;
    for (const s of val) {
      const { offsets } = tokenizer.encode(s.text);
      const { ids, counts } = pieceSyllables(s.text, offsets);
      const spelled: number[] = [];
      counts.forEach((n, p) => spelled.push(...row(ids, p, DEFAULT_MAX_SYLLABLES).slice(0, n)));
      const expected = [...s.text].filter((ch) => !/\s/.test(ch)).map(of);
      if (spelled.join() !== expected.join()) expect.fail(`${s.file}:${s.line}: ${s.text}`);
      pieces += counts.length;
      bucketed += expected.filter((id) => syllableKind(id) === 'bucket').length;
      expect(Math.max(...counts)).toBeLessThanOrEqual(6); // val's longest piece has 6 characters
    }
    expect(pieces).toBe(29_234);
    expect(bucketed).toBeGreaterThan(0);
  });
});
