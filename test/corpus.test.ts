import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import {
  CorpusError,
  formatConll,
  fromBio,
  parseConll,
  parseKmou,
  readConll,
  readKmouCorpus,
  readKmouFile,
  toBio,
  writeConll,
  type CorpusWarning,
  type KmouSentence,
  type Sentence,
} from '../lib/corpus/index.js';
import {
  alignMorphemes,
  type MorphemeAlignmentStats,
  type MorphemeToken,
} from '../lib/corpus/morphemes.js';
import type { MorphemeSpan } from '../lib/corpus/types.js';
import { ENTITY_TYPES } from '../lib/labels/scheme.js';
import {
  conllLines,
  CORRUPTIBLE,
  corruptions,
  kmouBlock,
  kmouFile,
  lineOf,
  random,
  randomParts,
} from '../scripts/fixtures/corpus_fixtures.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const kmou = path.join(path.resolve(repoRoot, '../shared'), 'data/kmou-ner');
const hasShared = existsSync(path.join(kmou, 'train'));
if (!hasShared) console.warn(`corpus.test: ${kmou} is absent; skipping the real-corpus tests`);

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'koner-corpus-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Entity texts with whitespace runs as single spaces, as a CoNLL round trip gives them. */
const squeezed = (sentence: Sentence) =>
  sentence.entities.map((e) => [e.text.trim().replace(/\s+/g, ' '), e.label]);

