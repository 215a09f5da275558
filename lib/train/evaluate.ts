/**
 * Validation during training: the model being trained is run over whole validation sentences
 * through `NerModel`'s own inference pipeline (tokenize, window, encode, stitch, constrained CRF
 * decode, span refinement), so the numbers are those a user of the saved model would get, and
 * scored three ways:
 *
 * - token macro F1: scikit-learn's classification report over piece labels, B-/I- labels only,
 *   as the reference KoBERT-CRF project reports it (gold piece labels from aligning the corpus
 *   spans to the same pieces);
 * - entity precision/recall/F1, micro and per type: exact character span and type of the decoded
 *   (refined) entities against the corpus entities;
 * - the confusion matrix of piece labels.
 *
 * @packageDocumentation
 */
import type { Sentence } from '../corpus/types.js';
import { confusionMatrix, formatConfusionMatrix, type ConfusionMatrix } from '../eval/confusion.js';
import {
  entityMetrics,
  formatEntityReport,
  type Entity,
  type EntityReport,
} from '../eval/entity-metrics.js';
import {
  formatClassificationReport,
  tokenClassificationReport,
  type TokenClassificationReport,
} from '../eval/token-report.js';
import { alignEntities, type PieceOffset } from '../labels/align.js';
import type { LabelScheme } from '../labels/scheme.js';
import type { NerModel } from '../model/ner-model.js';
import type { EntityPrf } from './metrics-log.js';

/** What the model predicted for one sentence. */
export interface SentencePrediction {
  /** The tokenizer's piece offsets into the sentence text. */
  offsets: readonly PieceOffset[];
  /** Predicted BIO tag per piece. */
  tags: readonly string[];
  /** Predicted entities with UTF-16 offsets into the sentence text. */
  entities: readonly { start: number; end: number; entity: string }[];
}

/** The scores of one evaluation. */
export interface Evaluation {
  /** Token macro F1 over B-/I- piece labels (the reference project's headline number). */
  tokenMacroF1: number;
  /** Entity micro precision/recall/F1 over all types. */
  entity: EntityPrf;
  /** Entity scores for every type of the scheme (zero support included). */
  perType: Record<string, EntityPrf>;
  tokenReport: TokenClassificationReport;
  entityReport: EntityReport;
  /** Piece labels, gold rows × predicted columns, in the scheme's label order. */
  confusion: ConfusionMatrix;
  sentences: number;
  pieces: number;
  /** Seconds the prediction took (0 when scored from given predictions). */
  seconds: number;
}

function prf(s: { precision: number; recall: number; f1: number; support: number }): EntityPrf {
  return { precision: s.precision, recall: s.recall, f1: s.f1, support: s.support };
}

/**
 * Scores predictions against the gold sentences (pure: no model involved).
 *
 * @throws Error when the counts differ, or a prediction's tags do not match its pieces.
 */
export function scorePredictions(
  gold: readonly Sentence[],
  predictions: readonly SentencePrediction[],
  scheme: LabelScheme,
): Evaluation {
  if (gold.length !== predictions.length) {
    throw new Error(`${gold.length} gold sentences but ${predictions.length} predictions`);
  }
  const goldTags: string[][] = [];
  const predTags: string[][] = [];
  const goldEntities: Entity[][] = [];
  const predEntities: Entity[][] = [];
  let pieces = 0;
  gold.forEach((sentence, i) => {
    const p = predictions[i];
    if (p.tags.length !== p.offsets.length) {
      throw new Error(
        `sentence ${i}: ${p.tags.length} predicted tags for ${p.offsets.length} pieces`,
      );
    }
    goldTags.push(alignEntities(sentence.text, p.offsets, sentence.entities, { scheme }).labels);
    predTags.push([...p.tags]);
    pieces += p.tags.length;
    goldEntities.push(
      sentence.entities.map((e) => ({ start: e.start, end: e.end, label: e.label })),
    );
    // An empty span cannot match anything and entityMetrics rejects it.
    predEntities.push(
      p.entities
        .filter((e) => e.end > e.start)
        .map((e) => ({ start: e.start, end: e.end, label: e.entity })),
    );
  });
  // sklearn raises on an evaluation without any piece; a validation set of empty sentences is a
  // corpus problem worth a clear message.
  if (pieces === 0) throw new Error('the validation sentences hold no pieces to score');
  const tokenReport = tokenClassificationReport(goldTags, predTags);
  const entityReport = entityMetrics(goldEntities, predEntities, { types: scheme.types });
  const confusion = confusionMatrix(goldTags, predTags, { labels: scheme.labels });
  const perType: Record<string, EntityPrf> = {};
  for (const row of entityReport.perType) perType[row.label] = prf(row);
  return {
    // No B-/I- label in gold or pred leaves the macro mean undefined (NaN); nothing was found and
    // nothing was there to find, which scores 0 rather than poisoning the log with null.
    tokenMacroF1: Number.isNaN(tokenReport.macro.f1) ? 0 : tokenReport.macro.f1,
    entity: prf(entityReport.micro),
    perType,
    tokenReport,
    entityReport,
    confusion,
    sentences: gold.length,
    pieces,
    seconds: 0,
  };
}

/** Options of {@link evaluateModel}. */
export interface EvaluateOptions {
  /** Sequences per native call (default 32). */
  batchSize?: number;
}

/**
 * Runs `model` over the sentences with `predict`'s defaults (constrained decoding, refined spans)
 * and scores the result.
 */
export async function evaluateModel(
  model: NerModel,
  sentences: readonly Sentence[],
  scheme: LabelScheme,
  options: EvaluateOptions = {},
): Promise<Evaluation> {
  const started = performance.now();
  const predictions =
    sentences.length === 0
      ? []
      : await model.predictTagged(
          sentences.map((s) => s.text),
          { batchSize: options.batchSize ?? 32 },
        );
  const evaluation = scorePredictions(sentences, predictions, scheme);
  return { ...evaluation, seconds: (performance.now() - started) / 1000 };
}

/** A one-line summary: token macro F1 and entity P/R/F1. */
export function summarizeEvaluation(e: Evaluation): string {
  const f = (x: number): string => (100 * x).toFixed(2);
  return (
    `token macro F1 ${f(e.tokenMacroF1)} · entity P ${f(e.entity.precision)} ` +
    `R ${f(e.entity.recall)} F1 ${f(e.entity.f1)} (${e.sentences} sentences, ` +
    `${e.seconds.toFixed(1)}s)`
  );
}

/** The full text report: token classification report, entity report, confusion matrix. */
export function formatEvaluation(e: Evaluation): string {
  return [
    `token-level (pieces, B-/I- labels; macro F1 ${(100 * e.tokenMacroF1).toFixed(2)}):`,
    formatClassificationReport(e.tokenReport),
    'entity-level (exact character span and type):',
    formatEntityReport(e.entityReport),
    'confusion matrix of piece labels (gold rows, predicted columns):',
    formatConfusionMatrix(e.confusion),
  ].join('\n');
}

/** The JSON saved beside a checkpoint (`eval.json`): summary, per-type scores, confusion. */
export function evaluationToJson(e: Evaluation, step: number): Record<string, unknown> {
  return {
    step,
    tokenMacroF1: e.tokenMacroF1,
    entity: e.entity,
    perType: e.perType,
    tokenReport: {
      rows: e.tokenReport.rows,
      macro: e.tokenReport.macro,
      micro: e.tokenReport.micro,
    },
    confusion: e.confusion,
    sentences: e.sentences,
    pieces: e.pieces,
    seconds: e.seconds,
  };
}
