/**
 * `koner pretrain --config pretrain.json`: validates the config (every problem, each naming its
 * field), then pretrains in this process — or, with `--nproc N`, launches this machine's workers,
 * each re-running the same command with the job in its environment (as `koner train`).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { loadPretrainConfig, type PretrainConfig } from '../pretrain/config.js';
import { pretrain } from '../pretrain/pretrainer.js';
import { checkTextFiles } from '../pretrain/text-stream.js';
import { TrainConfigError } from '../train/config.js';
import { releaseLargeAllocations } from '../runtime.js';
import { exitWithLauncher, readDistEnv } from '../train/dist-env.js';
import { launch, parseLaunchArgs, WorkerFailedError } from '../train/launch.js';
import { positiveInteger, TRAINING_MMAP_THRESHOLD, UsageError } from './train.js';

export const pretrainUsage = `usage: koner pretrain --config <pretrain.json> [options]

Pretrains a BERT encoder on raw text (gzip files, one paragraph per line) with whole-word masked
language modelling, writing <output>/last (a model directory that koner train takes as
model.init, with optimizer and stream state), metrics.jsonl, and held-out masked-LM loss and
accuracy every evalEvery steps.

options:
  --config <file>        the pretraining config (required; see configs/pretrain-*.json)
  --resume               continue the run in <output> from <output>/last
  --output <dir>         output directory (overrides "output")
  --max-steps <n>        run length in optimizer steps (overrides "maxSteps")
  --stop-after <n>       stop after step n, saving last/, to finish later with --resume
data parallel: --nproc <n>, --nnodes, --node-rank, --master-addr, --master-port (as koner train)`;

interface PretrainFlags {
  config: string;
  resume: boolean;
  output?: string;
  maxSteps?: string;
  stopAfter?: string;
}

function parseFlags(argv: string[]): PretrainFlags | 'help' {
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
  if (values.config === undefined) throw new UsageError('--config <pretrain.json> is required');
  return {
    config: values.config,
    resume: values.resume ?? false,
    output: values.output,
    maxSteps: values['max-steps'],
    stopAfter: values['stop-after'],
  };
}

/** Reads the config with the command-line overrides, and checks its paths before any work. */
async function loadConfig(flags: PretrainFlags): Promise<PretrainConfig> {
  const config = await loadPretrainConfig(flags.config, (r) => {
    if (flags.output !== undefined) r.output = path.resolve(flags.output);
    if (flags.maxSteps !== undefined) r.maxSteps = positiveInteger(flags.maxSteps, '--max-steps');
  });
  await checkTextFiles(config.text);
  const output = await stat(config.output).catch(() => null);
  if (output && !output.isDirectory()) {
    throw new TrainConfigError(flags.config, [
      { field: 'output', problem: `${config.output} exists and is not a directory` },
    ]);
  }
  return config;
}

/** Runs `koner pretrain`; returns the exit code (2 for usage and config errors, 1 for failures). */
export async function pretrainCommand(argv: string[]): Promise<number> {
  let flags: PretrainFlags | 'help';
  let launchFlags: ReturnType<typeof parseLaunchArgs>['flags'];
  let rest: string[];
  try {
    ({ flags: launchFlags, rest } = parseLaunchArgs(argv));
    flags = parseFlags(rest);
  } catch (error) {
    console.error(`koner pretrain: ${(error as Error).message}\n\n${pretrainUsage}`);
    return 2;
  }
  if (flags === 'help') {
    console.log(pretrainUsage);
    return 0;
  }
  let config: PretrainConfig;
  let stopAfter: number | null = null;
  try {
    config = await loadConfig(flags);
    if (flags.stopAfter !== undefined) stopAfter = positiveInteger(flags.stopAfter, '--stop-after');
  } catch (error) {
    console.error(`koner pretrain: ${(error as Error).message}`);
    return error instanceof TrainConfigError || error instanceof UsageError ? 2 : 1;
  }
  const dist = readDistEnv();
  if (dist === null && launchFlags && (launchFlags.nproc > 1 || launchFlags.nnodes > 1)) {
    try {
      await launch({ flags: launchFlags, module: process.argv[1], args: ['pretrain', ...rest] });
      return 0;
    } catch (error) {
      console.error((error as Error).message);
      return error instanceof WorkerFailedError && error.code ? error.code : 1;
    }
  }
  if (dist) exitWithLauncher(dist);
  // This command owns its process: freed activations go back to the system (see runtime.ts).
  releaseLargeAllocations(TRAINING_MMAP_THRESHOLD);
  await pretrain({ config, resume: flags.resume, stopAfter, dist });
  return 0;
}