describe('KMOU reader on generated files', () => {
  it('reads blocks, with a BOM and literal <, >, : in the text', async () => {
    const next = random(1);
    const parts = Array.from({ length: 50 }, () => randomParts(next));
    const blocks = parts.map((p, k) => kmouBlock(String(k + 1), p));
    const file = path.join(tmp, 'generated.txt');
    await writeFile(file, kmouFile(blocks, { bom: true }));
    const { sentences, skipped } = await readKmouFile(file);
    expect(skipped).toBe(0);
    expect(sentences).toHaveLength(50);
    sentences.forEach((s, k) => {
      expect(s).toMatchObject({ file, id: String(k + 1), line: lineOf(blocks, k, 0) });
      expect(s.text).toBe(blocks[k][1].slice(3));
      const expected = parts[k].filter((p) => typeof p !== 'string');
      expect(s.entities.map((e) => ({ text: e.text, label: e.label }))).toEqual(expected);
      for (const e of s.entities) expect(s.text.slice(e.start, e.end)).toBe(e.text);
    });
    expect(sentences[0].text.startsWith('\uFEFF')).toBe(false);
    const viaCorpus = await readKmouCorpus(file);
    expect(viaCorpus).toEqual(sentences.map((s) => ({ ...s, file: 'generated.txt' })));
  });

  it('accepts CRLF line ends and extra blank lines', () => {
    const blocks = [kmouBlock('1', CORRUPTIBLE), kmouBlock('2', ['없음'])];
    const content = `\n\n${blocks.map((b) => b.join('\r\n')).join('\r\n  \r\n\r\n')}\r\n\r\n`;
    const { sentences } = parseKmou(content, 'crlf.txt');
    expect(sentences.map((s) => [s.id, s.line, s.entities.length])).toEqual([
      ['1', 3, 3],
      ['2', 5 + blocks[0].length, 0],
    ]);
  });

  for (const [name, corruption] of Object.entries(corruptions)) {
    it(`names file and line of a block with ${name}`, async () => {
      const blocks = [
        kmouBlock('1', ['앞 문장']),
        kmouBlock('2', CORRUPTIBLE),
        kmouBlock('3', ['뒤']),
      ];
      blocks[1] = corruption.apply(blocks[1]);
      const dir = await mkdtemp(path.join(tmp, 'bad-'));
      const file = path.join(dir, 'bad.txt');
      await writeFile(file, kmouFile(blocks));
      const line = lineOf(blocks, 1, corruption.line);
      const error = await readKmouCorpus(dir).then(
        () => expect.fail('read a malformed block'),
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(CorpusError);
      expect(error).toMatchObject({ file, line });
      expect((error as Error).message).toMatch(corruption.message);
      expect((error as Error).message.startsWith(`${file}:${line}: `)).toBe(true);
    });
  }

  it('refuses invalid UTF-8 naming file and line, or reads it with a warning when lenient', async () => {
    // A Latin-1 'é' (one byte, 0xE9) where § stands: in the raw, markup and morpheme lines.
    const blocks = [
      kmouBlock('1', ['앞 문장']),
      kmouBlock('2', ['§부산', { text: '서울', label: 'LOC' }]),
    ];
    const marker = Buffer.from('§');
    const parts: Buffer[] = [];
    let rest = Buffer.from(kmouFile(blocks));
    for (let i = rest.indexOf(marker); i >= 0; i = rest.indexOf(marker)) {
      parts.push(rest.subarray(0, i), Buffer.from([0xe9]));
      rest = rest.subarray(i + marker.length);
    }
    const bad = Buffer.concat([...parts, rest]);
    const at = bad.indexOf(0xe9);
    const dir = await mkdtemp(path.join(tmp, 'utf8-'));
    const file = path.join(dir, 'latin1.txt');
    await writeFile(file, bad);
    const line = lineOf(blocks, 1, 1);
    await expect(readKmouCorpus(dir)).rejects.toThrow(
      new RegExp(
        `^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}: invalid UTF-8 at byte ${at}`,
      ),
    );
    await expect(readKmouFile(file)).rejects.toBeInstanceOf(CorpusError);
    const warnings: CorpusWarning[] = [];
    const sentences = await readKmouCorpus(dir, {
      lenient: true,
      onWarning: (w) => warnings.push(w),
    });
    expect(sentences.map((s) => s.text)).toEqual(['앞 문장', '\uFFFD부산서울']);
    expect(warnings).toEqual([
      expect.objectContaining({ file, line, message: expect.stringMatching(/read as U\+FFFD$/) }),
    ]);
    const conll = path.join(dir, 'latin1.conll');
    await writeFile(conll, Buffer.concat([Buffer.from('부산 B-LOC\n'), Buffer.from([0xff, 0x0a])]));
    await expect(readConll(conll)).rejects.toThrow(/latin1\.conll:2: invalid UTF-8 at byte 13/);
  });

  it('reports a missing blank line between blocks', () => {
    const blocks = [kmouBlock('1', CORRUPTIBLE), kmouBlock('2', ['다음'])];
    const glued = [...blocks[0], ...blocks[1]].join('\n');
    expect(() => parseKmou(glued, 'glued.txt')).toThrow(
      new RegExp(`^glued.txt:${blocks[0].length + 1}: unexpected '## ' line`),
    );
  });

  it('skips malformed blocks with a warning in lenient mode, and counts them', async () => {
    const names = Object.keys(corruptions);
    const blocks = [kmouBlock('ok1', CORRUPTIBLE)];
    names.forEach((name, k) => {
      blocks.push(corruptions[name].apply(kmouBlock(`bad${k}`, CORRUPTIBLE)));
      blocks.push(kmouBlock(`ok${k + 2}`, ['문장', { text: '부산', label: 'LOC' }]));
    });
    const dir = await mkdtemp(path.join(tmp, 'lenient-'));
    await writeFile(path.join(dir, 'a.txt'), kmouFile(blocks));
    await writeFile(path.join(dir, 'b.txt'), kmouFile([kmouBlock('b1', ['좋은 문장'])]));
    const warnings: CorpusWarning[] = [];
    const sentences = await readKmouCorpus(dir, {
      lenient: true,
      onWarning: (w) => warnings.push(w),
    });
    expect(sentences.map((s) => s.id)).toEqual(['ok1', ...names.map((_, k) => `ok${k + 2}`), 'b1']);
    expect(warnings).toHaveLength(names.length + 1);
    warnings.slice(0, -1).forEach((w, k) => {
      expect(w.line).toBe(lineOf(blocks, 1 + 2 * k, corruptions[names[k]].line));
      expect(w.message).toMatch(/\(block skipped\)$/);
    });
    expect(warnings.at(-1)!.message).toMatch(`skipped ${names.length} malformed blocks`);

    const spy = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const result = parseKmou(kmouFile(blocks), 'a.txt', { lenient: true });
      expect(result.skipped).toBe(names.length);
      expect(result.sentences).toHaveLength(names.length + 1);
      expect(spy).toHaveBeenCalledTimes(names.length);
    } finally {
      spy.mockRestore();
    }
  });

  it('refuses a directory without .txt files', async () => {
    const dir = await mkdtemp(path.join(tmp, 'empty-'));
    await expect(readKmouCorpus(dir)).rejects.toThrow(/no .txt files/);
  });
});

/** `[span text, tag]` of each morpheme, to compare with what a test expects. */
const sliced = (text: string, morphemes: readonly MorphemeSpan[]) =>
  morphemes.map((m) => [text.slice(m.start, m.end), m.pos]);

