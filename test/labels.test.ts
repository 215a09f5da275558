import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

import { readKmouCorpus } from '../lib/corpus/kmou.js';
import type { KmouSentence } from '../lib/corpus/types.js';
import {
  addAlignmentStats,
  alignEntities,
  chunkBio,
  createLabelScheme,
  decodeEntities,
  decodePieces,
  emptyAlignmentStats,
  ENTITY_TYPES,
  fallbackEnd,
  fallbackStart,
  KMOU_SCHEME,
  LABEL2ID,
  LABELS,
  learnRefineTable,
  MarkupError,
  parseMarkup,
  parseTag,
  refineSpan,
  renderMarkup,
  trimRange,
  type PieceOffset,
} from '../lib/labels/index.js';
import { Tokenizer } from '../lib/tokenizer/index.js';
import { random, randomParts, render } from '../scripts/fixtures/corpus_fixtures.js';
import { randomAlignmentCase } from '../scripts/fixtures/labels_cases.js';
import { generateRefineTableSource, TABLE_PATH } from '../scripts/fixtures/labels_refine_table.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shared = path.resolve(repoRoot, '../shared');
const data = path.join(shared, 'data');
const hasShared = existsSync(path.join(data, 'kmou-ner/train'));
if (!hasShared) console.warn(`labels.test: ${data} is absent; skipping the real-corpus tests`);

describe('label scheme', () => {
  it('lists O, then B-X and I-X for the ten KMOU types', () => {
    expect(LABELS).toHaveLength(21);
    expect(LABELS.slice(0, 5)).toEqual(['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC']);
    expect(LABELS[20]).toBe('I-NOH');
    expect(ENTITY_TYPES).toEqual([
      'PER',
      'LOC',
      'ORG',
      'POH',
      'DAT',
      'TIM',
      'DUR',
      'MNY',
      'PNT',
      'NOH',
    ]);
    LABELS.forEach((label, id) => expect(LABEL2ID[label]).toBe(id));
    expect(Object.keys(LABEL2ID)).toHaveLength(21);
  });

  it('builds schemes for other corpora and rejects bad types', () => {
    expect(createLabelScheme(['PS', 'LC']).labels).toEqual(['O', 'B-PS', 'I-PS', 'B-LC', 'I-LC']);
    expect(() => createLabelScheme(['PS', 'PS'])).toThrow(/duplicate/);
    expect(() => createLabelScheme(['A B'])).toThrow(/invalid/);
  });

  it('parses tags and chunks I- after O or another type as a new entity', () => {
    expect(parseTag('E-PER')).toBeNull();
    expect(parseTag('B-')).toBeNull();
    const tags = ['I-PER', 'I-PER', 'O', 'B-LOC', 'I-ORG', 'B-ORG', 'I-ORG'].map((t) =>
      parseTag(t)!,
    );
    expect(chunkBio(tags)).toEqual([
      { type: 'PER', first: 0, last: 1 },
      { type: 'LOC', first: 3, last: 3 },
      { type: 'ORG', first: 4, last: 4 },
      { type: 'ORG', first: 5, last: 6 },
    ]);
  });
});

