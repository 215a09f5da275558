/**
 * `koner pretrain --config pretrain.json`: validates the config (every problem, each naming its
 * field), then pretrains in this process — or, with `--nproc N`, launches this machine's workers,
 * each re-running the same command with the job in its environment (as `koner train`).
 */
import { stat } from 'node:fs/promises';

import { loadPretrainConfig } from '../pretrain/config.js';
import { pretrain } from '../pretrain/pretrainer.js';
import { checkTextFiles } from '../pretrain/text-stream.js';
import { TrainConfigError } from '../train/config.js';
import { applyOverrides, trainingCommand } from './training-command.js';

export const pretrainUsage = `usage: koner pretrain --config <pretrain.json> [options]

Pretrains a BERT encoder on raw text (gzip files, one paragraph per line) with whole-word masked
language modelling, or with ELECTRA's replaced-token detection ("objective": "electra"), writing
<output>/last (a model directory that koner train takes as model.init, with optimizer and stream
state, and for ELECTRA the generator in last/generator), metrics.jsonl, and held-out losses and
accuracies every evalEvery steps.

options:
  --config <file>        the pretraining config (required; see configs/pretrain-*.json)
  --resume               continue the run in <output> from <output>/last
  --output <dir>         output directory (overrides "output")
  --max-steps <n>        run length in optimizer steps (overrides "maxSteps")
  --stop-after <n>       stop after step n, saving last/, to finish later with --resume
data parallel: --nproc <n>, --nnodes, --node-rank, --master-addr, --master-port (as koner train)`;

export const pretrainCommand = trainingCommand({
  name: 'pretrain',
  summary: 'an encoder on raw text, masked-LM (koner pretrain --help)',
  usage: pretrainUsage,
  /** Reads the config with the command-line overrides, and checks its paths before any work. */
  async load(file, overrides) {
    const config = await loadPretrainConfig(file, (raw) => applyOverrides(raw, overrides));
    await checkTextFiles(config.text);
    const output = await stat(config.output).catch(() => null);
    if (output && !output.isDirectory()) {
      throw new TrainConfigError(file, [
        { field: 'output', problem: `${config.output} exists and is not a directory` },
      ]);
    }
    return config;
  },
  run: pretrain,
});
