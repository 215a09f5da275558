/**
 * The loop behind `koner pretrain`: masked-LM or ELECTRA pretraining of a BERT encoder on raw
 * text. The
 * batch stream ({@link PretrainBatcher}: streamed gzip paragraphs, the validation leak guard,
 * whole-word masking, length buckets) is TypeScript; each optimizer step is one native
 * `Trainer.step` with masked-LM targets, as `koner train`'s steps are with tags.
 *
 * With `objective: "electra"` a step is two native steps: the generator's (a small masked LM, its
 * own model and optimizer) on the masked batch, which also returns a draw at every masked
 * position, then the encoder's on the window with those draws in it, with replaced-token targets
 * ({@link replacedBatch}). The generator is written to `last/generator/` beside the encoder.
 *
 * Every `evalEvery` steps rank 0 measures the masked-LM loss and accuracy on held-out paragraphs
 * (the last `evalParagraphs` lines of the last text file, never trained on) and writes `last/`
 * atomically: a model directory whose config has head `none` and the masked-LM head, which
 * `koner train` takes as `model.init`, plus AdamW's state and `pretrain-state.json` (step,
 * schedule, the batch stream's position and generator, LibTorch's generator). A run resumed from
 * `last/` continues with exactly the batches and dropout masks the uninterrupted run would have
 * used.
 *
 * Data parallel (`--nproc`): every worker reads the same text and takes its own share of each
 * buffer's batches (see the batcher), so the workers need no data exchange; gradients are
 * all-reduced by the native step.
 *
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { readNetworkConfig, type ModelConfig, WEIGHTS_FILE } from '../model/config.js';
import {
  native,
  type NativeDistGroup,
  type NativeModel,
  type NativeStepResult,
  type NativeTrainBatch,
  type NativeTrainer,
} from '../native.js';
import { setThreads } from '../runtime.js';
import { Tokenizer } from '../tokenizer/index.js';
import { allGatherStrings, writeModelFiles } from '../train/checkpoint.js';
import { recoverAtomicDir, writeAtomicDir } from '../train/checkpoint-files.js';
import { readSentences } from '../train/data.js';
import { distGroupOptions } from '../train/dist-env.js';
import { METRICS_FILE, MetricsLog } from '../train/metrics-log.js';
import { ProgressReporter, formatDuration } from '../train/progress.js';
import { LinearSchedule, type ScheduleState } from '../train/schedule.js';
import type { RunOptions } from '../train/trainer.js';
import { checkState, PretrainBatcher, type PretrainDataState } from './batcher.js';
import type { PretrainConfig } from './config.js';
import { buildEvalSet, heldOutSplit } from './eval-set.js';
import type { MaskedBatch } from './examples.js';
import { ValidationLeakGuard } from './leak-guard.js';
import { replacedBatch, type ReplacedBatch } from './replaced.js';
import { countLines } from './text-stream.js';

/** The state file of a pretraining checkpoint. */
export const PRETRAIN_STATE_FILE = 'pretrain-state.json';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const CONFIG_FILE = 'pretrain.json';
/** Where an ELECTRA checkpoint keeps its generator: a model directory inside `last/`. */
export const GENERATOR_DIR = 'generator';
const STATE_FORMAT = 'koner-pretrain-state';

/** Everything besides tensors that a resumed pretraining run needs. */
export interface PretrainState {
  format: typeof STATE_FORMAT;
  version: 1;
  step: number;
  schedule: ScheduleState;
  /** The batch stream after the last step (rank 0's; every rank resumes from it). */
  data: PretrainDataState;
  /** LibTorch's CPU generator (dropout) of every rank, by rank. */
  nativeRng: string[];
  elapsedSeconds: number;
}

/** Options of {@link pretrain}. */
export interface PretrainOptions extends RunOptions {
  config: PretrainConfig;
}

