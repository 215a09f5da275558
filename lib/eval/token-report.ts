/**
 * Token-level (piece-level) classification report, computed and printed exactly as
 * scikit-learn's `classification_report`, restricted by default to the B-/I- labels the way the
 * reference KoBERT+CRF project reports its macro F1.
 *
 * @packageDocumentation
 */

import {
  alignSequences,
  checkLabelList,
  compareCodePoints,
  formatFixed,
  numpySum,
  padLeft,
  parseLabel,
  codePointLength,
  type LabelSequences,
  type Scores,
} from './common.js';

/** scikit-learn's `zero_division`: `'warn'` scores an undefined ratio as 0 (without warning here). */
export type ZeroDivision = 'warn' | 0 | 1;

/** Options for {@link tokenClassificationReport}. */
export interface TokenReportOptions {
  /**
   * Labels to report, in this order (sklearn's `labels=`). Labels absent from the data get zero
   * support; pieces whose labels are not listed count only as false positives/negatives of the
   * listed ones, as in sklearn. When given, `excludeO` is ignored.
   */
  readonly labels?: readonly string[];
  /**
   * When `labels` is not given: `true` (default) reports the B-/I- labels found in gold or pred,
   * sorted by code point, leaving out `O` and special tokens; `false` reports every label found,
   * which is sklearn's `labels=None`.
   */
  readonly excludeO?: boolean;
  /** Value of a ratio whose denominator is zero; default `'warn'` (scored 0, as sklearn does). */
  readonly zeroDivision?: ZeroDivision;
}

/** One label's row of the report. */
export interface LabelScores extends Scores {
  readonly label: string;
}

/** The report: per-label rows and the three averages sklearn prints. */
export interface TokenClassificationReport {
  /** Per-label rows, in report order. */
  readonly rows: readonly LabelScores[];
  /**
   * Micro average over the listed labels. When {@link microIsAccuracy} holds, its precision,
   * recall and F1 all equal token accuracy and sklearn prints it as the `accuracy` row.
   */
  readonly micro: Scores;
  /** Unweighted mean over the listed labels (NaN when no label is listed, as in sklearn). */
  readonly macro: Scores;
  /** Support-weighted mean; the unweighted mean when no listed label occurs in gold (sklearn). */
  readonly weighted: Scores;
  /** True when the listed labels cover every label seen, so micro average equals accuracy. */
  readonly microIsAccuracy: boolean;
  /** Fraction of all pieces, listed labels or not, whose predicted label equals the gold one. */
  readonly accuracy: number;
  /** Number of pieces scored. */
  readonly pieces: number;
}

/**
 * Computes per-label precision, recall, F1 and support over piece labels, with micro, macro and
 * weighted averages, reproducing scikit-learn's `classification_report` (≥ 1.4) bit for bit:
 * F1 is `2·tp / (gold + predicted)`, averages sum the way NumPy does, and zero denominators
 * follow `zero_division`.
 *
 * By default only B-/I- labels are scored (the reference project's macro F1 excludes `O` and
 * special tokens); `O` still matters because a gold `B-PER` predicted as `O` is a false negative.
 * `macro.f1` of the default report is the reference project's headline number.
 *
 * @param gold - gold labels, flat or one array per sentence.
 * @param pred - predicted labels, same shape as `gold`.
 * @throws Error when the shapes differ (naming the sentence and both lengths), when a label is
 *   not `O`, `B-X`, `I-X` or a special token, when `labels` repeats a label, or when there are no
 *   pieces at all (sklearn raises on empty input too).
 */
