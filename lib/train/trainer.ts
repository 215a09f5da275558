/**
 * The training loop behind `koner train`. TypeScript decides everything but the tensor work:
 * which examples form which micro-batch (length-bucketed, seeded, sharded by rank), the learning
 * rate of each step, when to evaluate, log, checkpoint and stop. One optimizer step — forward,
 * loss and backward over the accumulated micro-batches, gradient all-reduce, clipping, AdamW — is
 * one native `Trainer.step` call, which runs off the event loop.
 *
 * Resuming: `last/` holds the weights, AdamW's state, the data cursor, the schedule, early
 * stopping, the best score and LibTorch's generator state (every rank's, in data-parallel runs),
 * all taken at one optimizer-step boundary; evaluation draws nothing from the generator. So a run
 * resumed from `last/` takes exactly the steps the uninterrupted run would have taken, with the
 * same dropout masks, and ends with the same weights.
 *
 * Data parallel: every worker builds the same model (rank 0's weights are broadcast), takes its
 * shard of each epoch's batches, and steps with the gradients averaged over the group. Rank 0
 * evaluates, logs and saves; the others wait for its verdict (continue or stop) at each
 * evaluation.
 *
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { Sentence } from '../corpus/types.js';
import { formatEntityReport } from '../eval/entity-metrics.js';
import type { LabelScheme } from '../labels/scheme.js';
import type { ModelConfig } from '../model/config.js';
import { NerModel } from '../model/ner-model.js';
import {
  native,
  type NativeDistGroup,
  type NativeModel,
  type NativeTrainBatch,
  type NativeTrainer,
} from '../native.js';
import { makeDirectory } from '../output-dir.js';
import { setThreads } from '../runtime.js';
import { POS_IGNORE } from '../labels/pos.js';
import { Tokenizer } from '../tokenizer/index.js';
import { collateSyllables, DEFAULT_MAX_SYLLABLES } from '../tokenizer/syllables.js';
import {
  batchingFingerprint,
  collate,
  iterateBatches,
  padSequences,
  planSteps,
  type BatchCursor,
  type BatchingOptions,
  type CursorBatch,
  type StepPlan,
} from './batching.js';
import { allGatherStrings, readResumePoint, writeCheckpoint } from './checkpoint.js';
import {
  checkpointDir,
  recoverAtomicDir,
  type CheckpointKind,
  type TrainerState,
} from './checkpoint-files.js';
import { trainConfigToJson, type EarlyStopMetric, type TrainConfig } from './config.js';
import {
  formatPreparedData,
  prepareExamples,
  readSentences,
  schemeForCorpus,
  type PreparedData,
} from './data.js';
import { distGroupOptions, type DistEnv } from './dist-env.js';
import { EarlyStopping } from './early-stop.js';
import {
  evaluateModel,
  evaluationToJson,
  formatEvaluation,
  summarizeEvaluation,
  type Evaluation,
} from './evaluate.js';
import { METRICS_FILE, MetricsLog } from './metrics-log.js';
import { createModel, runModelConfig } from './model-setup.js';
import { writeConfusion, writeCurves } from './plots.js';
import { ProgressReporter, formatDuration, type ProgressStream } from './progress.js';
import { Rng } from './rng.js';
import { LinearSchedule, warmupStepsFor } from './schedule.js';
import { addTeacherTargets, unlabelledSentences, withUnlabelled } from './distill.js';

/** Options of {@link train}. */
export interface TrainOptions extends RunOptions {
  /** The validated config (see `loadTrainConfig`). */
  config: TrainConfig;
}

/** How a run is driven, for `koner train` and `koner pretrain` alike. */
export interface RunOptions {
  /** Continue from `<output>/last` instead of starting a new run. */
  resume?: boolean;
  /**
   * Stop after this optimizer step (counted from the start of the run, not of this process),
   * saving `last/`, as if interrupted there: the schedule still spans the whole run, so a later
   * `resume` finishes exactly as an uninterrupted run would. For time-limited jobs, and tests.
   */
  stopAfter?: number | null;
  /** This worker's place in a data-parallel job (`readDistEnv()`); null or absent: one process. */
  dist?: DistEnv | null;
  /** Where progress and log lines go (default `process.stderr`). */
  progress?: ProgressStream;
  /** Force the terminal progress bar on or off (default: `progress.isTTY`). */
  tty?: boolean;
  /** Where the final report goes (default `console.log`). */
  out?: (text: string) => void;
  /** fdatasync `metrics.jsonl` after each line (default true). */
  metricsSync?: boolean;
}