/** How a call of {@link pretrain} ended. */
export interface PretrainResult {
  output: string;
  step: number;
  totalSteps: number;
  reason: 'completed' | 'stopped';
  /** Held-out evaluations made by this call (rank 0). */
  evaluations: {
    step: number;
    loss: number;
    mlmAccuracy: number;
    /** ELECTRA: the encoder's replaced-token loss and accuracy on the generator's draws. */
    rtdLoss?: number;
    rtdAccuracy?: number;
    /** ELECTRA: judged pieces the generator's draws replaced, over judged pieces. */
    replacedShare?: number;
  }[];
}

/**
 * The encoder-only model config of a pretraining run: `model.size` from scratch, or the shape,
 * vocabulary and pad id of the `model.init` directory.
 *
 * @throws Error when the init directory's vocabulary is not the tokenizer's, or its positions
 *   cannot take `maxLength`.
 */
export async function pretrainModelConfig(
  config: PretrainConfig,
  tokenizer: Tokenizer,
): Promise<ModelConfig> {
  const { init, dropout } = config.model;
  const electra = config.objective === 'electra';
  const shared = {
    hiddenAct: 'gelu' as const,
    hiddenDropoutProb: dropout,
    attentionProbsDropoutProb: dropout,
    head: 'none' as const,
    labels: [],
    mlmHead: electra ? undefined : true,
    rtdHead: electra ? true : undefined,
  };
  if (init === 'scratch') {
    const size = config.model.size!;
    return {
      ...shared,
      vocabSize: tokenizer.vocabSize,
      ...size,
      typeVocabSize: 2,
      layerNormEps: 1e-12,
      initializerRange: 0.02,
      padTokenId: tokenizer.specialIds.pad,
      rnnHiddenSize: Math.max(1, Math.floor(size.hiddenSize / 2)),
    };
  }
  const base = await initModelConfig(init, 'model.init', tokenizer.vocabSize, config.maxLength);
  return { ...base, ...shared };
}

/**
 * The config of the model directory a pretraining model starts from, checked against the
 * tokenizer's vocabulary and `maxLength`. Its tagging-only parts are left behind: pretraining
 * batches carry no syllables and no POS tags.
 *
 * @throws Error naming `field` when the vocabulary differs or the positions cannot take maxLength.
 */
async function initModelConfig(
  dir: string,
  field: string,
  vocabSize: number,
  maxLength: number,
): Promise<ModelConfig> {
  const base = await readNetworkConfig(dir, field);
  if (base.vocabSize !== vocabSize) {
    throw new Error(
      `${field}: ${dir} has vocab_size ${base.vocabSize}, the tokenizer ${vocabSize}`,
    );
  }
  if (maxLength > base.maxPositionEmbeddings) {
    throw new Error(
      `${field}: maxLength (${maxLength}) exceeds ${dir}'s max_position_embeddings ` +
        `(${base.maxPositionEmbeddings})`,
    );
  }
  return { ...base, posLabels: undefined, syllableVocabSize: undefined, tokenizer: undefined };
}

/**
 * Where ELECTRA's generator starts: `generator.init` when it names a directory, else the
 * generator of an ELECTRA run that `model.init` names (so that a continued run continues its
 * generator too), else `"scratch"`.
 */
export function generatorSource(config: PretrainConfig): string {
  if (config.generator.init !== 'scratch') return config.generator.init;
  if (config.model.init === 'scratch') return 'scratch';
  const dir = path.join(config.model.init, GENERATOR_DIR);
  return existsSync(path.join(dir, WEIGHTS_FILE)) ? dir : 'scratch';
}

/**
 * ELECTRA's generator, a masked LM over the encoder's vocabulary and positions: of
 * `generator.size` from scratch, else of the shape of the directory it starts from.
 *
 * @throws Error when that directory's vocabulary is not the encoder's, or its positions cannot
 *   take `maxLength`.
 */
