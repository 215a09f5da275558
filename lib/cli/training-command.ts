/**
 * The shape `koner train` and `koner pretrain` share: `--config` with the overrides `--output`
 * and `--max-steps` (checked as the fields they replace), `--resume`, `--stop-after`, and the
 * data-parallel launch flags. Without `--nproc`/`--nnodes` the run happens in this process; with
 * them this process launches the machine's workers, each re-running the same command with the
 * job in its environment.
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { setTensorCacheLimit } from '../runtime.js';
import { TrainConfigError } from '../train/config.js';
import { exitWithLauncher, readDistEnv, type DistEnv } from '../train/dist-env.js';
import { launch, parseLaunchArgs, WorkerFailedError } from '../train/launch.js';
import { CommandError, integerFlag, noPositionals, UsageError, type CliCommand } from './args.js';

/**
 * The tensor cache the training commands keep (`setTensorCacheLimit`): a quarter of the machine's
 * memory. A step's blocks then wait for the next step, however the batch shapes vary (4 × 256
 * pretraining settles at about 1.2 GB, fine-tuning at 1.5 GB).
 */
export function trainingTensorCache(): number {
  return Math.floor(os.totalmem() / 4);
}

/** The command-line overrides of the config, to apply to its JSON before validation. */
export interface ConfigOverrides {
  output?: string;
  maxSteps?: number;
}

export interface TrainingCommandSpec<C> {
  name: string;
  summary: string;
  usage: string;
  /** Reads and validates the config (TrainConfigError naming its fields), overrides applied. */
  load(file: string, overrides: ConfigOverrides): Promise<C>;
  /** Runs in this process (one rank of the job when `dist` is set). */
  run(options: {
    config: C;
    resume: boolean;
    stopAfter: number | null;
    dist: DistEnv | null;
  }): Promise<unknown>;
}

/** Applies the overrides to a config's raw JSON (a typed path is relative to where it was typed). */
export function applyOverrides(raw: Record<string, unknown>, overrides: ConfigOverrides): void {
  if (overrides.output !== undefined) raw.output = path.resolve(overrides.output);
  if (overrides.maxSteps !== undefined) raw.maxSteps = overrides.maxSteps;
}

export function trainingCommand<C>(spec: TrainingCommandSpec<C>): CliCommand {
  return {
    name: spec.name,
    summary: spec.summary,
    usage: spec.usage,
    async run(argv) {
      let parsed: ReturnType<typeof parseLaunchArgs>;
      try {
        parsed = parseLaunchArgs(argv);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      const { values, positionals } = parseArgs({
        args: parsed.rest,
        allowPositionals: true,
        options: {
          config: { type: 'string' },
          resume: { type: 'boolean' },
          output: { type: 'string' },
          'max-steps': { type: 'string' },
          'stop-after': { type: 'string' },
        },
      });
      noPositionals(positionals);
      if (values.config === undefined) throw new UsageError('--config <file> is required');
      const maxSteps = values['max-steps'];
      const stop = values['stop-after'];
      const overrides: ConfigOverrides = {
        output: values.output,
        maxSteps: maxSteps === undefined ? undefined : integerFlag(maxSteps, '--max-steps', 1),
      };
      const stopAfter = stop === undefined ? null : integerFlag(stop, '--stop-after', 1);
      let config: C;
      try {
        config = await spec.load(values.config, overrides);
      } catch (error) {
        if (error instanceof TrainConfigError) throw new CommandError(error.message, 2);
        throw error;
      }

      const dist = readDistEnv();
      const flags = parsed.flags;
      if (dist === null && flags && (flags.nproc > 1 || flags.nnodes > 1)) {
        try {
          await launch({ flags, module: process.argv[1], args: [spec.name, ...parsed.rest] });
          return 0;
        } catch (error) {
          const code = error instanceof WorkerFailedError && error.code ? error.code : 1;
          throw new CommandError((error as Error).message, code);
        }
      }
      if (dist) exitWithLauncher(dist);
      // This command owns its process: it may keep a whole step's activations for the next step.
      setTensorCacheLimit(trainingTensorCache());
      await spec.run({ config, resume: values.resume ?? false, stopAfter, dist });
      return 0;
    },
  };
}
