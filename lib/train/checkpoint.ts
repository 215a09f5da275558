/**
 * A run's checkpoint directory (`<output>/best`, `<output>/last`): a complete model directory —
 * `config.json`, `model.safetensors` and the tokenizer files it names (copied beside them as
 * `tokenizer.model` and `vocab.json`, so the directory can be moved or shipped alone) — plus
 * everything a resumed run needs:
 * `optimizer.safetensors` (AdamW moments and step counts), `trainer-state.json` (step, data
 * cursor, generator states, schedule, early stopping, best score, data fingerprint), in
 * data-parallel runs `rng-ranks.json` (every rank's LibTorch generator state), and, for the
 * record, `train.json` (the resolved config) and `eval.json` (the evaluation at that step).
 *
 * The whole directory is written through {@link writeAtomicDir}: a crash leaves either the
 * previous checkpoint or the new one, never a mix.
 *
 * @packageDocumentation
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { writeModelConfig, type ModelConfig, WEIGHTS_FILE } from '../model/config.js';
import { copyTokenizerFiles } from '../model/tokenizer-files.js';
import type { NativeDistGroup, NativeModel, NativeTrainer } from '../native.js';
import {
  readTrainerState,
  trainerStateToJson,
  TRAINER_STATE_FILE,
  writeAtomicDir,
  type TrainerState,
} from './checkpoint-files.js';
import type { TokenizerFiles } from './config.js';

/** AdamW's state inside a checkpoint. */
export const OPTIMIZER_FILE = 'optimizer.safetensors';
/** Every rank's native generator state (data-parallel runs). */
export const RANK_RNG_FILE = 'rng-ranks.json';
/** The evaluation at the checkpoint's step. */
export const EVAL_FILE = 'eval.json';
/** The resolved training config. */
export const TRAIN_CONFIG_FILE = 'train.json';

/** What goes into a checkpoint. */
export interface CheckpointContents {
  model: NativeModel;
  trainer: NativeTrainer;
  /** The model's config; its `tokenizer` is replaced by the copied files' names. */
  modelConfig: ModelConfig;
  tokenizer: TokenizerFiles;
  state: TrainerState;
  /** Every rank's LibTorch generator state, by rank (data-parallel runs). */
  rankRng?: string[];
  evaluation?: Record<string, unknown>;
  trainConfig: Record<string, unknown>;
}

const json = (value: unknown): string => JSON.stringify(value, null, 2) + '\n';

/**
 * Writes a complete model directory into `dir`: `config.json` naming the tokenizer files,
 * copies of those files (`copyTokenizerFiles`), and `model.safetensors`.
 */
export async function writeModelFiles(
  dir: string,
  model: NativeModel,
  modelConfig: ModelConfig,
  tokenizer: TokenizerFiles,
): Promise<void> {
  const copied = await copyTokenizerFiles(dir, tokenizer);
  await writeModelConfig(dir, { ...modelConfig, tokenizer: copied });
  await model.saveWeights(path.join(dir, WEIGHTS_FILE));
}

/** Writes a checkpoint directory atomically (see the module comment). */
export async function writeCheckpoint(dir: string, c: CheckpointContents): Promise<void> {
  // Validate before anything is written: an invalid state must not replace a good checkpoint.
  const stateJson = trainerStateToJson(c.state);
  await writeAtomicDir(dir, async (tmp) => {
    await writeModelFiles(tmp, c.model, c.modelConfig, c.tokenizer);
    await c.trainer.saveState(path.join(tmp, OPTIMIZER_FILE));
    await writeFile(path.join(tmp, TRAINER_STATE_FILE), stateJson);
    if (c.rankRng) {
      await writeFile(
        path.join(tmp, RANK_RNG_FILE),
        json({ worldSize: c.rankRng.length, states: c.rankRng }),
      );
    }
    if (c.evaluation) await writeFile(path.join(tmp, EVAL_FILE), json(c.evaluation));
    await writeFile(path.join(tmp, TRAIN_CONFIG_FILE), json(c.trainConfig));
  });
}

/** A checkpoint read back for resuming. */
export interface ResumePoint {
  state: TrainerState;
  weights: string;
  optimizer: string;
  /** This rank's LibTorch generator state, when the checkpoint has one. */
  nativeRng?: string;
}

/**
 * Reads what a rank needs to resume from a checkpoint directory.
 *
 * @throws Error naming the file when the state is missing or invalid, or when a data-parallel
 *   checkpoint was written by a job of another size.
 */
export async function readResumePoint(
  dir: string,
  rank: number,
  worldSize: number,
): Promise<ResumePoint> {
  const state = await readTrainerState(dir);
  const point: ResumePoint = {
    state,
    weights: path.join(dir, WEIGHTS_FILE),
    optimizer: path.join(dir, OPTIMIZER_FILE),
  };
  if (worldSize === 1) {
    if (state.rng.native !== undefined) point.nativeRng = state.rng.native;
    return point;
  }
  const file = path.join(dir, RANK_RNG_FILE);
  let ranks: { worldSize?: unknown; states?: unknown };
  try {
    ranks = JSON.parse(await readFile(file, 'utf8')) as typeof ranks;
  } catch (error) {
    throw new Error(
      `${file}: cannot read the ranks' generator states (${(error as Error).message})`,
    );
  }
  if (
    ranks.worldSize !== worldSize ||
    !Array.isArray(ranks.states) ||
    ranks.states.length !== worldSize ||
    !ranks.states.every((s) => typeof s === 'string')
  ) {
    throw new Error(
      `${file}: written by a job of ${JSON.stringify(ranks.worldSize)} workers, this one has ` +
        `${worldSize}: resume with the same number of workers`,
    );
  }
  point.nativeRng = ranks.states[rank] as string;
  return point;
}

/**
 * Every rank's string, by rank, on every rank (a collective: all ranks must call it). The group
 * only all-reduces numbers, so each rank writes its character codes into its own slot of a
 * zero vector and a sum gathers them — exact, since every slot has one non-zero contributor.
 */
export async function allGatherStrings(group: NativeDistGroup, value: string): Promise<string[]> {
  const n = group.worldSize;
  const sizes = new Array<number>(n).fill(0);
  sizes[group.rank] = value.length;
  const lengths = await group.allreduceSum(sizes);
  const width = Math.max(...lengths);
  const codes = new Array<number>(n * width).fill(0);
  for (let i = 0; i < value.length; i++) codes[group.rank * width + i] = value.charCodeAt(i);
  const all = await group.allreduceSum(codes);
  return lengths.map((len, r) =>
    String.fromCharCode(...all.slice(r * width, r * width + len).map((c) => Math.round(c))),
  );
}