export async function generatorModelConfig(
  config: PretrainConfig,
  encoder: ModelConfig,
): Promise<ModelConfig> {
  const source = generatorSource(config);
  const head = { head: 'none' as const, labels: [], mlmHead: true, rtdHead: undefined };
  if (source === 'scratch') {
    const size = config.generator.size;
    return {
      ...encoder,
      ...size,
      ...head,
      rnnHiddenSize: Math.max(1, Math.floor(size.hiddenSize / 2)),
    };
  }
  const base = await initModelConfig(source, 'generator', encoder.vocabSize, config.maxLength);
  return {
    ...base,
    ...head,
    hiddenDropoutProb: encoder.hiddenDropoutProb,
    attentionProbsDropoutProb: encoder.attentionProbsDropoutProb,
  };
}

/** The key prefix of each pretraining head in a model directory's weights. */
const HEAD_PREFIX = { mlm: 'cls.predictions.', electra: 'discriminator_predictions.' } as const;

/**
 * Loads the `model.init` directory's encoder, and the head of `objective` when it has one (else
 * the head keeps its seeded draw). Returns what was loaded, for the log.
 */
async function loadInit(
  model: NativeModel,
  dir: string,
  objective: PretrainConfig['objective'],
): Promise<string> {
  const file = path.join(dir, WEIGHTS_FILE);
  const names = (await native().inspectCheckpoint(file)).map((t) => t.name);
  const prefix = HEAD_PREFIX[objective];
  const withHead = names.some((n) => n.startsWith(prefix));
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'koner-pretrain-init-'));
  try {
    // Only the encoder (and head) are kept: a tagging head or POS head of the directory is not
    // part of a pretraining model.
    const kept = names.filter(
      (n) =>
        (n.startsWith('bert.') && !n.includes('syllable_embeddings')) ||
        (withHead && n.startsWith(prefix)),
    );
    const renames = kept.map((n): [string, string] =>
      withHead ? [n, n] : [n, n.slice('bert.'.length)],
    );
    const weights = path.join(tmp, WEIGHTS_FILE);
    await native().convertCheckpoint(file, weights, renames);
    await model.loadWeights(weights);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const head = objective === 'mlm' ? 'masked-LM head' : 'replaced-token head';
  return withHead ? `its encoder and ${head}` : `its encoder (a fresh ${head})`;
}

function nativeBatch(batch: MaskedBatch, sampleMasked = false): NativeTrainBatch {
  return {
    ids: batch.ids,
    shape: batch.shape,
    lengths: batch.lengths,
    mlmLabels: batch.labels,
    ...(sampleMasked ? { sampleMasked } : {}),
  };
}

/** The encoder's batch of an ELECTRA step: the generator's draws in place, a target per piece. */
function detectionBatch(replaced: ReplacedBatch): NativeTrainBatch {
  return {
    ids: replaced.ids,
    shape: replaced.shape,
    lengths: replaced.lengths,
    rtdLabels: replaced.labels,
  };
}

/** What one pretraining step (one or two native steps) reports. */
interface PretrainStep {
  mlmLoss: number;
  mlmAccuracy: number;
  /** ELECTRA's replaced-token detection; 0 for masked LM. */
  rtdLoss: number;
  rtdAccuracy: number;
  /** The encoder's gradient norm. */
  gradNorm: number;
  sentences: number;
}

/**
 * Where a new run's stream starts: where the `model.init` run stopped, when that directory holds
 * the state of a stream with the same options (so continuing never repeats text); else the start.
 */
async function initialData(
  config: PretrainConfig,
  batcher: PretrainBatcher,
  say: (message: string) => void,
): Promise<PretrainDataState> {
  if (config.model.init === 'scratch') return batcher.initialState();
  const file = path.join(config.model.init, PRETRAIN_STATE_FILE);
  if (!existsSync(file)) return batcher.initialState();
  try {
    const saved = JSON.parse(await readFile(file, 'utf8')) as { data?: unknown };
    checkState(saved.data, batcher.config, file);
    const data = saved.data;
    say(
      `text: continuing where ${config.model.init} stopped (pass ${data.position.epoch + 1}, ` +
        `file ${data.position.file + 1}, line ${data.position.line + 1})`,
    );
    return data;
  } catch (error) {
    say(`text: from the start (${(error as Error).message})`);
    return batcher.initialState();
  }
}