/** One evaluation of a run, as {@link train} returns it. */
export interface EvaluationPoint {
  step: number;
  /** 0-based epoch the last trained batch belonged to. */
  epoch: number;
  tokenMacroF1: number;
  entityF1: number;
  /** Training sentences per second (all workers) since the previous evaluation. */
  sentencesPerSecond: number;
  improved: boolean;
}

/** How a call of {@link train} ended. */
export interface TrainResult {
  output: string;
  /** Optimizer steps taken by the run so far. */
  step: number;
  totalSteps: number;
  /** `stopped`: `stopAfter` was reached before the end (resume to finish). */
  reason: 'completed' | 'early-stop' | 'max-steps' | 'stopped';
  best: TrainerState['best'];
  /** Evaluations made by this call (rank 0 only; empty on other ranks). */
  evaluations: EvaluationPoint[];
  /** The best checkpoint's evaluation, at the end of a finished run on rank 0. */
  bestEvaluation?: Evaluation;
}

// Stream of koner's TypeScript generator kept in trainer-state.json. The data order is a pure
// function of (seed, epoch), so the loop draws nothing from it today; it is saved and restored
// so that anything drawing from it later resumes exactly.
const TRAINER_RNG_STREAM = 0x7472616e;

/** LibTorch threads per worker: the configured count, or the cores divided among local workers. */
export function threadsFor(config: TrainConfig, dist: DistEnv | null): number {
  if (config.threads !== 'auto') return config.threads;
  return Math.max(1, Math.floor(os.availableParallelism() / (dist?.localWorldSize ?? 1)));
}

/**
 * Refuses to start a new run over an earlier one: its checkpoints and log would be mixed with
 * the new run's.
 */
function checkFreshOutput(output: string): void {
  for (const name of ['last', 'best', METRICS_FILE]) {
    if (existsSync(path.join(output, name))) {
      throw new Error(
        `${output} already holds a training run (${name}): pass --resume to continue it, or ` +
          `choose another output directory`,
      );
    }
  }
}

function trainerOf(model: NativeModel, config: TrainConfig): NativeTrainer {
  const Trainer = native().Trainer;
  if (typeof Trainer !== 'function') {
    throw new Error('this build of the koner addon has no native Trainer (rebuild it)');
  }
  return new Trainer(model, {
    weightDecay: config.optimizer.weightDecay,
    betas: config.optimizer.betas,
    eps: config.optimizer.eps,
    layerDecay: config.optimizer.layerDecay,
    clipNorm: config.clipNorm,
    autocast: config.dtype,
    posWeight: config.model.posWeight ?? undefined,
    distillWeight: config.distill?.weight,
    distillTemperature: config.distill?.temperature,
  });
}

/**
 * The training data with the teacher's soft targets on every example, and the unlabelled text
 * appended when `distill.text` names some (lib/train/distill.ts).
 */
async function distillationData(
  config: TrainConfig,
  labelled: PreparedData,
  sentences: Sentence[],
  validation: Sentence[],
  tokenizer: Tokenizer,
  scheme: LabelScheme,
): Promise<{ data: PreparedData; message: string }> {
  const distill = config.distill!;
  let data = labelled;
  let all = sentences;
  let message = `distillation from ${distill.teacher.join(' + ')} (weight ${distill.weight}, temperature ${distill.temperature}, combining ${distill.combine})`;
  if (distill.text.length > 0) {
    const { sentences: extra, leaks } = await unlabelledSentences(
      distill.text,
      distill.paragraphs,
      validation,
    );
    const prepared = prepareExamples(extra, tokenizer, {
      scheme,
      maxLength: config.maxLength,
      maxSyllables: config.model.syllables ? DEFAULT_MAX_SYLLABLES : undefined,
    });
    data = withUnlabelled(labelled, prepared);
    all = [...sentences, ...extra];
    message +=
      `; unlabelled: ${extra.length} paragraphs → ${prepared.examples.length} examples` +
      (leaks > 0 ? ` (${leaks} sharing text with the validation set dropped)` : '');
  }
  const { seconds } = await addTeacherTargets(
    distill.teacher,
    data,
    all,
    tokenizer,
    scheme,
    config.batchSize,
    distill.combine,
  );
  return { data, message: `${message}; teacher targets in ${seconds.toFixed(1)} s` };
}