export function tokenClassificationReport(
  gold: LabelSequences,
  pred: LabelSequences,
  options: TokenReportOptions = {},
): TokenClassificationReport {
  const { seen, total, gold: g, pred: p } = alignSequences(gold, pred);
  if (total === 0) throw new Error('cannot score an empty evaluation set: no labels given');
  const zd = options.zeroDivision ?? 'warn';
  if (zd !== 'warn' && zd !== 0 && zd !== 1) {
    throw new Error(`zeroDivision must be 'warn', 0 or 1, got ${String(zd)}`);
  }
  const zeroValue = zd === 1 ? 1 : 0;

  let labels: string[];
  if (options.labels !== undefined) {
    checkLabelList(options.labels, 'labels');
    labels = [...options.labels];
  } else {
    const excludeO = options.excludeO ?? true;
    labels = [...seen].filter((l) => {
      const kind = parseLabel(l)!.kind;
      return !excludeO || kind === 'B' || kind === 'I';
    });
    labels.sort(compareCodePoints);
  }
  const index = new Map(labels.map((l, i) => [l, i]));
  const n = labels.length;
  const tp = new Float64Array(n);
  const predicted = new Float64Array(n);
  const support = new Float64Array(n);
  let correct = 0;
  for (let s = 0; s < g.length; s++) {
    const gs = g[s];
    const ps = p[s];
    for (let j = 0; j < gs.length; j++) {
      if (gs[j] === ps[j]) correct++;
      const gi = index.get(gs[j]);
      const pi = index.get(ps[j]);
      if (gi !== undefined) support[gi]++;
      if (pi !== undefined) predicted[pi]++;
      if (gi !== undefined && gi === pi) tp[gi]++;
    }
  }

  const divide = (num: number, den: number): number => (den === 0 ? zeroValue : num / den);
  const precision = new Float64Array(n);
  const recall = new Float64Array(n);
  const f1 = new Float64Array(n);
  const rows: LabelScores[] = labels.map((label, i) => {
    precision[i] = divide(tp[i], predicted[i]);
    recall[i] = divide(tp[i], support[i]);
    f1[i] = divide(2 * tp[i], support[i] + predicted[i]);
    return {
      label,
      precision: precision[i],
      recall: recall[i],
      f1: f1[i],
      support: support[i],
    };
  });

  const totalSupport = numpySum(support);
  const tpSum = numpySum(tp);
  const predSum = numpySum(predicted);
  const micro: Scores = {
    precision: divide(tpSum, predSum),
    recall: divide(tpSum, totalSupport),
    f1: divide(2 * tpSum, totalSupport + predSum),
    support: totalSupport,
  };
  const mean = (v: Float64Array): number => (n === 0 ? NaN : numpySum(v) / n);
  const macro: Scores = {
    precision: mean(precision),
    recall: mean(recall),
    f1: mean(f1),
    support: totalSupport,
  };
  // np.average(v, weights=support); sklearn falls back to the plain mean when weights sum to 0.
  const weightedMean = (v: Float64Array): number => {
    if (n === 0 || totalSupport === 0) return mean(v);
    const products = v.map((x, i) => x * support[i]);
    return numpySum(products) / totalSupport;
  };
  const weighted: Scores = {
    precision: weightedMean(precision),
    recall: weightedMean(recall),
    f1: weightedMean(f1),
    support: totalSupport,
  };
  let microIsAccuracy = true;
  for (const l of seen) if (!index.has(l)) microIsAccuracy = false;
  return {
    rows,
    micro,
    macro,
    weighted,
    microIsAccuracy,
    accuracy: correct / total,
    pieces: total,
  };
}

/** Options for {@link formatClassificationReport}. */
export interface FormatReportOptions {
  /** Decimal places, as sklearn's `digits`; default 4. */
  readonly digits?: number;
}

/**
 * Prints a report exactly as scikit-learn's `classification_report(..., digits=4)` prints it,
 * including the `accuracy` row (F1 column only) when the micro average is accuracy and the
 * `micro avg` row otherwise. Unlike sklearn, an empty label list prints its header and averages
 * instead of raising.
 *
 * sklearn quirk kept on purpose: when no piece at all is predicted correctly (accuracy 0), its
 * counts become float arrays and supports print as `3.0`; so they do here.
 */
export function formatClassificationReport(
  report: TokenClassificationReport,
  options: FormatReportOptions = {},
): string {
  const digits = options.digits ?? 4;
  const headers = ['precision', 'recall', 'f1-score', 'support'];
  const nameWidth = Math.max(0, ...report.rows.map((r) => codePointLength(r.label)));
  const width = Math.max(nameWidth, 'weighted avg'.length, digits);
  const num = (x: number): string => ' ' + padLeft(formatFixed(x, digits), 9);
  // Python's str() of an integral float; supports stay far below 1e16, where repr would switch
  // to exponent notation.
  const count = (x: number): string =>
    padLeft(report.accuracy === 0 && Number.isInteger(x) ? `${x}.0` : String(x), 9);
  const row = (name: string, s: Scores): string =>
    padLeft(name, width) +
    ' ' +
    num(s.precision) +
    num(s.recall) +
    num(s.f1) +
    ' ' +
    count(s.support) +
    '\n';

  let out = padLeft('', width) + ' ' + headers.map((h) => ' ' + padLeft(h, 9)).join('') + '\n\n';
  for (const r of report.rows) out += row(r.label, r);
  out += '\n';
  if (report.microIsAccuracy) {
    const blank = ' ' + padLeft('', 9);
    out +=
      padLeft('accuracy', width) +
      ' ' +
      blank +
      blank +
      num(report.micro.f1) +
      ' ' +
      count(report.micro.support) +
      '\n';
  } else {
    out += row('micro avg', report.micro);
  }
  out += row('macro avg', report.macro);
  out += row('weighted avg', report.weighted);
  return out;
}