function parseState(raw: unknown, file: string, data: PretrainBatcher): PretrainState {
  const s = raw as Partial<PretrainState> | null;
  const fail = (what: string): never => {
    throw new Error(`${file}: ${what}`);
  };
  if (!s || typeof s !== 'object' || s.format !== STATE_FORMAT || s.version !== 1) {
    fail(`not a ${STATE_FORMAT} version 1 file`);
  }
  const natural = (x: unknown): boolean => typeof x === 'number' && Number.isInteger(x) && x >= 0;
  if (!natural(s!.step)) fail(`step must be an integer ≥ 0, got ${JSON.stringify(s!.step)}`);
  if (!s!.schedule || !natural(s!.schedule.step)) fail('schedule.step is missing or invalid');
  if (!Array.isArray(s!.nativeRng) || !s!.nativeRng.every((x) => typeof x === 'string')) {
    fail('nativeRng must be an array of strings');
  }
  if (typeof s!.elapsedSeconds !== 'number') fail('elapsedSeconds must be a number');
  // Throws naming the field, or the stream option that changed since the state was saved.
  checkState(s!.data, data.config, `${file}: data`);
  return s as PretrainState;
}

/**
 * Pretrains as `config` says (see the module comment).
 *
 * @throws Error before anything is written when the output already holds a run (without
 *   `resume`) or there is nothing to resume, or when the checkpoint's stream options differ.
 */