function describeModel(c: ModelConfig, parameters: number): string {
  return (
    `${c.numHiddenLayers} layers × ${c.hiddenSize} hidden, ${c.numAttentionHeads} heads, ` +
    `${c.head} head, ${c.labels.length} labels, ${(parameters / 1e6).toFixed(2)}M parameters`
  );
}

/** Everything the loop shares between its helpers. */
interface Run {
  config: TrainConfig;
  output: string;
  rank: number;
  worldSize: number;
  main: boolean;
  group: NativeDistGroup | undefined;
  model: NativeModel;
  trainer: NativeTrainer;
  modelConfig: ModelConfig;
  tokenizer: Tokenizer;
  scheme: LabelScheme;
  validation: Sentence[];
  view: NerModel | null;
  metrics: MetricsLog | null;
  progress: ProgressReporter | null;
  schedule: LinearSchedule;
  earlyStop: EarlyStopping | null;
  rng: Rng;
  fingerprint: string;
  step: number;
  cursor: BatchCursor;
  elapsed: number;
  best: TrainerState['best'];
  bestEvaluation?: Evaluation;
}

function log(run: Pick<Run, 'main' | 'progress'>, stream: ProgressStream, message: string): void {
  if (!run.main) return;
  if (run.progress) run.progress.log(message);
  else stream.write(message + '\n');
}

async function saveCheckpoints(
  run: Run,
  kinds: CheckpointKind[],
  evaluation?: Evaluation,
): Promise<void> {
  const nativeRng = native().getRngState();
  // Collective: every rank contributes its generator state, whether or not it writes.
  const rankRng = run.group ? await allGatherStrings(run.group, nativeRng) : undefined;
  if (!run.main) return;
  const state: TrainerState = {
    step: run.step,
    epoch: run.cursor.epoch,
    cursor: { ...run.cursor },
    rng: { trainer: run.rng.state(), native: nativeRng },
    earlyStop: run.earlyStop?.state() ?? null,
    schedule: run.schedule.state(),
    best: { ...run.best },
    dataFingerprint: run.fingerprint,
    elapsedSeconds: run.elapsed,
  };
  for (const which of kinds) {
    const started = performance.now();
    await writeCheckpoint(checkpointDir(run.output, which), {
      model: run.model,
      trainer: run.trainer,
      modelConfig: run.modelConfig,
      tokenizer: run.config.tokenizer,
      state,
      rankRng,
      evaluation: evaluation ? evaluationToJson(evaluation, run.step) : undefined,
      trainConfig: trainConfigToJson(run.config),
    });
    run.metrics?.append({
      type: 'checkpoint',
      step: run.step,
      which,
      seconds: (performance.now() - started) / 1000,
    });
  }
}

/**
 * Evaluates (rank 0), updates best and early stopping, shares rank 0's verdict, and writes
 * `last/` (and `best/` on improvement). Returns whether to stop and what was found.
 */
async function evaluationPoint(
  run: Run,
  stream: ProgressStream,
  epoch: number,
  trainRate: number,
): Promise<{ stop: boolean; improved: boolean; evaluation?: Evaluation }> {
  let stop = false;
  let improved = false;
  let evaluation: Evaluation | undefined;
  if (run.main) {
    evaluation = await evaluateModel(run.view!, run.validation, run.scheme, {
      batchSize: run.config.batchSize,
    });
    const value =
      run.best.metric === 'tokenMacroF1' ? evaluation.tokenMacroF1 : evaluation.entity.f1;
    if (run.earlyStop) {
      const decision = run.earlyStop.update(value, run.step);
      improved = decision.improved;
      stop = decision.stop;
    } else {
      improved = !Number.isNaN(value) && (run.best.value === null || value > run.best.value);
    }
    if (improved) {
      run.best = { metric: run.best.metric, value, step: run.step };
      run.bestEvaluation = evaluation;
    }
    run.metrics?.append({
      type: 'eval',
      step: run.step,
      epoch,
      tokenMacroF1: evaluation.tokenMacroF1,
      entity: evaluation.entity,
      perType: evaluation.perType,
      seconds: evaluation.seconds,
    });
    log(
      run,
      stream,
      `eval at step ${run.step} (epoch ${epoch + 1}; training ran at ${trainRate.toFixed(1)} ` +
        `sent/s since the last evaluation): ${summarizeEvaluation(evaluation)}` +
        (improved ? ' · new best' : '') +
        (stop ? ` · no improvement in ${run.earlyStop!.patience} evaluations: stopping` : '') +
        `\n${formatEntityReport(evaluation.entityReport).trimEnd()}`,
    );
  }
  if (run.group) {
    const [flags] = await run.group.broadcast([Float32Array.of(stop ? 1 : 0, improved ? 1 : 0)]);
    stop = flags[0] === 1;
    improved = flags[1] === 1;
  }
  await saveCheckpoints(run, improved ? ['best', 'last'] : ['last'], evaluation);
  return { stop, improved, evaluation };
}