/** Morpheme groups from `surface/TAG` words, e.g. `그/NP 는/JX`. */
const eojeolsOf = (...words: string[]): MorphemeToken[][] =>
  words.map((word) =>
    word.split(' ').map((token) => {
      const [surface, pos] = token.split('/');
      return { surface, pos };
    }),
  );

/** Spans in order, inside the text, non-empty, without whitespace at either end. */
function expectWellFormed(text: string, morphemes: readonly MorphemeSpan[], where = '') {
  let end = 0;
  for (const m of morphemes) {
    const span = text.slice(m.start, m.end);
    if (m.start < end || m.end <= m.start || m.end > text.length || /^\s|\s$/.test(span)) {
      expect.fail(`${where}: bad morpheme ${JSON.stringify(m)} (${JSON.stringify(span)})`);
    }
    end = m.end;
  }
}

const characters = (stats: MorphemeAlignmentStats) =>
  stats.exact + stats.fallback + stats.uncovered;

describe('KMOU morphemes', () => {
  it('spans of generated blocks slice to their surfaces', () => {
    const next = random(7);
    const blocks = Array.from({ length: 40 }, (_, k) => kmouBlock(String(k), randomParts(next)));
    const { sentences, morphemeStats } = parseKmou(kmouFile(blocks), 'gen.txt');
    for (const [k, s] of sentences.entries()) {
      const surfaces = blocks[k].slice(3).filter((line) => !line.startsWith('_\t'));
      expect(sliced(s.text, s.morphemes)).toEqual(
        surfaces.map((line) => [line.split('\t')[0], 'NNG']),
      );
    }
    expect(morphemeStats.sentences).toBe(40);
    expect(morphemeStats.exact).toBe(morphemeStats.characters);
    expect(morphemeStats.fallback + morphemeStats.uncovered + morphemeStats.dropped).toBe(0);
  });

  it('gives a contracted form the joined tags of the morphemes it fuses', () => {
    const block = [
      '## 1',
      '## 그는 말했다.',
      '## 그는 말했다.',
      ...['그\t그\tNP\tO', '는\t는\tJX\tO', '_\t_\t_\tO', '말\t말\tNNG\tO'],
      ...['하\t하\tXSV\tO', '였\t였\tEP\tO', '다\t다\tEF\tO', '.\t.\tSF\tO'],
    ];
    const { sentences, morphemeStats } = parseKmou(block.join('\n'), 'contracted.txt');
    expect(sliced(sentences[0].text, sentences[0].morphemes)).toEqual([
      ['그', 'NP'],
      ['는', 'JX'],
      ['말', 'NNG'],
      ['했', 'XSV+EP'],
      ['다', 'EF'],
      ['.', 'SF'],
    ]);
    expect(morphemeStats).toMatchObject({ characters: 6, exact: 5, fallback: 1, uncovered: 0 });
    // A literal `_` is a morpheme (tagged SW), not an eojeol break.
    const underscore = ['## 2', '## a_b', '## a_b', 'a\ta\tSL\tO', '_\t_\tSW\tO', 'b\tb\tSL\tO'];
    const [s] = parseKmou(underscore.join('\n'), 'u.txt').sentences;
    expect(sliced(s.text, s.morphemes)).toEqual([
      ['a', 'SL'],
      ['_', 'SW'],
      ['b', 'SL'],
    ]);
  });

  it('keeps every character of a mismatching eojeol and never throws', () => {
    const cases: [
      string,
      MorphemeToken[][],
      (string | number)[][],
      Partial<MorphemeAlignmentStats>,
    ][] = [
      // Text the morphemes never spell extends the eojeol's last morpheme.
      [
        '부산에서요',
        eojeolsOf('부산/NNP 에서/JKB'),
        [
          ['부산', 'NNP'],
          ['에서요', 'JKB'],
        ],
        { fallback: 1 },
      ],
      // A held run ends where the next morpheme is found; held morphemes with nothing left are
      // dropped; a held run at the end takes the rest.
      [
        '했다고',
        eojeolsOf('하/VV 였/EP 다/EF 고/EC'),
        [
          ['했', 'VV+EP'],
          ['다', 'EF'],
          ['고', 'EC'],
        ],
        { exact: 2, fallback: 1 },
      ],
      ['간다', eojeolsOf('가/VV ㄴ다/EF'), [['간다', 'VV+EF']], { fallback: 2, dropped: 0 }],
      ['가', eojeolsOf('가/VV ㄴ/ETM'), [['가', 'VV']], { exact: 1, dropped: 1 }],
      ['했', eojeolsOf('하/VV 였/EP'), [['했', 'VV+EP']], { fallback: 1 }],
      // Eojeol counts differ: one range, whitespace skipped between morphemes.
      [
        '서울 역',
        eojeolsOf('서울/NNP 역/NNG'),
        [
          ['서울', 'NNP'],
          ['역', 'NNG'],
        ],
        { exact: 3, eojeolMismatches: 1 },
      ],
      ['서울 역', eojeolsOf('부/NNP 산/NNG'), [['서울 역', 'NNP+NNG']], { fallback: 3 }],
      // Fewer groups than words: the leftover text joins the last morpheme; no morphemes at all.
      [
        '가 나',
        [[{ surface: '가', pos: 'NNG' }]],
        [['가 나', 'NNG']],
        { exact: 1, fallback: 1, eojeolMismatches: 1 },
      ],
      ['가 나', [], [], { uncovered: 2 }],
    ];
    for (const [text, eojeols, expected, stats] of cases) {
      const result = alignMorphemes(text, eojeols);
      expect(sliced(text, result.morphemes), text).toEqual(expected);
      expect(result.stats, text).toMatchObject(stats);
      expect(characters(result.stats)).toBe(result.stats.characters);
    }
    // Random surfaces against random text: well-formed spans and consistent counts, always.
    const next = random(11);
    const alphabet = ['가', '나', '다', ' ', 'a', '했', '\uD83D\uDE00'];
    const pick = () => alphabet[Math.floor(next() * alphabet.length)];
    for (let trial = 0; trial < 2000; trial++) {
      const text = Array.from({ length: 1 + Math.floor(next() * 12) }, pick).join('');
      const eojeols = Array.from({ length: Math.floor(next() * 4) }, () =>
        Array.from({ length: Math.floor(next() * 4) }, () => ({
          surface:
            Array.from({ length: 1 + Math.floor(next() * 2) }, pick)
              .join('')
              .trim() || '라',
          pos: 'NNG',
        })),
      );
      const { morphemes, stats } = alignMorphemes(text, eojeols);
      expectWellFormed(text, morphemes, JSON.stringify([text, eojeols]));
      expect(characters(stats)).toBe(stats.characters);
    }
  });
});

