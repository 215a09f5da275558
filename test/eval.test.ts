import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

import { formatFixed, numpySum } from '../lib/eval/common.js';
import {
  confusionMatrix,
  confusionMatrixSvg,
  entitiesFromBio,
  entityMetrics,
  entityMetricsFromBio,
  formatClassificationReport,
  formatConfusionMatrix,
  formatEntityReport,
  lineChartSvg,
  normalizeConfusionMatrix,
  tokenClassificationReport,
  trainingCurvesSvg,
  writeSvg,
  type ConfusionMatrix,
  type Entity,
  type Scores,
  type TokenClassificationReport,
  type TokenReportOptions,
} from '../lib/eval/index.js';
import { seededFloats } from './fixtures/random.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const GENERATED = join(ROOT, 'test', 'fixtures', 'generated');
// Debian's python3-sklearn lives under the system interpreter; the first python3 on PATH may be
// another one. KONER_SKLEARN_PYTHON points elsewhere (e.g. a virtualenv) when needed.
const PYTHON = process.env.KONER_SKLEARN_PYTHON ?? '/usr/bin/python3';
const SYSTEM_PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : undefined;

function probeSklearn(): boolean {
  if (!existsSync(PYTHON)) return false;
  const r = spawnSync(PYTHON, ['-c', 'import sklearn'], { stdio: 'ignore', timeout: 60_000 });
  return r.status === 0;
}
const SKLEARN = probeSklearn();

// ---------------------------------------------------------------------------------------------
// Seeded generation of piece-label cases (independent of the Python generator).

interface Rng {
  next(): number;
  int(lo: number, hi: number): number;
  pick<T>(xs: readonly T[]): T;
}

function rng(seed: number): Rng {
  const next = seededFloats(seed);
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
  };
}

const TYPES = ['PER', 'LOC', 'ORG', 'DAT', 'TIM', 'DUR', 'MNY', '인명'];

interface GenCase {
  gold: string[][];
  pred: string[][];
}

function genCase(r: Rng): GenCase {
  const types = TYPES.filter(() => r.next() < 0.5);
  if (types.length === 0) types.push('PER');
  const pool = ['O', ...[...types, 'ZZZ'].flatMap((t) => [`B-${t}`, `I-${t}`])];
  const pEntity = r.pick([0, 0.1, 0.3, 0.6]);
  const mode = r.pick(['noisy', 'allO', 'perfect', 'wild', 'sparse']);
  const gold: string[][] = [];
  const pred: string[][] = [];
  const nSent = r.int(1, 7);
  for (let s = 0; s < nSent; s++) {
    const len = r.pick([0, 1, 2, 5, 12, 30]);
    const g: string[] = [];
    while (g.length < len) {
      if (r.next() < pEntity) {
        const t = r.pick(types);
        g.push((r.next() < 0.1 ? 'I-' : 'B-') + t);
        for (let k = r.int(0, 3); k > 0 && g.length < len; k--) g.push(`I-${t}`);
      } else g.push('O');
    }
    if (r.next() < 0.2) {
      g.unshift('[CLS]');
      g.push('[SEP]');
    }
    const noise = mode === 'wild' ? 0.7 : mode === 'noisy' ? 0.25 : mode === 'sparse' ? 0.1 : 0;
    const allO = mode === 'allO' || (mode === 'sparse' && r.next() < 0.5);
    pred.push(
      g.map((l) =>
        allO
          ? l.startsWith('B-') || l.startsWith('I-')
            ? 'O'
            : l
          : r.next() < noise
            ? r.pick(pool)
            : l,
      ),
    );
    gold.push(g);
  }
  if (gold.every((s) => s.length === 0)) {
    gold.push(['B-PER', 'O']);
    pred.push(['O', 'O']);
  }
  return { gold, pred };
}

const CASES: GenCase[] = (() => {
  const r = rng(7);
  return Array.from({ length: 250 }, () => genCase(r));
})();

// ---------------------------------------------------------------------------------------------
// Straightforward re-implementations, written without looking at the library's shortcuts.