function nativeBatch(data: PreparedData, indices: number[], padId: number): NativeTrainBatch {
  const examples = indices.map((i) => data.examples[i]);
  // Tags past each length are never read (the loss masks by length); O keeps them valid ids.
  const { ids, labels } = collate(examples, padId, 0);
  const batch: NativeTrainBatch = {
    ids: ids.data,
    shape: [ids.rows, ids.cols],
    lengths: ids.lengths,
    tags: labels.data,
  };
  // Unlabelled examples (distillation) have no POS targets and no tags that count.
  if (examples.some((e) => e.posTags)) {
    batch.posTags = padSequences(
      examples.map((e) => e.posTags ?? new Int32Array(e.ids.length).fill(POS_IGNORE)),
      POS_IGNORE,
    ).data;
  }
  if (examples.some((e) => e.tagged === false)) {
    batch.tagged = Uint8Array.from(examples, (e) => (e.tagged === false ? 0 : 1));
  }
  if (examples[0].softTargets) {
    const K = examples[0].softTargets.length / examples[0].ids.length;
    const targets = new Float32Array(ids.rows * ids.cols * K);
    examples.forEach((e, b) => targets.set(e.softTargets!, b * ids.cols * K));
    batch.softTargets = targets;
  }
  if (examples[0].syllables) {
    const syllables = collateSyllables(
      examples.map((e) => e.syllables!),
      ids.cols,
    );
    batch.syllables = syllables.ids;
    batch.syllablesPerPiece = syllables.syllables;
  }
  return batch;
}

/** Where this process stands in the job, and where it writes. */
interface Worker {
  config: TrainConfig;
  dist: DistEnv | null;
  rank: number;
  worldSize: number;
  main: boolean;
  resume: boolean;
  say: (message: string) => void;
}

/**
 * Fails before the data is read and the model built: an output that already holds a run (unless
 * resuming), nothing to resume, or an output that cannot be written.
 */
async function checkOutput(worker: Worker): Promise<void> {
  const { output } = worker.config;
  if (!worker.main) return;
  const lastDir = checkpointDir(output, 'last');
  if (!worker.resume) checkFreshOutput(output);
  if (worker.resume && !existsSync(lastDir) && !existsSync(`${lastDir}.old`)) {
    throw new Error(`${output}: no checkpoint to resume from (${lastDir} does not exist)`);
  }
  await makeDirectory(output);
}

/** The run's data: the tokenizer, the prepared training examples and the validation sentences. */
async function readData(worker: Worker): Promise<{
  tokenizer: Tokenizer;
  data: PreparedData;
  validation: Sentence[];
  scheme: LabelScheme;
}> {
  const { config, say } = worker;
  const tokenizer = await Tokenizer.load(config.tokenizer.model, {
    vocab: config.tokenizer.vocab,
  });
  const trainSentences = await readSentences(config.corpus.format, config.corpus.train);
  const validation = await readSentences(config.corpus.format, config.corpus.validation);
  const scheme = schemeForCorpus(config.corpus.format, trainSentences, validation);
  let data = prepareExamples(trainSentences, tokenizer, {
    scheme,
    maxLength: config.maxLength,
    pos: config.model.posWeight !== null,
    maxSyllables: config.model.syllables ? DEFAULT_MAX_SYLLABLES : undefined,
  });
  say(formatPreparedData('train', data));
  if (config.distill) {
    const taught = await distillationData(
      config,
      data,
      trainSentences,
      validation,
      tokenizer,
      scheme,
    );
    data = taught.data;
    say(taught.message);
  }
  say(`validation: ${validation.length} sentences`);
  if (data.examples.length === 0) throw new Error('the training data holds no examples');
  if (validation.length === 0) throw new Error('the validation data holds no sentences');
  return { tokenizer, data, validation, scheme };
}