describe('CoNLL', () => {
  it('reads tab- or space-separated columns into sentences with exact offsets', async () => {
    const lines = [
      ...conllLines(['김철수', '는', '부산', '에'], ['B-PER', 'O', 'B-LOC', 'O']),
      '',
      '-DOCSTART- -X- O O',
      ...conllLines(['한국', '은행', '이'], ['B-ORG', 'I-ORG', 'O'], ' '),
      '',
      '',
      'EU NNP B-NP B-ORG',
      'rejects VBZ B-VP O',
    ];
    const file = path.join(tmp, 'good.conll');
    await writeFile(file, `\uFEFF${lines.join('\n')}\n`);
    const sentences = await readConll(file);
    expect(sentences.map((s) => [s.text, s.line, s.entities])).toEqual([
      [
        '김철수 는 부산 에',
        1,
        [
          { start: 0, end: 3, label: 'PER', text: '김철수' },
          { start: 6, end: 8, label: 'LOC', text: '부산' },
        ],
      ],
      ['한국 은행 이', 7, [{ start: 0, end: 5, label: 'ORG', text: '한국 은행' }]],
      ['EU rejects', 12, [{ start: 0, end: 2, label: 'ORG', text: 'EU' }]],
    ]);
    expect(sentences[0].file).toBe(file);
  });

  it('starts an entity at an I- tag after O or another type', () => {
    const [s] = parseConll(
      conllLines(['a', 'b', 'c', 'd'], ['I-PER', 'I-LOC', 'O', 'I-LOC']).join('\n'),
      'x',
    );
    expect(s.entities.map((e) => [e.text, e.label])).toEqual([
      ['a', 'PER'],
      ['b', 'LOC'],
      ['d', 'LOC'],
    ]);
  });

  it.each([
    ['an unknown prefix', 'E-PER', /bad tag "E-PER"/],
    ['a lower-case o', 'o', /bad tag "o"/],
    ['a type-less B-', 'B-', /bad tag "B-"/],
  ])('names file and line for %s', async (_name, tag, message) => {
    const file = path.join(tmp, 'bad-tag.conll');
    await writeFile(
      file,
      [...conllLines(['a', 'b'], ['O', 'O']), '', ...conllLines(['c', 'd'], ['O', tag])].join('\n'),
    );
    await expect(readConll(file)).rejects.toThrow(new RegExp(`^${file}:5: ${message.source}`));
  });

  it('names file and line for a missing column', () => {
    expect(() => parseConll('a\tO\nb\n', 'm.conll')).toThrow(/^m.conll:2: missing tag column/);
    expect(() => parseConll('a\tO\n\tO\n', 'm.conll')).toThrow(/^m.conll:2: missing token column/);
    expect(() => parseConll('a\tO\n\tO\n', 'm.conll')).toThrow(CorpusError);
    expect(() => parseConll('a\u00a0b\tO\n', 'm.conll')).toThrow(/^m.conll:1: token .* whitespace/);
  });

  it('widens entities inside tokens, drops none silently, and can split tokens instead', () => {
    const sentence: Sentence = {
      text: '일본은  기아>현대 오에 겐자부로',
      entities: [
        { start: 0, end: 2, label: 'LOC', text: '일본' },
        { start: 5, end: 7, label: 'ORG', text: '기아' },
        { start: 8, end: 10, label: 'ORG', text: '현대' },
        { start: 11, end: 18, label: 'PER', text: '오에 겐자부로' },
      ],
    };
    const plain = toBio(sentence);
    expect(plain.tokens).toEqual(['일본은', '기아>현대', '오에', '겐자부로']);
    expect(plain.tags).toEqual(['B-LOC', 'B-ORG', 'B-PER', 'I-PER']);
    expect(plain.report).toEqual({ entities: 4, exact: 1, widened: 2, dropped: 1 });
    const split = toBio(sentence, { splitAtEntities: true });
    expect(split.tokens).toEqual(['일본', '은', '기아', '>', '현대', '오에', '겐자부로']);
    expect(split.report).toEqual({ entities: 4, exact: 4, widened: 0, dropped: 0 });
    expect(squeezed(fromBio(split))).toEqual(squeezed(sentence));
    expect(() => toBio({ text: '  ', entities: [] })).toThrow(/no token/);
    expect(() => formatConll([sentence, { text: '', entities: [] }])).toThrow(/sentence 1/);
  });
});

