/**
 * `koner eval --model DIR --data DIR`: scores a model on a labelled corpus with the evaluation the
 * trainer runs (lib/train/evaluate.ts): the token classification report over piece labels (the
 * reference project's macro F1), entity precision/recall/F1 by exact character span, and the
 * confusion matrix, drawn as an SVG image.
 */
import { parseArgs } from 'node:util';

import type { Sentence } from '../corpus/types.js';
import { confusionMatrixSvg, writeSvg } from '../eval/svg-plots.js';
import { createLabelScheme, parseTag, type LabelScheme } from '../labels/scheme.js';
import type { NerModel } from '../model/ner-model.js';
import { readSentences } from '../train/data.js';
import {
  formatEvaluation,
  scorePredictions,
  summarizeEvaluation,
  type Evaluation,
  type SentencePrediction,
} from '../train/evaluate.js';
import {
  choiceFlag,
  noPositionals,
  optionalIntegerFlag,
  UsageError,
  type CliCommand,
} from './args.js';
import { loadModel, MODEL_OPTIONS, MODEL_USAGE, modelFlags } from './model-flags.js';

export const evalUsage = `usage: koner eval [--model <dir>] --data <path> [options]

Runs the model over the sentences of <path> and prints
  - the token classification report over tokenizer pieces, B-/I- labels only (its macro F1 is
    the reference KoBERT-CRF project's headline number; gold piece labels come from aligning
    the corpus entities over the model's pieces),
  - entity precision/recall/F1 per type (exact character span and type),
  - the confusion matrix of piece labels,
and draws the confusion matrix as an SVG image.

options:
  --data <path>         a KMOU directory or file (repeatable); CoNLL files with --format conll
  --format <f>          kmou (default) | conll
  --confusion <file>    where to write the SVG (default ./confusion.svg; never into the model
                        directory, which a training run's own confusion.svg may occupy)
  --no-confusion        write no SVG
  --json                print the results as one JSON object instead of the text report
  --limit <n>           only the first n sentences
  --batch-size <n>      sentences per model call (default 32)
${MODEL_USAGE}`;

export const evalCommand: CliCommand = {
  name: 'eval',
  summary: 'score a model on a KMOU directory or CoNLL files; confusion matrix as SVG',
  usage: evalUsage,
  run: evaluate,
};

/**
 * The scheme to score with: the model's entity types in its label order, then any type that
 * only the gold data has (the model can never predict it, and its recall rightly counts as 0).
 */
function schemeFor(labels: readonly string[], sentences: readonly Sentence[]): LabelScheme {
  const types: string[] = [];
  const add = (type: string) => {
    if (!types.includes(type)) types.push(type);
  };
  for (const label of labels) {
    const tag = parseTag(label);
    if (tag && tag.prefix !== 'O') add(tag.type);
  }
  for (const s of sentences) for (const e of s.entities) add(e.label);
  return createLabelScheme(types);
}

async function evaluate(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      data: { type: 'string', multiple: true },
      format: { type: 'string' },
      confusion: { type: 'string' },
      'no-confusion': { type: 'boolean' },
      json: { type: 'boolean' },
      limit: { type: 'string' },
      'batch-size': { type: 'string' },
      ...MODEL_OPTIONS,
    },
  });
  noPositionals(positionals);
  const flags = modelFlags(values);
  if (!values.data?.length) throw new UsageError('--data <path> is required');
  const format =
    values.format === undefined ? 'kmou' : choiceFlag(values.format, '--format', ['kmou', 'conll']);
  const limit = optionalIntegerFlag(values.limit, '--limit', Infinity, 1);
  const batchSize = optionalIntegerFlag(values['batch-size'], '--batch-size', 32, 1);
  if (values['no-confusion'] && values.confusion !== undefined) {
    throw new UsageError('--confusion and --no-confusion contradict each other');
  }
  const svgPath = values['no-confusion'] ? null : (values.confusion ?? 'confusion.svg');

  const all = await readSentences(format, values.data, {
    onWarning: (w) => console.error(`koner eval: ${w.message}`),
  });
  const sentences = all.slice(0, limit);
  if (sentences.length === 0) throw new Error(`no sentences in ${values.data.join(', ')}`);
  const model = await loadModel(flags);
  let evaluation: Evaluation;
  try {
    evaluation = await run(model, sentences, batchSize);
  } finally {
    await model.dispose();
  }

  const title = `${flags.dir} on ${values.data.join(', ')} (${sentences.length} sentences)`;
  if (svgPath) await writeSvg(svgPath, confusionMatrixSvg(evaluation.confusion, { title }));
  if (values.json) {
    console.log(JSON.stringify(toJson(evaluation, flags.dir, values.data, svgPath)));
  } else {
    console.log(formatEvaluation(evaluation));
    console.log(summarizeEvaluation(evaluation));
    if (svgPath) console.log(`confusion matrix: ${svgPath}`);
  }
  return 0;
}

/** Predicts in chunks (with progress on a terminal), then scores as the trainer does. */
async function run(model: NerModel, sentences: Sentence[], batchSize: number): Promise<Evaluation> {
  const started = performance.now();
  const progress = process.stderr.isTTY;
  const predictions: SentencePrediction[] = [];
  const chunk = batchSize * 8;
  for (let i = 0; i < sentences.length; i += chunk) {
    const texts = sentences.slice(i, i + chunk).map((s) => s.text);
    for (const p of await model.predictTagged(texts, { batchSize })) predictions.push(p);
    if (progress) process.stderr.write(`\r${predictions.length}/${sentences.length} sentences`);
  }
  if (progress) process.stderr.write('\n');
  const evaluation = scorePredictions(sentences, predictions, schemeFor(model.labels, sentences));
  return { ...evaluation, seconds: (performance.now() - started) / 1000 };
}

function toJson(e: Evaluation, model: string, data: string[], svg: string | null) {
  return {
    model,
    data,
    sentences: e.sentences,
    pieces: e.pieces,
    seconds: e.seconds,
    tokenMacroF1: e.tokenMacroF1,
    entity: e.entity,
    perType: e.perType,
    tokenReport: {
      rows: e.tokenReport.rows,
      micro: e.tokenReport.micro,
      macro: e.tokenReport.macro,
      weighted: e.tokenReport.weighted,
      accuracy: e.tokenReport.accuracy,
    },
    entityReport: { micro: e.entityReport.micro, macro: e.entityReport.macro },
    confusion: e.confusion,
    confusionSvg: svg,
  };
}
