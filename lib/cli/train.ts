/**
 * `koner train --config train.json`: validates the config (every problem, each naming its field,
 * before anything starts or is written), then trains in this process — or, with `--nproc N`
 * (or `--nnodes M`), launches this machine's workers (lib/cli/training-command.ts).
 */
import { checkTrainConfigPaths, loadTrainConfig } from '../train/config.js';
import { train } from '../train/trainer.js';
import { applyOverrides, trainingCommand } from './training-command.js';

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

export const trainCommand = trainingCommand({
  name: 'train',
  summary: 'a model as a train.json says (koner train --help)',
  usage: trainUsage,
  async load(file, overrides) {
    const config = await loadTrainConfig(file, { edit: (raw) => applyOverrides(raw, overrides) });
    await checkTrainConfigPaths(config, file);
    return config;
  },
  run: train,
});