/** The model (its initial weights unless resuming) on the run's device, and its optimizer. */
async function buildModel(
  worker: Worker,
  scheme: LabelScheme,
  tokenizer: Tokenizer,
): Promise<{ modelConfig: ModelConfig; model: NativeModel; trainer: NativeTrainer }> {
  const { config, say } = worker;
  const modelConfig = await runModelConfig(config, scheme, tokenizer);
  const created = await createModel(config, modelConfig, (config.seed + worker.rank) % 2 ** 32, {
    loadInit: !worker.resume,
  });
  const model = created.model;
  if (created.note) say(created.note);
  if (config.device !== 'cpu') await model.to(config.device, 'float32');
  const trainer = trainerOf(model, config);
  const parameters = model
    .parameterInfo()
    .reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
  say(
    `model: ${describeModel(modelConfig, parameters)}; ` +
      (config.model.init === 'scratch' ? 'from scratch' : `from ${config.model.init}`) +
      `; ${config.device}${config.dtype === 'float32' ? '' : ` (${config.dtype} autocast)`}, ` +
      `${threadsFor(config, worker.dist)} threads` +
      (worker.worldSize > 1 ? ` × ${worker.worldSize} workers` : ''),
  );
  return { modelConfig, model, trainer };
}

/**
 * The checkpoint in `last/` loaded into the model, the optimizer and LibTorch's generator, after
 * checking that it belongs to this run; its trainer state.
 */
async function restoreCheckpoint(
  worker: Worker,
  group: NativeDistGroup | undefined,
  model: NativeModel,
  trainer: NativeTrainer,
  expected: { fingerprint: string; metric: EarlyStopMetric; totalSteps: number },
): Promise<TrainerState> {
  const lastDir = checkpointDir(worker.config.output, 'last');
  if (worker.main) {
    await recoverAtomicDir(lastDir);
    await recoverAtomicDir(checkpointDir(worker.config.output, 'best'));
  }
  await group?.barrier();
  const point = await readResumePoint(lastDir, worker.rank, worker.worldSize);
  const state = point.state;
  if (state.dataFingerprint !== expected.fingerprint) {
    throw new Error(
      `${lastDir}: the checkpoint's data order differs from this run's (corpus, tokenizer, ` +
        `maxLength, batchSize, batchTokens, seed or the number of workers changed): ` +
        `resume with the original config`,
    );
  }
  if (state.best.metric !== expected.metric) {
    throw new Error(
      `${lastDir}: the run followed ${state.best.metric}, this config follows ${expected.metric} ` +
        `(earlyStopping.metric): resume with the original config`,
    );
  }
  if (state.step > expected.totalSteps) {
    throw new Error(
      `${lastDir}: the checkpoint is at step ${state.step}, past the end of this run ` +
        `(${expected.totalSteps} steps): raise epochs or maxSteps to continue it`,
    );
  }
  await model.loadWeights(point.weights);
  await trainer.loadState(point.optimizer);
  if (point.nativeRng !== undefined) native().setRngState(point.nativeRng);
  return state;
}

/** The plan in one line: steps, batch, learning rate, and where a resumed run picks up. */
function describePlan(
  config: TrainConfig,
  plan: StepPlan,
  worldSize: number,
  warmupSteps: number,
  state: TrainerState | null,
): string {
  const epochs = plan.perEpoch.length;
  return (
    `plan: ${plan.total} optimizer steps (${epochs} epoch${epochs === 1 ? '' : 's'} of ` +
    `${plan.perEpoch[0]}), batch ${config.batchSize}` +
    (config.gradAccumulation > 1 ? ` × ${config.gradAccumulation} accumulated` : '') +
    (worldSize > 1 ? ` × ${worldSize} workers` : '') +
    `, lr ${config.optimizer.lr} with ${warmupSteps} warmup steps` +
    (config.optimizer.layerDecay < 1 ? `, layer decay ${config.optimizer.layerDecay}` : '') +
    (state ? `; resuming at step ${state.step} (epoch ${state.cursor.epoch + 1})` : '')
  );
}