describe('markup', () => {
  it('reads literal <, > and : in raw text', () => {
    const raw = '[2015] <2> 10:00 기아>현대';
    const markup = '[<2015:DAT>] <<2>:NOH> <10:00:TIM> <기아:ORG>><현대:ORG>';
    expect(parseMarkup(raw, markup).map((e) => [e.text, e.label])).toEqual([
      ['2015', 'DAT'],
      ['<2>', 'NOH'],
      ['10:00', 'TIM'],
      ['기아', 'ORG'],
      ['현대', 'ORG'],
    ]);
    expect(parseMarkup('<트럼보>가', '<<트럼보:POH>>가')[0].text).toBe('트럼보');
  });

  it('round-trips generated sentences', () => {
    const next = random(7);
    for (let k = 0; k < 2000; k++) {
      const { raw, markup } = render(randomParts(next));
      const entities = parseMarkup(raw, markup);
      for (const e of entities) expect(raw.slice(e.start, e.end)).toBe(e.text);
      expect(renderMarkup({ text: raw, entities })).toBe(markup);
    }
  });

  it('explains markup that does not fit', () => {
    const fails = (raw: string, markup: string): MarkupError => {
      try {
        parseMarkup(raw, markup);
      } catch (error) {
        expect(error).toBeInstanceOf(MarkupError);
        return error as MarkupError;
      }
      throw new Error('parsed');
    };
    expect(fails('a foo b', 'a <foo:XYZ> b').reason).toMatch(/unknown tag "XYZ"/);
    expect(fails('a foo b', 'a <foo b')).toMatchObject({
      index: 2,
      reason: expect.stringMatching(/never closed/),
    });
    expect(fails('a foo b', 'a foo:PER> b').reason).toMatch(/no opening/);
    expect(fails('a foo b', 'a <foo:PER> c').reason).toMatch(/does not match the raw text/);
    expect(fails('a foo b', 'a <foo:PER>').reason).toMatch(/ends before the raw text/);
    expect(fails('a b', 'a <:PER>b').reason).toMatch(/empty entity/);
  });

  it('refuses entities it could not render faithfully', () => {
    const entity = (start: number, end: number) => ({ start, end, label: 'PER' });
    expect(() => renderMarkup({ text: 'abc', entities: [entity(1, 2), entity(0, 1)] })).toThrow();
    expect(() => renderMarkup({ text: 'abc', entities: [entity(1, 1)] })).toThrow();
    expect(() => renderMarkup({ text: 'abc', entities: [entity(1, 4)] })).toThrow();
  });
});