export async function pretrain(options: PretrainOptions): Promise<PretrainResult> {
  const { config } = options;
  const dist = options.dist ?? null;
  const rank = dist?.rank ?? 0;
  const worldSize = dist?.worldSize ?? 1;
  const main = rank === 0;
  const stream = options.progress ?? process.stderr;
  const out = options.out ?? ((text: string) => console.log(text));
  const output = config.output;
  const lastDir = path.join(output, 'last');
  const resume = options.resume ?? false;
  const stopAfter = options.stopAfter ?? null;
  const say = (message: string): void => {
    if (main) stream.write(message + '\n');
  };
  if (main && !resume) {
    for (const name of ['last', METRICS_FILE]) {
      if (existsSync(path.join(output, name))) {
        throw new Error(
          `${output} already holds a pretraining run (${name}): pass --resume to continue it, ` +
            'or choose another output directory',
        );
      }
    }
  }
  if (main && resume) {
    await recoverAtomicDir(lastDir);
    if (!existsSync(lastDir)) {
      throw new Error(`${output}: no checkpoint to resume from (${lastDir} does not exist)`);
    }
  }

  const addon = native();
  const threads =
    config.threads === 'auto'
      ? Math.max(1, Math.floor(os.availableParallelism() / (dist?.localWorldSize ?? 1)))
      : config.threads;
  setThreads(threads);
  let group: NativeDistGroup | undefined;
  let metrics: MetricsLog | null = null;
  try {
    if (dist && worldSize > 1) {
      group = await addon.DistGroup.connect(distGroupOptions(dist, config.device));
    }
    const tokenizer = await Tokenizer.load(config.tokenizer.model, {
      vocab: config.tokenizer.vocab,
    });
    const validation = await readSentences(config.validation.format, config.validation.paths);
    if (validation.length === 0) throw new Error('validation: no sentences to guard against');
    const guard = new ValidationLeakGuard(validation.map((s) => s.text));
    const lastFile = config.text[config.text.length - 1];
    const split = heldOutSplit(config.text, await countLines(lastFile), config.evalParagraphs);
    const batcher = new PretrainBatcher({
      files: config.text,
      until: split.trainUntil,
      tokenizer,
      guard,
      maxLength: config.maxLength,
      batchSize: config.batchSize,
      seed: config.seed,
      masking: {
        maskProbability: config.masking.probability,
        replaceWithMask: config.masking.mask,
        replaceWithRandom: config.masking.random,
      },
      rank,
      worldSize,
    });

    const modelConfig = await pretrainModelConfig(config, tokenizer);
    const model: NativeModel = new addon.Model(modelConfig);
    await model.seed((config.seed + rank) % 2 ** 32);
    // A resumed run reads every weight from its checkpoint: the init weights would be waste.
    if (config.model.init !== 'scratch' && !resume) {
      const loaded = await loadInit(model, config.model.init, config.objective);
      say(`model.init: ${config.model.init}: loaded ${loaded}`);
    }
    const generatorConfig =
      config.objective === 'electra' ? await generatorModelConfig(config, modelConfig) : null;
    const generator: NativeModel | null = generatorConfig ? new addon.Model(generatorConfig) : null;
    if (generator) {
      // Seeded after the encoder's draw, so the encoder is the masked-LM run's for the same seed.
      await generator.seed((config.seed + rank) % 2 ** 32);
      const source = generatorSource(config);
      if (source !== 'scratch' && !resume) {
        say(`generator: ${source}: loaded ${await loadInit(generator, source, 'mlm')}`);
      }
    }
    const trainerOptions = {
      weightDecay: config.optimizer.weightDecay,
      betas: config.optimizer.betas,
      eps: config.optimizer.eps,
      layerDecay: config.optimizer.layerDecay,
      clipNorm: config.clipNorm,
      autocast: config.dtype,
    };
    if (config.device !== 'cpu') await model.to(config.device, 'float32');
    if (generator && config.device !== 'cpu') await generator.to(config.device, 'float32');
    const trainer: NativeTrainer = new addon.Trainer(model, trainerOptions);
    const generatorTrainer: NativeTrainer | null = generator
      ? new addon.Trainer(generator, trainerOptions)
      : null;
    const count = (m: NativeModel): number =>
      m.parameterInfo().reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
    const s = modelConfig;
    const g = generatorConfig;
    say(
      `model: ${s.numHiddenLayers} layers × ${s.hiddenSize} hidden, ${s.numAttentionHeads} heads, ` +
        `${g ? 'replaced-token' : 'masked-LM'} head, ${(count(model) / 1e6).toFixed(2)}M ` +
        `parameters` +
        (g
          ? `; generator ${g.numHiddenLayers} layers × ${g.hiddenSize} hidden, ` +
            `${g.numAttentionHeads} heads, ${(count(generator!) / 1e6).toFixed(2)}M parameters`
          : '') +
        `; ${config.device}${config.dtype === 'float32' ? '' : ` (${config.dtype} autocast)`}, ` +
        `${threads} threads${worldSize > 1 ? ` × ${worldSize} workers` : ''}`,
    );

    let state: PretrainState | null = null;
    if (resume) {
      await group?.barrier();
      const file = path.join(lastDir, PRETRAIN_STATE_FILE);
      let raw: unknown;
      try {
        raw = JSON.parse(await readFile(file, 'utf8'));
      } catch (error) {
        throw new Error(`${file}: cannot read the pretraining state (${(error as Error).message})`);
      }
      state = parseState(raw, file, batcher);
      if (state.step > config.maxSteps) {
        throw new Error(
          `${lastDir}: the checkpoint is at step ${state.step}, past maxSteps ` +
            `(${config.maxSteps}): raise maxSteps to continue it`,
        );
      }
      const generatorDir = path.join(lastDir, GENERATOR_DIR);
      if (generator && !existsSync(path.join(generatorDir, WEIGHTS_FILE))) {
        throw new Error(
          `${lastDir}: no generator (${generatorDir}): the checkpoint is not an ELECTRA run's, ` +
            'and the config says objective "electra"',
        );
      }
      await model.loadWeights(path.join(lastDir, WEIGHTS_FILE));
      await trainer.loadState(path.join(lastDir, OPTIMIZER_FILE));
      if (generator) {
        const dir = generatorDir;
        await generator.loadWeights(path.join(dir, WEIGHTS_FILE));
        await generatorTrainer!.loadState(path.join(dir, OPTIMIZER_FILE));
      }
      if (state.nativeRng.length !== worldSize) {
        throw new Error(
          `${file}: written by a job of ${state.nativeRng.length} workers, this one has ` +
            `${worldSize}: resume with the same number of workers`,
        );
      }
      addon.setRngState(state.nativeRng[rank]);
    } else if (group) {
      await trainer.broadcastParameters(group);
      await generatorTrainer?.broadcastParameters(group);
    }

    const evalSet = main
      ? await buildEvalSet({
          files: config.text,
          from: split.evalFrom,
          tokenizer,
          guard,
          maxLength: config.maxLength,
          batchSize: config.batchSize,
          seed: config.seed,
          masking: batcher.config.masking,
        })
      : null;
    if (evalSet) {
      say(
        `held out: the last ${config.evalParagraphs} paragraphs of ${path.basename(lastFile)} → ` +
          `${evalSet.batches.length} batches, ${evalSet.stats.maskedPieces} masked pieces`,
      );
    }
    const schedule = new LinearSchedule(
      { peakLr: config.optimizer.lr, warmupSteps: config.warmupSteps, totalSteps: config.maxSteps },
      state?.schedule,
    );
    let step = state?.step ?? 0;
    let elapsed = state?.elapsedSeconds ?? 0;
    let dataState = state?.data ?? (await initialData(config, batcher, say));
    say(
      `plan: ${config.maxSteps} steps of ${config.batchSize} windows` +
        (worldSize > 1 ? ` × ${worldSize} workers` : '') +
        `, lr ${config.optimizer.lr} with ${config.warmupSteps} warmup steps` +
        (state ? `; resuming at step ${step}` : ''),
    );

    let progress: ProgressReporter | null = null;
    if (main) {
      metrics = await MetricsLog.open(output, { sync: options.metricsSync });
      metrics.append({
        type: 'start',
        step,
        resumed: state !== null,
        epoch: dataState.position.epoch,
        totalSteps: config.maxSteps,
        worldSize,
        config,
      });
      progress = new ProgressReporter({
        totalSteps: config.maxSteps,
        epochs: null,
        stream,
        logEvery: config.logEvery,
        tty: options.tty,
      });
    }

    const evaluations: PretrainResult['evaluations'] = [];
    const checkpoint = async (): Promise<void> => {
      // Collective: every rank's generator state goes into the checkpoint. Rank 0 evaluates and
      // writes; the others wait so that no step starts before the write.
      const nativeRng = group
        ? await allGatherStrings(group, addon.getRngState())
        : [addon.getRngState()];
      if (main) {
        let evaluation: NativeStepResult | null = null;
        let detection: NativeStepResult | null = null;
        // The share of judged pieces that the draws replaced: an encoder that calls every piece
        // original scores 1 − this, with a loss of its binary entropy.
        let replacedShare = 0;
        if (evalSet) {
          const started = performance.now();
          if (generatorTrainer) {
            // The draws come from LibTorch's generator, whose state the checkpoint already
            // holds: it is put back after, so a resumed run draws what this one will.
            const rng = addon.getRngState();
            evaluation = await generatorTrainer.evaluate(
              evalSet.batches.map((b) => nativeBatch(b, true)),
            );
            const samples = evaluation.mlmSamples ?? new Int32Array(0);
            let at = 0;
            const replaced = evalSet.batches.map((b) =>
              replacedBatch(b, samples.subarray(at, (at += b.maskedCount))),
            );
            detection = await trainer.evaluate(replaced.map(detectionBatch));
            const judged = replaced.reduce((n, r) => n + r.lengths.reduce((a, x) => a + x, 0), 0);
            replacedShare = replaced.reduce((n, r) => n + r.replaced, 0) / judged;
            addon.setRngState(rng);
          } else {
            evaluation = await trainer.evaluate(evalSet.batches.map((b) => nativeBatch(b)));
          }
          const seconds = (performance.now() - started) / 1000;
          const rtd = detection
            ? { rtdLoss: detection.rtdLoss, rtdAccuracy: detection.rtdAccuracy, replacedShare }
            : {};
          metrics!.append({
            type: 'mlm-eval',
            step,
            epoch: dataState.position.epoch,
            loss: evaluation.mlmLoss,
            mlmAccuracy: evaluation.mlmAccuracy,
            ...rtd,
            maskedPieces: evalSet.stats.maskedPieces,
            seconds,
          });
          evaluations.push({
            step,
            loss: evaluation.mlmLoss,
            mlmAccuracy: evaluation.mlmAccuracy,
            ...rtd,
          });
          const message =
            `held-out at step ${step}: ${generatorTrainer ? "generator's " : ''}masked-LM loss ` +
            `${evaluation.mlmLoss.toFixed(4)}, accuracy ${(100 * evaluation.mlmAccuracy).toFixed(2)}%` +
            (detection
              ? `; replaced-token loss ${detection.rtdLoss.toFixed(4)}, accuracy ` +
                `${(100 * detection.rtdAccuracy).toFixed(2)}% (${(100 * replacedShare).toFixed(2)}% ` +
                'replaced)'
              : '') +
            ` (${seconds.toFixed(1)} s)`;
          if (progress) progress.log(message);
          else say(message);
        }
        const started = performance.now();
        const saved: PretrainState = {
          format: STATE_FORMAT,
          version: 1,
          step,
          schedule: schedule.state(),
          data: dataState,
          nativeRng,
          elapsedSeconds: elapsed,
        };
        await writeAtomicDir(lastDir, async (tmp) => {
          await writeModelFiles(tmp, model, modelConfig, config.tokenizer);
          await trainer.saveState(path.join(tmp, OPTIMIZER_FILE));
          await writeFile(path.join(tmp, PRETRAIN_STATE_FILE), JSON.stringify(saved) + '\n');
          await writeFile(path.join(tmp, CONFIG_FILE), JSON.stringify(config, null, 2) + '\n');
          if (generator) {
            const dir = path.join(tmp, GENERATOR_DIR);
            await mkdir(dir);
            await writeModelFiles(dir, generator, generatorConfig!, config.tokenizer);
            await generatorTrainer!.saveState(path.join(dir, OPTIMIZER_FILE));
          }
          if (evaluation) {
            const record = {
              step,
              mlmLoss: evaluation.mlmLoss,
              mlmAccuracy: evaluation.mlmAccuracy,
              ...(detection
                ? { rtdLoss: detection.rtdLoss, rtdAccuracy: detection.rtdAccuracy, replacedShare }
                : {}),
            };
            await writeFile(path.join(tmp, 'eval.json'), JSON.stringify(record, null, 2) + '\n');
          }
        });
        metrics!.append({
          type: 'checkpoint',
          step,
          which: 'last',
          seconds: (performance.now() - started) / 1000,
        });
      }
      await group?.barrier();
    };

    const runStep = async (batch: MaskedBatch, lr: number): Promise<PretrainStep> => {
      if (!generatorTrainer) {
        const r = await trainer.step([nativeBatch(batch)], lr, group);
        return { ...r, rtdLoss: 0, rtdAccuracy: 0 };
      }
      const generated = await generatorTrainer.step([nativeBatch(batch, true)], lr, group);
      const replaced = replacedBatch(batch, generated.mlmSamples ?? new Int32Array(0));
      const judged = await trainer.step([detectionBatch(replaced)], lr, group);
      return {
        mlmLoss: generated.mlmLoss,
        mlmAccuracy: generated.mlmAccuracy,
        rtdLoss: judged.rtdLoss,
        rtdAccuracy: judged.rtdAccuracy,
        gradNorm: judged.gradNorm,
        sentences: judged.sentences,
      };
    };
    // Sums since the last `train` event; `grad` is the last step's norm.
    const cleared = () => ({
      loss: 0,
      accuracy: 0,
      rtdLoss: 0,
      rtdAccuracy: 0,
      steps: 0,
      windows: 0,
      tokens: 0,
      seconds: 0,
      grad: 0,
    });
    const since = cleared();
    const batches = batcher.batches(dataState)[Symbol.asyncIterator]();
    progress?.start();
    let reason: PretrainResult['reason'] = 'completed';
    while (step < config.maxSteps) {
      const next = await batches.next();
      if (next.done)
        throw new Error('the text ended before maxSteps (the stream repeats it: internal)');
      const batch = next.value;
      const lr = schedule.lr();
      const started = performance.now();
      const result = await runStep(batch, lr);
      const seconds = (performance.now() - started) / 1000;
      schedule.advance();
      step++;
      elapsed += seconds;
      dataState = batch.next;
      const tokens = batch.lengths.reduce((a, n) => a + n, 0) * worldSize;
      progress?.update({
        step,
        epoch: batch.epoch,
        loss: result.mlmLoss + result.rtdLoss,
        sentences: result.sentences,
        lr,
      });
      Object.assign(since, {
        loss: since.loss + result.mlmLoss,
        accuracy: since.accuracy + result.mlmAccuracy,
        rtdLoss: since.rtdLoss + result.rtdLoss,
        rtdAccuracy: since.rtdAccuracy + result.rtdAccuracy,
        steps: since.steps + 1,
        windows: since.windows + result.sentences,
        tokens: since.tokens + tokens,
        seconds: since.seconds + seconds,
        grad: result.gradNorm,
      });
      if (metrics && (step % config.logEvery === 0 || step === config.maxSteps)) {
        metrics.append({
          type: 'train',
          step,
          epoch: batch.epoch,
          loss: since.loss / since.steps,
          mlmAccuracy: since.accuracy / since.steps,
          ...(generatorTrainer
            ? { rtdLoss: since.rtdLoss / since.steps, rtdAccuracy: since.rtdAccuracy / since.steps }
            : {}),
          lr,
          gradNorm: since.grad,
          sentencesPerSecond: since.windows / Math.max(since.seconds, 1e-9),
          tokensPerSecond: since.tokens / Math.max(since.seconds, 1e-9),
          elapsedSeconds: elapsed,
        });
        Object.assign(since, cleared());
      }
      const stopping = stopAfter !== null && step >= stopAfter && step < config.maxSteps;
      if (step % config.evalEvery === 0 || step === config.maxSteps || stopping) {
        await checkpoint();
      }
      if (stopping) {
        reason = 'stopped';
        break;
      }
    }
    await batches.return?.(undefined);
    progress?.finish();
    if (main) {
      if (reason === 'completed') {
        metrics!.append({ type: 'end', step, reason: 'max-steps', elapsedSeconds: elapsed });
      }
      out(
        reason === 'stopped'
          ? `stopped after step ${step} of ${config.maxSteps}; continue with --resume`
          : `finished after ${step} steps, ${formatDuration(elapsed)} of training; the encoder ` +
              `is ${lastDir} (use it as model.init in train.json)`,
      );
    }
    return { output, step, totalSteps: config.maxSteps, reason, evaluations };
  } finally {
    metrics?.close();
    if (group) await group.destroy().catch(() => undefined);
  }
}
