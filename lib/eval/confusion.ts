/**
 * Confusion matrix over piece labels (gold rows × predicted columns), as scikit-learn's
 * `confusion_matrix`, and a plain-text table of it.
 *
 * @packageDocumentation
 */

import {
  alignSequences,
  checkLabelList,
  compareCodePoints,
  formatFixed,
  type LabelSequences,
} from './common.js';

/** Counts of gold label `labels[i]` predicted as `labels[j]` in `counts[i][j]`. */
export interface ConfusionMatrix {
  readonly labels: readonly string[];
  readonly counts: readonly (readonly number[])[];
}

/** Options for {@link confusionMatrix}. */
export interface ConfusionOptions {
  /**
   * Rows and columns, in this order. Default: every label seen in gold or pred, sorted by code
   * point (sklearn's order). Positions whose gold or predicted label is not listed are left out.
   */
  readonly labels?: readonly string[];
}

/**
 * Counts gold/predicted label pairs over all pieces, like sklearn's `confusion_matrix` (which
 * raises when no listed label occurs in gold; this returns the zero matrix instead).
 *
 * @throws Error when the shapes differ (naming the sentence and both lengths), when a label is
 *   unreadable, or when `labels` repeats a label.
 */
export function confusionMatrix(
  gold: LabelSequences,
  pred: LabelSequences,
  options: ConfusionOptions = {},
): ConfusionMatrix {
  const aligned = alignSequences(gold, pred);
  let labels: string[];
  if (options.labels !== undefined) {
    checkLabelList(options.labels, 'labels');
    labels = [...options.labels];
  } else {
    labels = [...aligned.seen].sort(compareCodePoints);
  }
  const index = new Map(labels.map((l, i) => [l, i]));
  const counts = labels.map(() => new Array<number>(labels.length).fill(0));
  aligned.gold.forEach((gs, s) => {
    const ps = aligned.pred[s];
    for (let j = 0; j < gs.length; j++) {
      const gi = index.get(gs[j]);
      const pi = index.get(ps[j]);
      if (gi !== undefined && pi !== undefined) counts[gi][pi]++;
    }
  });
  return { labels, counts };
}

/**
 * How to normalise: `'true'` divides each row by its gold total (the diagonal is recall),
 * `'pred'` each column by its predicted total (the diagonal is precision), `'all'` by the grand
 * total. Empty rows or columns give 0, as sklearn's `nan_to_num` makes them.
 */
export type ConfusionNormalization = 'true' | 'pred' | 'all';

/** Divides counts as sklearn's `confusion_matrix(normalize=...)` does. */
export function normalizeConfusionMatrix(
  cm: ConfusionMatrix,
  normalize: ConfusionNormalization,
): number[][] {
  const n = cm.labels.length;
  const rowSums = cm.counts.map((r) => r.reduce((a, b) => a + b, 0));
  const colSums = cm.labels.map((_, j) => cm.counts.reduce((a, r) => a + r[j], 0));
  const all = rowSums.reduce((a, b) => a + b, 0);
  const out: number[][] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      cm.counts[i].map((c, j) => {
        const den = normalize === 'true' ? rowSums[i] : normalize === 'pred' ? colSums[j] : all;
        return den === 0 ? 0 : c / den;
      }),
    );
  }
  return out;
}

// Hangul and CJK take two terminal columns; padding by code points would skew the table.
function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    const wide =
      (c >= 0x1100 && c <= 0x115f) ||
      (c >= 0x2e80 && c <= 0xa4cf) ||
      (c >= 0xac00 && c <= 0xd7a3) ||
      (c >= 0xf900 && c <= 0xfaff) ||
      (c >= 0xfe30 && c <= 0xfe4f) ||
      (c >= 0xff00 && c <= 0xff60) ||
      (c >= 0xffe0 && c <= 0xffe6) ||
      (c >= 0x20000 && c <= 0x3fffd);
    w += wide ? 2 : 1;
  }
  return w;
}

function pad(s: string, width: number, left: boolean): string {
  const fill = ' '.repeat(Math.max(0, width - displayWidth(s)));
  return left ? fill + s : s + fill;
}

/** Options for {@link formatConfusionMatrix}. */
export interface FormatConfusionOptions {
  /** Print normalised values instead of counts. */
  readonly normalize?: ConfusionNormalization;
  /** Decimals for normalised values; default 2. */
  readonly digits?: number;
}

/**
 * Prints the matrix as an aligned text table: one row per gold label, one column per predicted
 * label, headed `gold \ pred`.
 */
export function formatConfusionMatrix(
  cm: ConfusionMatrix,
  options: FormatConfusionOptions = {},
): string {
  const digits = options.digits ?? 2;
  const values = options.normalize ? normalizeConfusionMatrix(cm, options.normalize) : cm.counts;
  const cells = values.map((r) =>
    r.map((v) => (options.normalize ? formatFixed(v, digits) : String(v))),
  );
  const corner = 'gold \\ pred';
  const firstWidth = Math.max(displayWidth(corner), ...cm.labels.map(displayWidth));
  const colWidths = cm.labels.map((l, j) =>
    Math.max(displayWidth(l), ...cells.map((r) => displayWidth(r[j]))),
  );
  const lines = [
    [pad(corner, firstWidth, false), ...cm.labels.map((l, j) => pad(l, colWidths[j], true))],
    ...cells.map((r, i) => [
      pad(cm.labels[i], firstWidth, false),
      ...r.map((c, j) => pad(c, colWidths[j], true)),
    ]),
  ];
  return lines.map((l) => l.join('  ').trimEnd()).join('\n') + '\n';
}