describe('alignment', () => {
  const text = '오에 겐자부로는 일본';
  // SentencePiece's pieces: ▁오 에 ▁ 겐 자 부 로 는 ▁일본
  const offsets: PieceOffset[] = [
    [0, 1],
    [1, 2],
    [2, 3],
    [3, 4],
    [4, 5],
    [5, 6],
    [6, 7],
    [7, 8],
    [8, 11],
  ];

  it('labels the first content piece B- and the rest I-, whitespace pieces inside included', () => {
    const entities = [
      { start: 0, end: 7, label: 'PER' },
      { start: 9, end: 11, label: 'LOC' },
    ];
    const { labels, ids, stats } = alignEntities(text, offsets, entities);
    expect(labels).toEqual([
      'B-PER',
      'I-PER',
      'I-PER',
      'I-PER',
      'I-PER',
      'I-PER',
      'I-PER',
      'O',
      'B-LOC',
    ]);
    expect(ids).toEqual(labels.map((l) => LABEL2ID[l]));
    expect(stats).toEqual({
      entities: 2,
      startInsidePiece: 0,
      endInsidePiece: 0,
      straddling: 0,
      lost: 0,
    });
  });

  it('ignores outer spaces of an entity and pieces that only touch them', () => {
    const { labels } = alignEntities(text, offsets, [{ start: 7, end: 11, label: 'LOC' }]);
    expect(labels.slice(7)).toEqual(['B-LOC', 'I-LOC']);
    const spaced = alignEntities(
      'a  b',
      [
        [0, 1],
        [1, 4],
      ],
      [{ start: 1, end: 4, label: 'ORG' }],
    );
    expect(spaced.labels).toEqual(['O', 'B-ORG']);
  });

  it('counts boundaries inside pieces and entities that lose their pieces', () => {
    const t = '13일까지 (18)';
    const o: PieceOffset[] = [
      [0, 2],
      [2, 5],
      [5, 9],
      [9, 10],
    ];
    const { labels, stats } = alignEntities(t, o, [
      { start: 0, end: 3, label: 'DAT' },
      { start: 7, end: 9, label: 'NOH' },
    ]);
    expect(labels).toEqual(['B-DAT', 'I-DAT', 'B-NOH', 'O']);
    expect(stats).toMatchObject({ startInsidePiece: 1, endInsidePiece: 1, straddling: 2, lost: 0 });
    const shared = alignEntities(
      'ab',
      [[0, 2]],
      [
        { start: 0, end: 1, label: 'ORG' },
        { start: 1, end: 2, label: 'ORG' },
      ],
    );
    expect(shared.labels).toEqual(['B-ORG']);
    expect(shared.stats.lost).toBe(1);
  });

  it('gives zero-width pieces the label of the piece they stick to', () => {
    // ㈜삼성 → ▁( 주 ) 삼성: SentencePiece gives `▁(` the space and `주` no width.
    const t = 'a ㈜삼성';
    const o: PieceOffset[] = [
      [0, 1],
      [1, 2],
      [2, 2],
      [2, 3],
      [3, 5],
    ];
    const { labels } = alignEntities(t, o, [{ start: 2, end: 5, label: 'ORG' }]);
    expect(labels).toEqual(['O', 'O', 'B-ORG', 'I-ORG', 'I-ORG']);
    expect(decodeEntities(t, o, labels)).toEqual([
      { entity: 'ORG', text: '㈜삼성', start: 2, end: 5, score: 1 },
    ]);
    const trailing = alignEntities(
      'ab',
      [
        [0, 2],
        [2, 2],
      ],
      [{ start: 0, end: 2, label: 'PER' }],
    );
    expect(trailing.labels).toEqual(['B-PER', 'I-PER']);
  });

  it('rejects overlapping entities and labels outside the scheme', () => {
    expect(() =>
      alignEntities(
        'abc',
        [[0, 3]],
        [
          { start: 0, end: 2, label: 'PER' },
          { start: 1, end: 3, label: 'PER' },
        ],
      ),
    ).toThrow(/overlapping/);
    expect(() => alignEntities('abc', [[0, 3]], [{ start: 0, end: 2, label: 'XYZ' }])).toThrow(
      /scheme/,
    );
  });

  it('holds its properties on generated cases', () => {
    const next = random(42);
    for (let k = 0; k < 3000; k++) {
      const c = randomAlignmentCase(next);
      const { labels, stats } = alignEntities(c.text, c.offsets, c.entities);
      expect(labels).toHaveLength(c.offsets.length);
      labels.forEach((label, p) => {
        expect(LABEL2ID[label]).toBeDefined();
        if (label.startsWith('I-')) expect(labels[p - 1].slice(2)).toBe(label.slice(2));
      });
      const kept = c.entities.length - stats.lost;
      expect(labels.filter((l) => l.startsWith('B-'))).toHaveLength(kept);
      const decoded = decodePieces(c.text, c.offsets, labels);
      expect(decoded).toHaveLength(kept);
      if (stats.lost > 0) continue;
      let exact = 0;
      decoded.forEach((d, e) => {
        const [start, end] = trimRange(c.text, c.entities[e].start, c.entities[e].end);
        expect(d.label).toBe(c.entities[e].label);
        // A whole-piece span covers the entity's content and no more than its edge pieces.
        expect(d.start).toBeLessThanOrEqual(start);
        expect(d.end).toBeGreaterThanOrEqual(end);
        expect(d.first[0]).toBeLessThanOrEqual(start);
        expect(d.last[1]).toBe(d.end);
        if (d.start === start && d.end === end) exact++;
        // Refinement stays inside the decoded span and never empties it.
        const refined = refineSpan(c.text, d);
        expect(refined.start).toBeGreaterThanOrEqual(d.start);
        expect(refined.end).toBeLessThanOrEqual(d.end);
        expect(refined.end).toBeGreaterThan(refined.start);
      });
      expect(exact).toBe(c.entities.length - stats.straddling);
    }
  });

  it('gives back piece-aligned entities exactly', () => {
    const next = random(43);
    for (let k = 0; k < 3000; k++) {
      const c = randomAlignmentCase(next, { aligned: true });
      const { labels, stats } = alignEntities(c.text, c.offsets, c.entities);
      expect(stats.straddling).toBe(0);
      const decoded = decodeEntities(c.text, c.offsets, labels, { refine: false });
      expect(decoded.map((d) => [d.start, d.end, d.entity, d.text])).toEqual(
        c.entities.map((e) => [e.start, e.end, e.label, e.text]),
      );
    }
  });
});

