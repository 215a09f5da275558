/**
 * Evaluation: token-level classification report (as scikit-learn prints it), entity-level
 * precision/recall/F1, confusion matrix, and SVG plots for training runs.
 *
 * @packageDocumentation
 */

export { parseLabel, type LabelSequences, type ParsedLabel, type Scores } from './common.js';
export {
  tokenClassificationReport,
  formatClassificationReport,
  type TokenReportOptions,
  type TokenClassificationReport,
  type LabelScores,
  type FormatReportOptions,
  type ZeroDivision,
} from './token-report.js';
export {
  entitiesFromBio,
  entityMetrics,
  entityMetricsFromBio,
  formatEntityReport,
  type Entity,
  type EntityScores,
  type EntityTypeScores,
  type EntityReport,
  type EntityMetricsOptions,
} from './entity-metrics.js';
export {
  confusionMatrix,
  normalizeConfusionMatrix,
  formatConfusionMatrix,
  type ConfusionMatrix,
  type ConfusionOptions,
  type ConfusionNormalization,
  type FormatConfusionOptions,
} from './confusion.js';
export {
  confusionMatrixSvg,
  lineChartSvg,
  trainingCurvesSvg,
  writeSvg,
  escapeXml,
  type CurvePoint,
  type Series,
  type ChartPanel,
  type LineChartOptions,
  type TrainingCurvesOptions,
  type HeatmapOptions,
} from './svg-plots.js';