describe.skipIf(!hasShared)('KMOU corpus', () => {
  let train: KmouSentence[];
  let val: KmouSentence[];
  beforeAll(async () => {
    [train, val] = await Promise.all([
      readKmouCorpus(path.join(kmou, 'train')),
      readKmouCorpus(path.join(kmou, 'val')),
    ]);
  });

  it('has 23,033 training and 931 validation sentences with 77,382 and 3,415 entities', () => {
    expect(train).toHaveLength(23_033);
    expect(val).toHaveLength(931);
    expect(train.reduce((n, s) => n + s.entities.length, 0)).toBe(77_382);
    expect(val.reduce((n, s) => n + s.entities.length, 0)).toBe(3_415);
  });

  it('gives exact UTF-16 offsets, sorted and non-overlapping, with known labels', () => {
    for (const s of [...train, ...val]) {
      let end = 0;
      for (const e of s.entities) {
        if (s.text.slice(e.start, e.end) !== e.text || e.start < end || e.end <= e.start) {
          expect.fail(`${s.file}:${s.line}: bad entity ${JSON.stringify(e)}`);
        }
        if (!(ENTITY_TYPES as readonly string[]).includes(e.label))
          expect.fail(`${s.file}:${s.line}: ${e.label}`);
        end = e.end;
      }
    }
  });

  it('reads files in sorted order and locates each block', async () => {
    const files = [...new Set(train.map((s) => s.file))];
    expect(files).toHaveLength(1425);
    expect(files).toEqual([...files].sort());
    expect(val.map((s) => s.file).filter((f, k, all) => all.indexOf(f) === k)).toEqual([
      'EXOBRAIN_NE_CORPUS_009.txt',
      'EXOBRAIN_NE_CORPUS_010.txt',
    ]);
    const sample = train.filter((_, k) => k % 997 === 0);
    for (const s of sample) {
      const lines = (await readFile(path.join(kmou, 'train', s.file), 'utf8'))
        .replace(/^\uFEFF/, '')
        .split('\n');
      expect(lines.slice(s.line - 1, s.line + 2)).toEqual([
        `## ${s.id}`,
        `## ${s.text}`,
        `## ${s.markup}`,
      ]);
    }
  });

  it('handles the traps the data README lists', () => {
    const bom = train.filter((s) => s.file === 'EXOBRAIN_NE_CORPUS_002.txt');
    expect(bom[0].id).toBe('1');
    expect(train.some((s) => s.id.includes('\uFEFF') || s.text.includes('\uFEFF'))).toBe(false);
    expect(train.filter((s) => /[<>]/.test(s.text))).toHaveLength(23);
    const entities = train.flatMap((s) => s.entities);
    expect(entities.filter((e) => e.text === '<2>' && e.label === 'NOH')).toHaveLength(1);
    expect(entities.some((e) => e.text === '10:00' || /\d:\d\d/.test(e.text))).toBe(true);
    expect(entities.filter((e) => /^\s|\s$/.test(e.text))).toHaveLength(7);
    const bracketed = train.find((s) => s.text.startsWith('<호우시절>'))!;
    expect(bracketed.entities[0].text).toBe('호우시절');
  });

  it('gives morphemes that tile every character, aligned exactly', async () => {
    for (const s of [...train, ...val]) {
      expectWellFormed(s.text, s.morphemes, `${s.file}:${s.line}`);
      const covered = s.morphemes.reduce((n, m) => n + m.end - m.start, 0);
      expect(covered).toBe(s.text.replace(/\s/g, '').length);
    }
    // Every surface equals its text (measured on the whole corpus: 1,201,714 of 1,201,714
    // characters); checked here on a sample of files to keep the suite fast.
    const files = [...new Set(train.map((s) => s.file))].filter((_, k) => k % 100 === 0);
    for (const file of files) {
      const { morphemeStats } = await readKmouFile(path.join(kmou, 'train', file));
      expect(morphemeStats.characters).toBeGreaterThan(0);
      expect(morphemeStats.exact, file).toBe(morphemeStats.characters);
    }
    // The corpus writes a fused surface with joined tags: 담긴 is 담기 + ㄴ.
    const first = train.find((s) => s.file === '00002_NER.txt' && s.id === '1')!;
    expect(sliced(first.text, first.morphemes)).toContainEqual(['담긴', 'VV+ETM']);
    const pos = new Set(train.flatMap((s) => s.morphemes.map((m) => m.pos)));
    expect(pos.has('NNG') && pos.has('+EP') && pos.has('VV+EC')).toBe(true);
    expect(pos.has('_')).toBe(false);
  });

  it('round-trips through CoNLL where token boundaries allow', async () => {
    const file = path.join(tmp, 'val.conll');
    const report = await writeConll(file, val);
    expect(report.sentences).toBe(931);
    expect(report.entities).toBe(3415);
    expect(report.exact + report.widened + report.dropped).toBe(3415);
    const back = await readConll(file);
    expect(back).toHaveLength(931);
    // Entities whose edges are token edges must read back with the same text, label and
    // token position; the others come back widened to whole tokens.
    let aligned = 0;
    back.forEach((s, k) => {
      const { text, entities } = val[k];
      const tokens = text.trim().split(/\s+/);
      expect(s.text).toBe(tokens.join(' '));
      for (const e of entities) {
        const [start, end] = [
          e.start + /^\s*/.exec(e.text)![0].length,
          e.end - /\s*$/.exec(e.text)![0].length,
        ];
        if (
          !(start === 0 || /\s/.test(text[start - 1])) ||
          !(end === text.length || /\s/.test(text[end]))
        ) {
          continue;
        }
        const before = text.slice(0, start).trim();
        const at = before === '' ? 0 : before.split(/\s+/).join(' ').length + 1;
        const expected = text.slice(start, end).split(/\s+/).join(' ');
        expect(s.entities).toContainEqual({
          start: at,
          end: at + expected.length,
          label: e.label,
          text: expected,
        });
        aligned++;
      }
    });
    expect(aligned).toBe(report.exact);
    expect(aligned).toBeGreaterThan(1000);

    const splitFile = path.join(tmp, 'val-split.conll');
    const splitReport = await writeConll(splitFile, val, { splitAtEntities: true, separator: ' ' });
    expect(splitReport).toMatchObject({ exact: 3415, widened: 0, dropped: 0 });
    const splitBack = await readConll(splitFile);
    splitBack.forEach((s, k) => expect(squeezed(s)).toEqual(squeezed(val[k])));
  });
});
