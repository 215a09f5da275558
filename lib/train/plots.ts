/**
 * The images a finished run leaves in its output directory: `curves.svg` (training loss, and
 * validation token macro F1 and entity F1, against optimizer steps, from `metrics.jsonl`) and
 * `confusion.svg` (the piece-label confusion matrix of the best checkpoint).
 *
 * @packageDocumentation
 */
import path from 'node:path';

import type { ConfusionMatrix } from '../eval/confusion.js';
import { confusionMatrixSvg, trainingCurvesSvg, writeSvg } from '../eval/svg-plots.js';
import { metricCurve, readMetrics } from './metrics-log.js';

/** File names inside the output directory. */
export const CURVES_FILE = 'curves.svg';
export const CONFUSION_FILE = 'confusion.svg';

/** Writes `<output>/curves.svg` from `<output>/metrics.jsonl`; returns its path. */
export async function writeCurves(output: string, title?: string): Promise<string> {
  const { events } = await readMetrics(output);
  const svg = trainingCurvesSvg(
    [
      {
        title: 'training loss',
        xLabel: 'optimizer step',
        yLabel: 'loss',
        series: [{ name: 'train loss', points: metricCurve(events, 'train', (e) => e.loss) }],
      },
      {
        title: 'validation',
        xLabel: 'optimizer step',
        yLabel: 'F1',
        yMin: 0,
        yMax: 1,
        series: [
          { name: 'entity F1', points: metricCurve(events, 'eval', (e) => e.entity.f1) },
          {
            name: 'token macro F1',
            points: metricCurve(events, 'eval', (e) => e.tokenMacroF1),
            dashed: true,
          },
        ],
      },
    ],
    { title },
  );
  const file = path.join(output, CURVES_FILE);
  await writeSvg(file, svg);
  return file;
}

/** Writes `<output>/confusion.svg`; returns its path. */
export async function writeConfusion(
  output: string,
  confusion: ConfusionMatrix,
  title?: string,
): Promise<string> {
  const file = path.join(output, CONFUSION_FILE);
  await writeSvg(file, confusionMatrixSvg(confusion, { title }));
  return file;
}