function byCodePoint(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0)!);
  const y = Array.from(b, (c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function bruteTokenRows(
  gold: string[],
  pred: string[],
  labels: string[],
  zd: number,
): { label: string; p: number; r: number; f: number; support: number }[] {
  return labels.map((label) => {
    let tp = 0;
    let predicted = 0;
    let support = 0;
    for (let i = 0; i < gold.length; i++) {
      if (gold[i] === label) support++;
      if (pred[i] === label) predicted++;
      if (gold[i] === label && pred[i] === label) tp++;
    }
    const p = predicted === 0 ? zd : tp / predicted;
    const r = support === 0 ? zd : tp / support;
    const f = support + predicted === 0 ? zd : p + r === 0 ? 0 : (2 * p * r) / (p + r);
    return { label, p, r, f, support };
  });
}

function bruteConfusion(gold: string[], pred: string[], labels: string[]): number[][] {
  return labels.map((a) =>
    labels.map((b) => gold.filter((g, i) => g === a && pred[i] === b).length),
  );
}

// conlleval's per-position predicates, spelled out.
function bruteChunks(tags: readonly string[]): [number, number, string][] {
  const split = (t: string): [string, string] =>
    t === 'O' || t.startsWith('[') ? ['O', ''] : [t[0], t.slice(2)];
  const out: [number, number, string][] = [];
  let start = -1;
  let [prevTag, prevType] = ['O', ''];
  [...tags, 'O'].forEach((t, i) => {
    const [tag, type] = split(t);
    const ends = prevTag !== 'O' && (tag === 'B' || tag === 'O' || prevType !== type);
    const starts = tag === 'B' || (tag === 'I' && (prevTag === 'O' || prevType !== type));
    if (start >= 0 && ends) {
      out.push([start, i, prevType]);
      start = -1;
    }
    if (starts) start = i;
    [prevTag, prevType] = [tag, type];
  });
  return out;
}

function bruteEntityCounts(gold: Entity[][], pred: Entity[][], type?: string) {
  let tp = 0;
  let nGold = 0;
  let nPred = 0;
  gold.forEach((gs, s) => {
    const g = gs.filter((e) => type === undefined || e.label === type);
    const p = pred[s].filter((e) => type === undefined || e.label === type);
    nGold += g.length;
    nPred += p.length;
    const used = g.map(() => false);
    for (const e of p) {
      const k = g.findIndex(
        (x, i) => !used[i] && x.start === e.start && x.end === e.end && x.label === e.label,
      );
      if (k >= 0) {
        used[k] = true;
        tp++;
      }
    }
  });
  const p = nPred ? tp / nPred : 0;
  const r = nGold ? tp / nGold : 0;
  return { tp, nGold, nPred, p, r, f: p + r ? (2 * p * r) / (p + r) : 0 };
}

const flat = (x: string[][]) => x.flat();

// ---------------------------------------------------------------------------------------------

describe('token classification report (brute force)', () => {
  it('matches per-label counting on generated cases', () => {
    CASES.forEach((c, n) => {
      const zd = n % 3 === 2 ? 1 : 0;
      const opts: TokenReportOptions = { zeroDivision: n % 3 === 0 ? 'warn' : (zd as 0 | 1) };
      const report = tokenClassificationReport(c.gold, c.pred, opts);
      const g = flat(c.gold);
      const p = flat(c.pred);
      const labels = [...new Set([...g, ...p])].filter((l) => /^[BI]-/.test(l)).sort(byCodePoint);
      expect(report.rows.map((r) => r.label)).toEqual(labels);
      const rows = bruteTokenRows(g, p, labels, zd);
      rows.forEach((b, i) => {
        const msg = `case ${n} ${b.label}`;
        const got = report.rows[i];
        expect(got.support, msg).toBe(b.support);
        expect(got.precision, msg).toBeCloseTo(b.p, 12);
        expect(got.recall, msg).toBeCloseTo(b.r, 12);
        expect(got.f1, msg).toBeCloseTo(b.f, 12);
      });
      if (rows.length) {
        const mean = (k: 'p' | 'r' | 'f') => rows.reduce((a, x) => a + x[k], 0) / rows.length;
        expect(report.macro.f1, `case ${n}`).toBeCloseTo(mean('f'), 12);
        expect(report.macro.precision, `case ${n}`).toBeCloseTo(mean('p'), 12);
      }
      expect(report.microIsAccuracy).toBe(
        labels.length > 0 && [...g, ...p].every((l) => labels.includes(l)),
      );
    });
  });

  it('scores accuracy when every label is listed', () => {
    const c = CASES.find((x) => flat(x.gold).includes('O'))!;
    const report = tokenClassificationReport(c.gold, c.pred, { excludeO: false });
    const g = flat(c.gold);
    const p = flat(c.pred);
    const acc = g.filter((l, i) => l === p[i]).length / g.length;
    expect(report.microIsAccuracy).toBe(true);
    expect(report.micro.f1).toBeCloseTo(acc, 12);
    expect(formatClassificationReport(report)).toMatch(/^ {4}accuracy {25}\d\.\d{4} /m);
  });
});

describe('entity metrics (brute force)', () => {
  it('reads BIO like conlleval, I after O starting a new entity', () => {
    CASES.forEach((c, n) => {
      for (const s of [...c.gold, ...c.pred]) {
        const got = entitiesFromBio(s).map((e) => [e.start, e.end, e.label]);
        expect(got, `case ${n}: ${s.join(' ')}`).toEqual(bruteChunks(s));
      }
    });
  });

  it('matches brute-force span matching from BIO, micro, per type and macro', () => {
    CASES.forEach((c, n) => {
      const report = entityMetricsFromBio(c.gold, c.pred);
      const g = c.gold.map((s) =>
        bruteChunks(s).map(([start, end, label]) => ({ start, end, label })),
      );
      const p = c.pred.map((s) =>
        bruteChunks(s).map(([start, end, label]) => ({ start, end, label })),
      );
      const all = bruteEntityCounts(g, p);
      expect(report.micro.truePositives, `case ${n}`).toBe(all.tp);
      expect(report.micro.support, `case ${n}`).toBe(all.nGold);
      expect(report.micro.predicted, `case ${n}`).toBe(all.nPred);
      expect(report.micro.precision, `case ${n}`).toBeCloseTo(all.p, 12);
      expect(report.micro.recall, `case ${n}`).toBeCloseTo(all.r, 12);
      expect(report.micro.f1, `case ${n}`).toBeCloseTo(all.f, 12);
      const types = [...new Set([...g.flat(), ...p.flat()].map((e) => e.label))].sort(byCodePoint);
      expect(report.perType.map((t) => t.label)).toEqual(types);
      const fs = types.map((t) => bruteEntityCounts(g, p, t));
      report.perType.forEach((row, i) => {
        expect(row.truePositives, `case ${n} ${row.label}`).toBe(fs[i].tp);
        expect(row.f1, `case ${n} ${row.label}`).toBeCloseTo(fs[i].f, 12);
        expect(row.precision, `case ${n} ${row.label}`).toBeCloseTo(fs[i].p, 12);
        expect(row.recall, `case ${n} ${row.label}`).toBeCloseTo(fs[i].r, 12);
      });
      if (types.length) {
        const macroF = fs.reduce((a, x) => a + x.f, 0) / fs.length;
        expect(report.macro.f1, `case ${n}`).toBeCloseTo(macroF, 12);
      } else expect(report.macro.f1).toBeNaN();
    });
  });

  it('matches brute force on random entity lists with duplicates and overlaps', () => {
    const r = rng(11);
    for (let n = 0; n < 200; n++) {
      const mk = (): Entity => {
        const start = r.int(0, 6);
        return { start, end: start + r.int(1, 3), label: r.pick(['PER', 'LOC', 'ORG']) };
      };
      const gold = Array.from({ length: r.int(0, 5) }, () =>
        Array.from({ length: r.int(0, 4) }, mk),
      );
      const pred = gold.map((gs) => [
        ...gs.filter(() => r.next() < 0.6),
        ...Array.from({ length: r.int(0, 3) }, mk),
      ]);
      const report = entityMetrics(gold, pred);
      const all = bruteEntityCounts(gold, pred);
      expect(report.micro.truePositives, `case ${n}`).toBe(all.tp);
      expect(report.micro.f1, `case ${n}`).toBeCloseTo(all.f, 12);
      for (const row of report.perType) {
        const b = bruteEntityCounts(gold, pred, row.label);
        expect([row.truePositives, row.predicted, row.support]).toEqual([b.tp, b.nPred, b.nGold]);
      }
    }
  });

  it('reports listed types, including absent ones, and formats', () => {
    const gold = [['B-PER', 'I-PER', 'O', 'B-LOC']];
    const pred = [['B-PER', 'I-PER', 'O', 'O']];
    const report = entityMetricsFromBio(gold, pred, { types: ['LOC', 'PER', 'ORG'] });
    expect(report.perType.map((t) => [t.label, t.support, t.predicted])).toEqual([
      ['LOC', 1, 0],
      ['PER', 1, 1],
      ['ORG', 0, 0],
    ]);
    const text = formatEntityReport(report);
    expect(text).toContain('micro avg');
    expect(text).toContain('macro avg');
    expect(text.split('\n')[0]).toMatch(/precision +recall +f1-score +support$/);
  });
});

describe('confusion matrix (brute force)', () => {
  it('matches pair counting on generated cases', () => {
    CASES.forEach((c, n) => {
      const cm = confusionMatrix(c.gold, c.pred);
      const g = flat(c.gold);
      const p = flat(c.pred);
      const labels = [...new Set([...g, ...p])].sort(byCodePoint);
      expect(cm.labels).toEqual(labels);
      expect(cm.counts, `case ${n}`).toEqual(bruteConfusion(g, p, labels));
      // With a subset, positions whose labels are unlisted drop out.
      const subset = labels.filter((_, i) => i % 2 === 0).reverse();
      expect(confusionMatrix(c.gold, c.pred, { labels: subset }).counts).toEqual(
        bruteConfusion(g, p, subset),
      );
      const norm = normalizeConfusionMatrix(cm, 'true');
      norm.forEach((row, i) => {
        const total = cm.counts[i].reduce((a, b) => a + b, 0);
        row.forEach((v, j) => expect(v).toBe(total ? cm.counts[i][j] / total : 0));
      });
    });
  });

  it('formats an aligned table', () => {
    const cm = confusionMatrix(['O', 'B-인명', 'I-인명', 'O'], ['O', 'B-인명', 'O', 'O']);
    const text = formatConfusionMatrix(cm);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^gold \\ pred/);
    expect(lines).toHaveLength(4);
    expect(lines[2]).toMatch(/^I-인명 +0 +0 +1$/);
    expect(lines[3]).toMatch(/^O +0 +0 +2$/);
    // Columns line up in a terminal, where each Hangul syllable takes two cells.
    const cells = (l: string) =>
      [...l].reduce((a, ch) => a + (/[\uac00-\ud7a3]/.test(ch) ? 2 : 1), 0);
    expect(new Set(lines.map(cells)).size).toBe(1);
    expect(formatConfusionMatrix(cm, { normalize: 'pred' })).toContain('0.67');
  });
});

describe('bad input', () => {
  it('names the sentence and both lengths on a length mismatch', () => {
    const gold = [['O'], ['B-PER', 'I-PER', 'O'], ['O']];
    const pred = [['O'], ['B-PER', 'I-PER', 'O'], ['O', 'O']];
    for (const f of [tokenClassificationReport, confusionMatrix, entityMetricsFromBio]) {
      expect(() => f(gold, pred)).toThrow(/sentence 2: gold has 1 labels but pred has 2/);
    }
    expect(() => tokenClassificationReport(['O', 'O'], ['O'])).toThrow(
      /gold has 2 labels, pred has 1/,
    );
    expect(() => tokenClassificationReport([['O']], [['O'], ['O']])).toThrow(
      /gold has 1 sentences, pred has 2/,
    );
    expect(() => tokenClassificationReport(['O'], [['O']])).toThrow(/flat label array/);
  });

  it('rejects unknown label formats clearly', () => {
    for (const bad of ['X-PER', 'B-', 'B_PER', '', 'b-PER', 'B-PER LOC', 'PER']) {
      expect(() => tokenClassificationReport([['O', bad]], [['O', 'O']])).toThrow(
        /unknown label format .* in gold sentence 0, position 1: expected "O", "B-<TYPE>"/,
      );
    }
    expect(() => confusionMatrix(['O'], ['E-PER'])).toThrow(
      /unknown label format "E-PER" in pred at position 0/,
    );
    expect(() => tokenClassificationReport(['O'], ['O'], { labels: ['B-PER', 'S-PER'] })).toThrow(
      /unknown label format "S-PER" in labels at index 1/,
    );
    expect(() => tokenClassificationReport(['O'], ['O'], { labels: ['O', 'O'] })).toThrow(
      /duplicate label "O"/,
    );
    expect(() => entitiesFromBio(['O', 'U-PER'])).toThrow(/unknown label format "U-PER"/);
    expect(() => tokenClassificationReport([], [])).toThrow(/empty/);
    expect(() => entityMetrics([[{ start: 2, end: 2, label: 'PER' }]], [[]])).toThrow(
      /gold sentence 0, entity 0/,
    );
    expect(() => entityMetrics([[]], [])).toThrow(/gold has 1 sentences, pred has 0/);
  });
});

describe('number formatting and summation (self-checks)', () => {
  it('rounds exact halves to even like Python', () => {
    expect(formatFixed(0.03125, 4)).toBe('0.0312');
    expect(formatFixed(0.09375, 4)).toBe('0.0938');
    expect(formatFixed(2.5, 0)).toBe('2');
    expect(formatFixed(NaN, 4)).toBe('nan');
  });
});

// ---------------------------------------------------------------------------------------------
// scikit-learn itself, through scripts/fixtures/eval_reference.py.

interface SkCase {
  gold: string[] | string[][];
  pred: string[] | string[][];
  flat: boolean;
  options: { labels?: string[]; excludeO?: boolean; zeroDivision?: 'warn' | 0 | 1 };
  reference: {
    sklearnLabels: string[] | null;
    dict: Record<
      string,
      | {
          precision: number | null;
          recall: number | null;
          'f1-score': number | null;
          support: number;
        }
      | number
    >;
    text: string | null;
  };
  confusion: null | {
    labels: string[] | null;
    counts: number[][];
    true: number[][];
    pred: number[][];
    all: number[][];
  };
  conlleval: { gold: [number, number, string][][]; pred: [number, number, string][][] };
}

interface SkFixture {
  sklearnVersion: string;
  tokenCases: SkCase[];
  formats: { value: number; digits: number; text: string }[];
  sums: { values: number[]; sum: number }[];
}

if (!SKLEARN && process.env.KONER_REQUIRE_SKLEARN === '1') {
  it('has scikit-learn available', () => {
    expect.fail(`KONER_REQUIRE_SKLEARN=1 but ${PYTHON} cannot import sklearn`);
  });
}

describe.skipIf(!SKLEARN)(`against scikit-learn (${PYTHON})`, () => {
  let fx: SkFixture;
  // sklearn >= 1.4 computes F1 as 2tp / (2tp + fp + fn), which this port reproduces bit for bit;
  // older releases went through precision and recall and differ in the last bit.
  let exact = false;

  beforeAll(() => {
    mkdirSync(GENERATED, { recursive: true });
    const out = join(GENERATED, 'eval_reference.json');
    const r = spawnSync(PYTHON, [join(ROOT, 'scripts/fixtures/eval_reference.py'), out], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (r.status !== 0) throw new Error(`eval_reference.py failed (${r.status}): ${r.stderr}`);
    fx = JSON.parse(readFileSync(out, 'utf8')) as SkFixture;
    const [major, minor] = fx.sklearnVersion.split('.').map(Number);
    exact = major > 1 || (major === 1 && minor >= 4);
  });

  const same = (got: number, want: number | null, msg: string) => {
    if (want === null) expect(got, msg).toBeNaN();
    else if (exact) expect(got, msg).toBe(want);
    else expect(got, msg).toBeCloseTo(want, 12);
  };

  // Rebuild a report from sklearn's own numbers, to test the printer on its own.
  function fromSklearn(c: SkCase): TokenClassificationReport {
    const d = c.reference.dict;
    const scores = (k: string): Scores => {
      const v = d[k] as {
        precision: number | null;
        recall: number | null;
        'f1-score': number | null;
        support: number;
      };
      return {
        precision: v.precision ?? NaN,
        recall: v.recall ?? NaN,
        f1: v['f1-score'] ?? NaN,
        support: v.support,
      };
    };
    const labels = Object.keys(d).filter(
      (k) => !['accuracy', 'micro avg', 'macro avg', 'weighted avg'].includes(k),
    );
    const acc = 'accuracy' in d;
    const micro: Scores = acc
      ? {
          precision: d.accuracy as number,
          recall: d.accuracy as number,
          f1: d.accuracy as number,
          support: scores('macro avg').support,
        }
      : scores('micro avg');
    // The one number the printer needs that sklearn's dict lacks: accuracy over all pieces.
    const g = c.flat ? (c.gold as string[]) : (c.gold as string[][]).flat();
    const p = c.flat ? (c.pred as string[]) : (c.pred as string[][]).flat();
    return {
      rows: labels.map((label) => ({ label, ...scores(label) })),
      micro,
      macro: scores('macro avg'),
      weighted: scores('weighted avg'),
      microIsAccuracy: acc,
      accuracy: g.filter((l, i) => l === p[i]).length / g.length,
      pieces: g.length,
    };
  }

  it('generates enough varied cases', () => {
    expect(fx.tokenCases.length).toBeGreaterThan(200);
    const opts = fx.tokenCases.map((c) => c.options);
    expect(opts.some((o) => o.labels)).toBe(true);
    expect(opts.some((o) => o.zeroDivision === 1)).toBe(true);
  });

  it('classification_report numbers', () => {
    fx.tokenCases.forEach((c, n) => {
      const report = tokenClassificationReport(c.gold, c.pred, c.options);
      const d = c.reference.dict;
      const want = fromSklearn(c);
      expect(
        report.rows.map((r) => r.label),
        `case ${n}`,
      ).toEqual(want.rows.map((r) => r.label));
      expect(report.microIsAccuracy, `case ${n}`).toBe(want.microIsAccuracy);
      report.rows.forEach((row, i) => {
        const w = want.rows[i];
        const msg = `case ${n} ${row.label}`;
        same(row.precision, w.precision, msg);
        same(row.recall, w.recall, msg);
        same(row.f1, w.f1, msg);
        expect(row.support, msg).toBe(w.support);
      });
      for (const k of ['macro', 'weighted'] as const) {
        const msg = `case ${n} ${k}`;
        const w = want[k];
        for (const m of ['precision', 'recall', 'f1'] as const) {
          same(report[k][m], Number.isNaN(w[m]) ? null : w[m], `${msg} ${m}`);
        }
        expect(report[k].support, msg).toBe(w.support);
      }
      if (want.microIsAccuracy) same(report.micro.f1, d.accuracy as number, `case ${n} accuracy`);
      else {
        same(report.micro.precision, want.micro.precision, `case ${n} micro`);
        same(report.micro.recall, want.micro.recall, `case ${n} micro`);
        same(report.micro.f1, want.micro.f1, `case ${n} micro`);
      }
    });
  });

  it('classification_report text, character for character', () => {
    let compared = 0;
    fx.tokenCases.forEach((c, n) => {
      if (c.reference.text === null) {
        // sklearn raises on an empty label list; ours prints the averages.
        expect(() =>
          formatClassificationReport(tokenClassificationReport(c.gold, c.pred, c.options)),
        ).not.toThrow();
        return;
      }
      expect(formatClassificationReport(fromSklearn(c)), `case ${n}`).toBe(c.reference.text);
      if (exact) {
        const ours = formatClassificationReport(
          tokenClassificationReport(c.gold, c.pred, c.options),
        );
        expect(ours, `case ${n}`).toBe(c.reference.text);
      }
      compared++;
    });
    expect(compared).toBeGreaterThan(200);
  });

  it('confusion_matrix counts and normalisations', () => {
    let compared = 0;
    fx.tokenCases.forEach((c, n) => {
      if (!c.confusion) return;
      const cm: ConfusionMatrix = confusionMatrix(c.gold, c.pred, {
        labels: c.confusion.labels ?? undefined,
      });
      expect(cm.counts, `case ${n}`).toEqual(c.confusion.counts);
      for (const norm of ['true', 'pred', 'all'] as const) {
        expect(normalizeConfusionMatrix(cm, norm), `case ${n} ${norm}`).toEqual(c.confusion[norm]);
      }
      compared++;
    });
    expect(compared).toBeGreaterThan(200);
  });

  it('entity chunks agree with a port of conlleval', () => {
    fx.tokenCases.forEach((c, n) => {
      const sents = (x: string[] | string[][]) => (c.flat ? [x as string[]] : (x as string[][]));
      const read = (x: string[] | string[][]) =>
        sents(x).map((s) => entitiesFromBio(s).map((e) => [e.start, e.end, e.label]));
      expect(read(c.gold), `case ${n}`).toEqual(c.conlleval.gold);
      expect(read(c.pred), `case ${n}`).toEqual(c.conlleval.pred);
    });
  });

  it("Python's fixed-point formatting and NumPy's summation", () => {
    for (const f of fx.formats) {
      expect(formatFixed(f.value, f.digits), `${f.value} .${f.digits}f`).toBe(f.text);
    }
    for (const s of fx.sums) expect(numpySum(s.values), `n=${s.values.length}`).toBe(s.sum);
  });
});

// ---------------------------------------------------------------------------------------------
// SVG plots.

// A small XML well-formedness check: balanced, properly nested tags, one root, quoted attributes
// and no stray `<`, `>` or `&` in text.
function checkWellFormed(xml: string): void {
  const body = xml.replace(/^<\?xml [^?]*\?>\s*/, '');
  const token =
    /<!--[\s\S]*?-->|<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|[<>]/g;
  const entity = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/;
  const stack: string[] = [];
  let roots = 0;
  let last = 0;
  for (const m of body.matchAll(token)) {
    const between = body.slice(last, m.index);
    if (entity.test(between)) throw new Error(`bare & in text near ${m.index}`);
    if (stack.length === 0 && between.trim()) throw new Error('text outside the root element');
    last = m.index + m[0].length;
    if (m[0] === '<' || m[0] === '>') throw new Error(`stray ${m[0]} at ${m.index}`);
    if (m[0].startsWith('<!--')) continue;
    const [, close, name, attrs, selfClose] = m;
    if (entity.test(attrs)) throw new Error(`bare & in attributes of <${name}>`);
    if (close) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}>`);
    } else {
      if (stack.length === 0) roots++;
      if (!selfClose) stack.push(name);
    }
  }
  if (body.slice(last).trim()) throw new Error('text after the root element');
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
}

// A real XML parser where one is at hand: Python's standard library.
function parsesAsXml(xml: string): boolean | undefined {
  if (!SYSTEM_PYTHON) return undefined;
  const r = spawnSync(
    SYSTEM_PYTHON,
    ['-c', 'import sys, xml.etree.ElementTree as E; E.fromstring(sys.stdin.buffer.read())'],
    { input: xml, timeout: 60_000 },
  );
  return r.status === 0;
}

describe('svg plots', () => {
  const tricky = ['B-<PER>', 'I-A&B', 'B-"q"', "I-it's", 'B-인명', 'O'];

  it('checker rejects broken documents', () => {
    expect(() => checkWellFormed('<svg><g></svg>')).toThrow();
    expect(() => checkWellFormed('<svg><text>a < b</text></svg>')).toThrow();
    expect(() => checkWellFormed('<svg><text>a & b</text></svg>')).toThrow();
    expect(() => checkWellFormed('<svg/><svg/>')).toThrow();
    expect(() => checkWellFormed('<svg><text>a &amp; b</text></svg>')).not.toThrow();
  });

  it('confusion heatmap is well-formed, labelled and escaped', () => {
    const r = rng(3);
    const gold = Array.from({ length: 400 }, () => r.pick(tricky));
    const pred = gold.map((g) => (r.next() < 0.3 ? r.pick(tricky) : g));
    const cm = confusionMatrix(gold, pred);
    for (const normalize of ['true', 'pred', 'all', 'none'] as const) {
      const svg = confusionMatrixSvg(cm, { title: 'Dev <confusion> & more', normalize });
      checkWellFormed(svg);
      expect(parsesAsXml(svg)).not.toBe(false);
      expect(svg).toContain('Dev &lt;confusion&gt; &amp; more');
      for (const l of ['B-&lt;PER&gt;', 'I-A&amp;B', 'B-&quot;q&quot;', 'I-it&apos;s', 'B-인명']) {
        expect(svg).toContain(`>${l}</text>`);
      }
      expect(svg).toContain('>predicted</text>');
      expect(svg).toContain('>gold</text>');
    }
    checkWellFormed(confusionMatrixSvg(confusionMatrix([], [])));
  });

  it('training curves are well-formed with legend, axes and odd data', () => {
    const steps = Array.from({ length: 120 }, (_, i) => i * 50);
    const svg = trainingCurvesSvg(
      [
        {
          title: 'Loss',
          xLabel: 'step',
          yLabel: 'loss',
          series: [
            { name: 'train <loss>', points: steps.map((x) => ({ x, y: 3 * Math.exp(-x / 2000) })) },
            {
              name: 'dev "loss" & co',
              dashed: true,
              points: steps.map((x, i) => ({ x, y: i === 40 ? NaN : 3.2 * Math.exp(-x / 2500) })),
            },
          ],
        },
        {
          title: 'F1',
          xLabel: 'step',
          yLabel: 'F1',
          yMin: 0,
          yMax: 1,
          series: [
            {
              name: 'token macro F1',
              points: [
                { x: 500, y: 0.5 },
                { x: 1000, y: 0.8 },
              ],
            },
            { name: 'entity F1', points: [{ x: 1000, y: 0.75 }] },
            { name: 'empty', points: [] },
          ],
        },
        { title: 'nothing yet', series: [] },
      ],
      { title: 'run \u0001 <1>' },
    );
    checkWellFormed(svg);
    expect(parsesAsXml(svg)).not.toBe(false);
    for (const s of [
      'train &lt;loss&gt;',
      'dev &quot;loss&quot; &amp; co',
      'token macro F1',
      '>step</text>',
      '>loss</text>',
      '>F1</text>',
      'run \ufffd &lt;1&gt;',
    ]) {
      expect(svg).toContain(s);
    }
    expect(svg).not.toMatch(/NaN|Infinity|undefined/);
    const single = lineChartSvg({
      series: [
        {
          name: 'flat',
          points: [
            { x: 1, y: 2 },
            { x: 1, y: 2 },
          ],
        },
      ],
    });
    checkWellFormed(single);
    expect(single).not.toMatch(/NaN|Infinity/);
  });

  it('writes files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'koner-eval-'));
    try {
      const svg = lineChartSvg({ series: [{ name: 'a', points: [{ x: 0, y: 1 }] }] });
      const path = join(dir, 'nested', 'curve.svg');
      await writeSvg(path, svg);
      expect(readFileSync(path, 'utf8')).toBe(svg);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