/** The run's mutable state: from the checkpoint when resuming, else at step 0. */
function startRun(
  worker: Worker,
  parts: Pick<
    Run,
    'group' | 'model' | 'trainer' | 'modelConfig' | 'tokenizer' | 'scheme' | 'validation'
  >,
  plan: StepPlan,
  fingerprint: string,
  metric: EarlyStopMetric,
  state: TrainerState | null,
): Run {
  const { config } = worker;
  const warmupSteps = warmupStepsFor(config.schedule, plan.total);
  worker.say(describePlan(config, plan, worker.worldSize, warmupSteps, state));
  return {
    ...parts,
    config,
    output: config.output,
    rank: worker.rank,
    worldSize: worker.worldSize,
    main: worker.main,
    view: worker.main
      ? NerModel.fromNative(parts.model, parts.modelConfig, parts.tokenizer, config.output)
      : null,
    metrics: null,
    progress: null,
    schedule: new LinearSchedule(
      { peakLr: config.optimizer.lr, warmupSteps, totalSteps: plan.total },
      state?.schedule,
    ),
    earlyStop: config.earlyStopping
      ? new EarlyStopping(
          { patience: config.earlyStopping.patience, minDelta: config.earlyStopping.minDelta },
          state?.earlyStop ?? undefined,
        )
      : null,
    rng: state ? Rng.fromState(state.rng.trainer) : Rng.fromSeed(config.seed, TRAINER_RNG_STREAM),
    fingerprint,
    step: state?.step ?? 0,
    cursor: state ? { ...state.cursor } : { epoch: 0, batchIndex: 0 },
    elapsed: state?.elapsedSeconds ?? 0,
    best: state ? { ...state.best } : { metric, value: null, step: null },
  };
}

/** Rank 0's metrics log (its `start` event written) and progress reporter. */
async function openReporting(
  run: Run,
  plan: StepPlan,
  resumed: boolean,
  options: TrainOptions,
  stream: ProgressStream,
): Promise<void> {
  const metrics = await MetricsLog.open(run.output, { sync: options.metricsSync });
  run.metrics = metrics;
  metrics.append({
    type: 'start',
    step: run.step,
    resumed,
    epoch: run.cursor.epoch,
    totalSteps: plan.total,
    worldSize: run.worldSize,
    config: trainConfigToJson(run.config),
  });
  run.progress = new ProgressReporter({
    totalSteps: plan.total,
    epochs: plan.perEpoch.length,
    stream,
    logEvery: run.config.logEvery,
    tty: options.tty,
  });
}

/**
 * Rank 0's end of a run that reached its end: the `end` event, the plots, and the report of the
 * best checkpoint (evaluated again when it came before a resume); its evaluation.
 */
async function finishRun(
  run: Run,
  reason: Exclude<TrainResult['reason'], 'stopped'>,
  out: (text: string) => void,
): Promise<Evaluation | undefined> {
  const { config, output } = run;
  const bestDir = checkpointDir(output, 'best');
  run.progress?.finish();
  run.metrics!.append({
    type: 'end',
    step: run.step,
    reason,
    elapsedSeconds: run.elapsed,
    best: run.best,
  });
  let bestEvaluation = run.bestEvaluation;
  if (!bestEvaluation && existsSync(bestDir)) {
    // The best step came before a resume: evaluate the saved best model to report it.
    const best = await NerModel.load(bestDir);
    bestEvaluation = await evaluateModel(best, run.validation, run.scheme, {
      batchSize: config.batchSize,
    });
    best.dispose();
  }
  const name = path.basename(output);
  await writeCurves(output, `koner train · ${name}`);
  if (bestEvaluation) {
    await writeConfusion(
      output,
      bestEvaluation.confusion,
      `${name} · best checkpoint (step ${run.best.step}) · piece labels`,
    );
    out(
      `\nbest checkpoint: ${bestDir} (step ${run.best.step}, ${run.best.metric} ` +
        `${((run.best.value ?? NaN) * 100).toFixed(2)})\n\n${formatEvaluation(bestEvaluation)}`,
    );
  }
  out(
    `finished (${reason}) after ${run.step} steps, ${formatDuration(run.elapsed)} of ` +
      `training; output in ${output}`,
  );
  return bestEvaluation;
}