describe('decoding', () => {
  const text = '회의는 13일까지 (1867~1916)';
  const offsets: PieceOffset[] = [
    [0, 2],
    [2, 3],
    [3, 6],
    [6, 9],
    [9, 13],
    [13, 15],
    [15, 16],
    [16, 18],
    [18, 20],
    [20, 21],
  ];
  // pieces: ▁회의 는 ▁13 일까지 ▁(18 67 ~ 19 16 )

  it('spans from the first content character to the end of the last piece', () => {
    const tags = ['O', 'O', 'B-DAT', 'I-DAT', 'B-DUR', 'I-DUR', 'I-DUR', 'I-DUR', 'I-DUR', 'O'];
    expect(decodeEntities(text, offsets, tags, { refine: false }).map((e) => e.text)).toEqual([
      '13일까지',
      '(1867~1916',
    ]);
  });

  it('refines glued particles and brackets away', () => {
    const tags = ['O', 'O', 'B-DAT', 'I-DAT', 'B-DUR', 'I-DUR', 'I-DUR', 'I-DUR', 'I-DUR', 'O'];
    expect(decodeEntities(text, offsets, tags).map((e) => e.text)).toEqual(['13일', '1867~1916']);
    // The general rules alone do the same here.
    expect(
      decodeEntities(text, offsets, tags, { refine: { table: null } }).map((e) => e.text),
    ).toEqual(['13일', '1867~1916']);
    expect(
      decodeEntities(text, offsets, tags, { refine: { table: null, fallback: false } })[0].text,
    ).toBe('13일까지');
  });

  it('starts a new entity at an I- after O or another type, and averages scores', () => {
    const tags = ['I-ORG', 'O', 'I-DAT', 'I-DAT', 'O', 'O', 'O', 'O', 'O', 'O'];
    const scores = [0.5, 1, 0.9, 0.7, 1, 1, 1, 1, 1, 1];
    const entities = decodeEntities(text, offsets, tags, { scores, refine: false });
    expect(entities.map((e) => [e.entity, e.text, e.start, e.end])).toEqual([
      ['ORG', '회의', 0, 2],
      ['DAT', '13일까지', 4, 9],
    ]);
    expect(entities[0].score).toBeCloseTo(0.5);
    expect(entities[1].score).toBeCloseTo(0.8);
  });

  it('takes label ids, and rejects bad tags and mismatched lengths', () => {
    const ids = Int32Array.from(
      ['O', 'O', 'B-DAT', 'I-DAT', 'O', 'O', 'O', 'O', 'O', 'O'],
      (t) => LABEL2ID[t],
    );
    expect(decodeEntities(text, offsets, ids)[0]).toMatchObject({ entity: 'DAT', text: '13일' });
    expect(() => decodeEntities(text, offsets, ['O'])).toThrow(/1 tags for 10 pieces/);
    expect(() => decodeEntities(text, offsets, new Array(10).fill('S-PER'))).toThrow(/bad tag/);
    expect(() => decodeEntities(text, offsets, new Array(10).fill(99))).toThrow(/bad tag/);
    expect(() => decodeEntities(text, offsets, new Array(10).fill('O'), { scores: [1] })).toThrow(
      /scores/,
    );
  });

  it('drops a chunk that holds only whitespace', () => {
    expect(
      decodeEntities(
        'a  b',
        [
          [0, 1],
          [1, 3],
          [3, 4],
        ],
        ['O', 'B-PER', 'O'],
      ),
    ).toEqual([]);
  });

  it('applies the general rules conservatively', () => {
    expect(fallbackEnd('13일', '까지')).toBe(true);
    expect(fallbackEnd('서울', '시')).toBe(false);
    expect(fallbackEnd('삼성', ')')).toBe(true);
    expect(fallbackEnd('(주', ')')).toBe(false);
    expect(fallbackEnd('서울', '에서,')).toBe(true);
    expect(fallbackStart('(', '18')).toBe(true);
    expect(fallbackStart('(', '주)')).toBe(false);
    expect(fallbackStart('1', '8')).toBe(false);
  });

  it('learns cuts from examples', () => {
    const samples = Array.from({ length: 3 }, () => ({
      text: '김성이 왔다',
      offsets: [
        [0, 1],
        [1, 3],
        [3, 6],
      ] as PieceOffset[],
      entities: [{ start: 0, end: 2, label: 'PER' }],
    }));
    const table = learnRefineTable(samples);
    expect(table.endContext).toEqual([]);
    expect(table.end).toEqual([['PER', '이', 3, 3]]);
    const noisy = learnRefineTable([
      ...samples,
      ...Array.from({ length: 4 }, () => ({
        ...samples[0],
        entities: [{ start: 0, end: 3, label: 'PER' }],
      })),
    ]);
    // Mostly not cut: kept as a refusal, because the general rule would cut `이`.
    expect(noisy.end).toEqual([['PER', '이', 3, 7]]);
    const span = decodePieces('김성이 왔다', samples[0].offsets, ['B-PER', 'I-PER', 'O'])[0];
    expect(refineSpan('김성이 왔다', span, { table })).toEqual({ start: 0, end: 2 });
    expect(refineSpan('김성이 왔다', span, { table: noisy })).toEqual({ start: 0, end: 3 });
  });
});

