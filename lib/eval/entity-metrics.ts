/**
 * Entity-level precision, recall and F1: an entity counts as correct only when its start, end and
 * type all match a gold entity of the same sentence.
 *
 * @packageDocumentation
 */

import { chunkBio, type ParsedTag } from '../labels/scheme.js';
import {
  alignSequences,
  compareCodePoints,
  formatFixed,
  numpySum,
  padLeft,
  parseLabel,
  codePointLength,
  unknownLabelMessage,
  type LabelSequences,
  type Scores,
} from './common.js';

/** An entity span `[start, end)` with its type; units are the caller's (pieces or characters). */
export interface Entity {
  readonly start: number;
  readonly end: number;
  readonly label: string;
}

/** Counts and scores of one entity type, or of all types together. */
export interface EntityScores extends Scores {
  /** Predicted entities that exactly match a gold entity. */
  readonly truePositives: number;
  /** Predicted entities. */
  readonly predicted: number;
}

/** One type's row. */
export interface EntityTypeScores extends EntityScores {
  readonly label: string;
}

/** Entity-level results. */
export interface EntityReport {
  /** Per type, sorted by code point (or in the order of `types` when given). */
  readonly perType: readonly EntityTypeScores[];
  /** Micro average: counts pooled over all types (what conlleval prints as overall). */
  readonly micro: EntityScores;
  /**
   * Unweighted mean of the per-type precision, recall and F1 (F1 is the mean of F1s, as in
   * sklearn and seqeval, not the harmonic mean of macro P and R). NaN when there are no types.
   */
  readonly macro: Scores;
}

/** Options for {@link entityMetrics} and {@link entityMetricsFromBio}. */
export interface EntityMetricsOptions {
  /**
   * Types to report per type and to average in macro, in this order. Default: every type seen in
   * gold or pred. Entities of unlisted types still count in the micro average.
   */
  readonly types?: readonly string[];
}

/**
 * Reads entities from one BIO label sequence, following conlleval's chunk rules: `B-X` always
 * starts an entity; `I-X` continues the open entity only when that entity has type X, and
 * otherwise (after `O`, after a special token, at the start, or after another type) starts a new
 * entity of type X. `O` and special tokens (`[CLS]`, `<pad>`) close the open entity.
 *
 * @returns entities with `[start, end)` in label positions.
 * @throws Error when a label is not `O`, `B-X`, `I-X` or a special token.
 */
export function entitiesFromBio(labels: readonly string[]): Entity[] {
  // Special tokens close an open entity exactly as O does, so they chunk as O.
  const tags = labels.map((label, i): ParsedTag => {
    const parsed = parseLabel(label);
    if (parsed === undefined) throw new Error(unknownLabelMessage(label, `at position ${i}`));
    return parsed.kind === 'B' || parsed.kind === 'I'
      ? { prefix: parsed.kind, type: parsed.type }
      : { prefix: 'O' };
  });
  return chunkBio(tags).map((c) => ({ start: c.first, end: c.last + 1, label: c.type }));
}

function checkEntities(sentences: unknown, side: string): readonly (readonly Entity[])[] {
  if (!Array.isArray(sentences)) throw new Error(`${side} entities must be an array of sentences`);
  sentences.forEach((sentence: unknown, s) => {
    if (!Array.isArray(sentence)) {
      throw new Error(`${side} sentence ${s}: expected an array of entities`);
    }
    sentence.forEach((e: Partial<Entity> | null, k) => {
      const ok =
        e !== null &&
        typeof e === 'object' &&
        Number.isInteger(e.start) &&
        Number.isInteger(e.end) &&
        e.start! >= 0 &&
        e.end! > e.start! &&
        typeof e.label === 'string' &&
        e.label.length > 0;
      if (!ok) {
        throw new Error(
          `${side} sentence ${s}, entity ${k}: expected { start, end, label } with integers ` +
            `0 <= start < end and a non-empty label, got ${JSON.stringify(e)}`,
        );
      }
    });
  });
  return sentences as readonly (readonly Entity[])[];
}

function scores(tp: number, predicted: number, support: number): EntityScores {
  // conlleval's convention: an undefined ratio is 0.
  const precision = predicted === 0 ? 0 : tp / predicted;
  const recall = support === 0 ? 0 : tp / support;
  const f1 = support + predicted === 0 ? 0 : (2 * tp) / (support + predicted);
  return { precision, recall, f1, support, truePositives: tp, predicted };
}