/**
 * Trains a model as `config` says (see the module comment), writing checkpoints, `metrics.jsonl`
 * and, at the end, `curves.svg` and `confusion.svg` into `config.output`.
 *
 * @throws Error before anything is written when the output already holds a run (without
 *   `resume`), when there is nothing to resume, or when the checkpoint's data order differs from
 *   this run's.
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const config = options.config;
  const dist = options.dist ?? null;
  const rank = dist?.rank ?? 0;
  const main = rank === 0;
  const stream = options.progress ?? process.stderr;
  const stopAfter = options.stopAfter ?? null;
  if (stopAfter !== null && (!Number.isInteger(stopAfter) || stopAfter < 1)) {
    throw new RangeError(`stopAfter must be a positive integer, got ${stopAfter}`);
  }
  const worker: Worker = {
    config,
    dist,
    rank,
    worldSize: dist?.worldSize ?? 1,
    main,
    resume: options.resume ?? false,
    say: (message) => log({ main, progress: null }, stream, message),
  };
  await checkOutput(worker);

  setThreads(threadsFor(config, dist));
  let group: NativeDistGroup | undefined;
  let run: Run | undefined;
  try {
    if (dist && worker.worldSize > 1) {
      group = await native().DistGroup.connect(distGroupOptions(dist, config.device));
    }
    const { tokenizer, data, validation, scheme } = await readData(worker);
    const { modelConfig, model, trainer } = await buildModel(worker, scheme, tokenizer);

    const batching: BatchingOptions = {
      batchSize: config.batchSize,
      maxTokens: config.batchTokens,
      seed: config.seed,
    };
    const plan = planSteps(data.lengths, batching, {
      epochs: config.epochs,
      maxSteps: config.maxSteps,
      gradAccumulation: config.gradAccumulation,
      rank,
      worldSize: worker.worldSize,
    });
    const fingerprint = batchingFingerprint(data.lengths, batching, worker.worldSize);
    const metric = config.earlyStopping?.metric ?? 'entityF1';
    let state: TrainerState | null = null;
    if (worker.resume) {
      state = await restoreCheckpoint(worker, group, model, trainer, {
        fingerprint,
        metric,
        totalSteps: plan.total,
      });
    } else if (group) {
      await trainer.broadcastParameters(group);
    }

    const parts = { group, model, trainer, modelConfig, tokenizer, scheme, validation };
    run = startRun(worker, parts, plan, fingerprint, metric, state);
    if (main) await openReporting(run, plan, state !== null, options, stream);

    const result = await loop(run, data, plan.total, stopAfter, stream);
    const ended = { output: config.output, step: run.step, totalSteps: plan.total };
    if (result.reason === 'stopped') {
      run.progress?.finish();
      worker.say(`stopped after step ${run.step} of ${plan.total}; continue with --resume`);
      return { ...ended, reason: 'stopped', best: run.best, evaluations: result.evaluations };
    }
    const reason =
      result.reason ?? (config.maxSteps !== null ? ('max-steps' as const) : ('completed' as const));
    const out = options.out ?? ((text: string) => console.log(text));
    const bestEvaluation = main ? await finishRun(run, reason, out) : undefined;
    return { ...ended, reason, best: run.best, evaluations: result.evaluations, bestEvaluation };
  } finally {
    run?.metrics?.close();
    if (group) await group.destroy().catch(() => undefined);
  }
}

/** The steps themselves; returns why they ended (undefined: the planned end). */
async function loop(
  run: Run,
  data: PreparedData,
  totalSteps: number,
  stopAfter: number | null,
  stream: ProgressStream,
): Promise<{ reason?: 'early-stop' | 'stopped'; evaluations: EvaluationPoint[] }> {
  const { config } = run;
  const padId = run.modelConfig.padTokenId;
  const batches = iterateBatches(
    data.lengths,
    { batchSize: config.batchSize, maxTokens: config.batchTokens, seed: config.seed },
    { rank: run.rank, worldSize: run.worldSize, from: run.cursor },
  );
  const evaluations: EvaluationPoint[] = [];
  // Since the last `train` event, and since the last evaluation.
  const sinceLog = {
    loss: 0,
    steps: 0,
    sentences: 0,
    tokens: 0,
    seconds: 0,
    gradNorm: 0,
    taggingLoss: 0,
    posLoss: 0,
    distillLoss: 0,
  };
  const sinceEval = { sentences: 0, seconds: 0 };
  let warnedNonFinite = false;
  run.progress?.start();
  while (run.step < totalSteps) {
    // One optimizer step's micro-batches; a group never crosses an epoch boundary, so an epoch's
    // last step may take fewer (planSteps counts the same way).
    const micro: CursorBatch[] = [];
    for (;;) {
      const next = batches.next();
      if (next.done) throw new Error('internal: the batch stream ended before the planned steps');
      micro.push(next.value);
      if (micro.length >= config.gradAccumulation) break;
      if (next.value.next.epoch !== next.value.cursor.epoch) break;
    }
    const epoch = micro[0].cursor.epoch;
    const inputs = micro.map((b) => nativeBatch(data, b.indices, padId));
    const tokens = inputs.reduce((sum, b) => sum + b.lengths.reduce((a, n) => a + n, 0), 0);
    const lr = run.schedule.lr();
    const started = performance.now();
    const step = await run.trainer.step(inputs, lr, run.group);
    const seconds = (performance.now() - started) / 1000;
    run.schedule.advance();
    run.step++;
    run.cursor = micro[micro.length - 1].next;
    run.elapsed += seconds;
    if (!Number.isFinite(step.loss) && !warnedNonFinite) {
      warnedNonFinite = true;
      log(run, stream, `warning: non-finite training loss (${step.loss}) at step ${run.step}`);
    }

    run.progress?.update({ step: run.step, epoch, loss: step.loss, sentences: step.sentences, lr });
    sinceLog.loss += step.loss;
    sinceLog.taggingLoss += step.taggingLoss;
    sinceLog.posLoss += step.posLoss;
    sinceLog.distillLoss += step.distillLoss;
    sinceLog.steps++;
    sinceLog.sentences += step.sentences;
    // Other workers' batches are about as long: tokens are counted here and scaled.
    sinceLog.tokens += tokens * run.worldSize;
    sinceLog.seconds += seconds;
    sinceLog.gradNorm = step.gradNorm;
    sinceEval.sentences += step.sentences;
    sinceEval.seconds += seconds;
    if (run.metrics && (run.step % config.logEvery === 0 || run.step === totalSteps)) {
      run.metrics.append({
        type: 'train',
        step: run.step,
        epoch,
        loss: sinceLog.loss / sinceLog.steps,
        lr,
        gradNorm: sinceLog.gradNorm,
        sentencesPerSecond: sinceLog.sentences / Math.max(sinceLog.seconds, 1e-9),
        tokensPerSecond: sinceLog.tokens / Math.max(sinceLog.seconds, 1e-9),
        // Each objective alone, when the run trains more than the tags.
        ...(config.model.posWeight !== null || config.distill
          ? {
              taggingLoss: sinceLog.taggingLoss / sinceLog.steps,
              posLoss:
                config.model.posWeight !== null ? sinceLog.posLoss / sinceLog.steps : undefined,
              distillLoss: config.distill ? sinceLog.distillLoss / sinceLog.steps : undefined,
            }
          : {}),
        elapsedSeconds: run.elapsed,
      });
      Object.assign(sinceLog, {
        loss: 0,
        steps: 0,
        sentences: 0,
        tokens: 0,
        seconds: 0,
        taggingLoss: 0,
        posLoss: 0,
        distillLoss: 0,
      });
    }

    const epochEnd = run.cursor.epoch !== epoch;
    const evalDue =
      (config.evalEvery > 0 ? run.step % config.evalEvery === 0 : epochEnd) ||
      run.step === totalSteps;
    if (evalDue) {
      const trainRate = sinceEval.sentences / Math.max(sinceEval.seconds, 1e-9);
      const verdict = await evaluationPoint(run, stream, epoch, trainRate);
      if (verdict.evaluation) {
        evaluations.push({
          step: run.step,
          epoch,
          tokenMacroF1: verdict.evaluation.tokenMacroF1,
          entityF1: verdict.evaluation.entity.f1,
          sentencesPerSecond: trainRate,
          improved: verdict.improved,
        });
      }
      sinceEval.sentences = 0;
      sinceEval.seconds = 0;
      if (verdict.stop) return { reason: 'early-stop', evaluations };
    }
    if (stopAfter !== null && run.step >= stopAfter && run.step < totalSteps) {
      if (!evalDue) await saveCheckpoints(run, ['last']);
      return { reason: 'stopped', evaluations };
    }
  }
  return { evaluations };
}