describe.skipIf(!hasShared)('on the KMOU corpus', () => {
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

  it('renders every sentence back to its markup line (train and val)', () => {
    let checked = 0;
    for (const sentence of [...train, ...val]) {
      if (renderMarkup(sentence) !== sentence.markup) {
        expect.fail(
          `${sentence.file}:${sentence.line}: ${renderMarkup(sentence)} !== ${sentence.markup}`,
        );
      }
      checked++;
    }
    expect(checked).toBe(23_033 + 931);
  });

  it('keeps the exact-span ceiling on validation: 88.35% whole pieces, 99.68% refined', () => {
    const stats = emptyAlignmentStats();
    const correct = { whole: 0, refined: 0 };
    let gold = 0;
    for (const { text, entities } of val) {
      const { offsets } = tokenizer.encode(text);
      const alignment = alignEntities(text, offsets, entities);
      addAlignmentStats(stats, alignment.stats);
      const keys = new Set(entities.map((e) => `${e.start}:${e.end}:${e.label}`));
      gold += keys.size;
      const count = (refine: boolean) =>
        decodeEntities(text, offsets, alignment.labels, { refine }).filter((d) =>
          keys.has(`${d.start}:${d.end}:${d.entity}`),
        ).length;
      correct.whole += count(false);
      correct.refined += count(true);
    }
    expect(stats).toEqual({
      entities: 3415,
      startInsidePiece: 55,
      endInsidePiece: 354,
      straddling: 398,
      lost: 0,
    });
    expect(gold).toBe(3415);
    expect(correct).toEqual({ whole: 3017, refined: 3404 });
  });

  it('trims 까지 from 13일까지 on real pieces', () => {
    const text = '회의는 13일까지 열린다.';
    const { offsets } = tokenizer.encode(text);
    const { labels, stats } = alignEntities(text, offsets, [{ start: 4, end: 7, label: 'DAT' }]);
    expect(stats.endInsidePiece).toBe(1);
    expect(decodeEntities(text, offsets, labels)).toEqual([
      { entity: 'DAT', text: '13일', start: 4, end: 7, score: 1 },
    ]);
  });

  it('has a refinement table that its generator reproduces from the training split', async () => {
    expect(await generateRefineTableSource(shared)).toBe(await readFile(TABLE_PATH, 'utf8'));
  });

  it('has exactly the scheme’s ten types', () => {
    const labels = new Set(train.flatMap((s) => s.entities.map((e) => e.label)));
    expect([...labels].sort()).toEqual([...KMOU_SCHEME.types].sort());
  });
});