/**
 * Scores predicted entities against gold entities, sentence by sentence. A match needs equal
 * `start`, `end` and `label`; each gold entity can be matched once, so a duplicated prediction
 * counts once as correct and once as a false positive. Undefined ratios are 0 (conlleval).
 *
 * @param gold - gold entities, one array per sentence.
 * @param pred - predicted entities, one array per sentence (same sentence count).
 * @throws Error when the sentence counts differ or an entity is malformed.
 */
export function entityMetrics(
  gold: readonly (readonly Entity[])[],
  pred: readonly (readonly Entity[])[],
  options: EntityMetricsOptions = {},
): EntityReport {
  checkEntities(gold, 'gold');
  checkEntities(pred, 'pred');
  if (gold.length !== pred.length) {
    throw new Error(
      `gold and pred differ in sentence count: gold has ${gold.length} sentences, ` +
        `pred has ${pred.length}`,
    );
  }
  const counts = new Map<string, { tp: number; predicted: number; support: number }>();
  const bucket = (type: string) => {
    let c = counts.get(type);
    if (!c) counts.set(type, (c = { tp: 0, predicted: 0, support: 0 }));
    return c;
  };
  for (let s = 0; s < gold.length; s++) {
    const unmatched = new Map<string, number>();
    for (const e of gold[s]) {
      bucket(e.label).support++;
      const key = `${e.start}:${e.end}:${e.label}`;
      unmatched.set(key, (unmatched.get(key) ?? 0) + 1);
    }
    for (const e of pred[s]) {
      const c = bucket(e.label);
      c.predicted++;
      const key = `${e.start}:${e.end}:${e.label}`;
      const left = unmatched.get(key) ?? 0;
      if (left > 0) {
        c.tp++;
        unmatched.set(key, left - 1);
      }
    }
  }
  let tp = 0;
  let predicted = 0;
  let support = 0;
  for (const c of counts.values()) {
    tp += c.tp;
    predicted += c.predicted;
    support += c.support;
  }
  const types = options.types ? [...options.types] : [...counts.keys()].sort(compareCodePoints);
  if (new Set(types).size !== types.length) throw new Error('duplicate type in options.types');
  const perType = types.map((label) => {
    const c = counts.get(label) ?? { tp: 0, predicted: 0, support: 0 };
    return { label, ...scores(c.tp, c.predicted, c.support) };
  });
  const mean = (pick: (r: EntityTypeScores) => number): number =>
    perType.length === 0 ? NaN : numpySum(perType.map(pick)) / perType.length;
  const micro = scores(tp, predicted, support);
  return {
    perType,
    micro,
    macro: {
      precision: mean((r) => r.precision),
      recall: mean((r) => r.recall),
      f1: mean((r) => r.f1),
      support: perType.reduce((a, r) => a + r.support, 0),
    },
  };
}

/**
 * Entity-level scores from piece-level BIO sequences: entities are read with
 * {@link entitiesFromBio} (conlleval's rules, I-after-O starts a new entity) and compared by
 * exact span and type.
 *
 * @throws Error when the shapes differ (naming the sentence and both lengths) or a label is
 *   unreadable.
 */
export function entityMetricsFromBio(
  gold: LabelSequences,
  pred: LabelSequences,
  options: EntityMetricsOptions = {},
): EntityReport {
  const aligned = alignSequences(gold, pred);
  return entityMetrics(
    aligned.gold.map(entitiesFromBio),
    aligned.pred.map(entitiesFromBio),
    options,
  );
}

/**
 * Prints an entity report in sklearn's layout (precision, recall, f1-score, support), with
 * `micro avg` and `macro avg` rows.
 */
export function formatEntityReport(
  report: EntityReport,
  options: { digits?: number } = {},
): string {
  const digits = options.digits ?? 4;
  const width = Math.max(
    'macro avg'.length,
    digits,
    ...report.perType.map((r) => codePointLength(r.label)),
  );
  const num = (x: number): string => ' ' + padLeft(formatFixed(x, digits), 9);
  const row = (name: string, s: Scores): string =>
    `${padLeft(name, width)} ${num(s.precision)}${num(s.recall)}${num(s.f1)} ` +
    `${padLeft(String(s.support), 9)}\n`;
  let out =
    padLeft('', width) +
    ' ' +
    ['precision', 'recall', 'f1-score', 'support'].map((h) => ' ' + padLeft(h, 9)).join('') +
    '\n\n';
  for (const r of report.perType) out += row(r.label, r);
  out += '\n' + row('micro avg', report.micro) + row('macro avg', report.macro);
  return out;
}
