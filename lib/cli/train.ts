/**
 * `koner train --config train.json`: validates the config (every problem, each naming its field,
 * before anything starts or is written), then trains in this process — or, with `--nproc N`
 * (or `--nnodes M`), launches this machine's workers, each re-running the same command with the
 * job in its environment.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';

import {
  checkTrainConfigPaths,
  loadTrainConfig,
  TrainConfigError,
  type TrainConfig,
} from '../train/config.js';
import { releaseLargeAllocations } from '../runtime.js';
import { exitWithLauncher, readDistEnv } from '../train/dist-env.js';
import { launch, parseLaunchArgs, WorkerFailedError } from '../train/launch.js';
import { train } from '../train/trainer.js';

export const trainUsage = `usage: koner train --config <train.json> [options]

Trains a NER model as train.json says (see configs/ for recipes), writing <output>/best and
<output>/last (complete model directories with optimizer and training state), metrics.jsonl,
curves.svg and confusion.svg.

options:
  --config <file>        the training config (required)
  --resume               continue the run in <output> from <output>/last
  --output <dir>         output directory (overrides "output")
  --max-steps <n>        run length in optimizer steps (overrides "maxSteps")
  --stop-after <n>       stop after step n, saving last/, to finish later with --resume
data parallel (as torchrun names them):
  --nproc <n>            worker processes on this machine (alias --nproc-per-node)
  --nnodes <m>           machines in the job (default 1)
  --node-rank <r>        this machine's index (default 0)
  --master-addr <a>      address of node 0 (default 127.0.0.1; required with --nnodes > 1)
  --master-port <p>      its port (default: a free one on one machine, 29500 across machines)`;

/** The flags besides the launch flags. */
interface TrainFlags {
  config: string;
  resume: boolean;
  output?: string;
  maxSteps?: string;
  stopAfter?: string;
}

/** A flag's value as a positive integer; UsageError otherwise. */
export function positiveInteger(value: string, flag: string): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`${flag} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** The training commands' threshold of `releaseLargeAllocations`: 1 MiB. */
export const TRAINING_MMAP_THRESHOLD = 1 << 20;

/** A bad command line: the command prints its usage and exits 2. */
export class UsageError extends Error {}

/**
 * Reads and validates the config with the command-line overrides applied to the JSON before
 * validation, so an override is checked like the field it replaces.
 *
 * @throws TrainConfigError naming every bad field; Error when the file cannot be read.
 */
export async function loadConfigWithOverrides(flags: TrainFlags): Promise<TrainConfig> {
  const file = flags.config;
  const config = await loadTrainConfig(file, {
    edit: (r) => {
      // A path typed on the command line is relative to where it was typed, not to the config.
      if (flags.output !== undefined) r.output = path.resolve(flags.output);
      if (flags.maxSteps !== undefined) r.maxSteps = positiveInteger(flags.maxSteps, '--max-steps');
    },
  });
  await checkTrainConfigPaths(config, file);
  return config;
}

function parseTrainFlags(argv: string[]): TrainFlags | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      resume: { type: 'boolean' },
      output: { type: 'string' },
      'max-steps': { type: 'string' },
      'stop-after': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  }
  if (values.config === undefined) throw new UsageError('--config <train.json> is required');
  return {
    config: values.config,
    resume: values.resume ?? false,
    output: values.output,
    maxSteps: values['max-steps'],
    stopAfter: values['stop-after'],
  };
}

/** Runs `koner train`; returns the exit code (2 for usage and config errors, 1 for failures). */
export async function trainCommand(argv: string[]): Promise<number> {
  let flags: TrainFlags | 'help';
  let launchFlags: ReturnType<typeof parseLaunchArgs>['flags'];
  let rest: string[];
  try {
    ({ flags: launchFlags, rest } = parseLaunchArgs(argv));
    flags = parseTrainFlags(rest);
  } catch (error) {
    console.error(`koner train: ${(error as Error).message}\n\n${trainUsage}`);
    return 2;
  }
  if (flags === 'help') {
    console.log(trainUsage);
    return 0;
  }
  let config: TrainConfig;
  let stopAfter: number | null = null;
  try {
    config = await loadConfigWithOverrides(flags);
    if (flags.stopAfter !== undefined) stopAfter = positiveInteger(flags.stopAfter, '--stop-after');
  } catch (error) {
    console.error(`koner train: ${(error as Error).message}`);
    return error instanceof TrainConfigError || error instanceof UsageError ? 2 : 1;
  }

  const dist = readDistEnv();
  if (dist === null && launchFlags && (launchFlags.nproc > 1 || launchFlags.nnodes > 1)) {
    // The launcher: workers re-run this command (without the launch flags) as ranks of the job.
    try {
      await launch({ flags: launchFlags, module: process.argv[1], args: ['train', ...rest] });
      return 0;
    } catch (error) {
      console.error((error as Error).message);
      return error instanceof WorkerFailedError && error.code ? error.code : 1;
    }
  }
  if (dist) exitWithLauncher(dist);
  // This command owns its process: freed activations go back to the system (see runtime.ts).
  releaseLargeAllocations(TRAINING_MMAP_THRESHOLD);
  await train({ config, resume: flags.resume, stopAfter, dist });
  return 0;
}
