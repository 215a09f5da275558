/** The flags of every command that runs a model (`--model`, `--device`, `--threads`), once. */
import { defaultModelDir } from '../model/default-model.js';
import { NerModel } from '../model/ner-model.js';
import { optionalIntegerFlag } from './args.js';

/** `util.parseArgs` options for the three flags. */
export const MODEL_OPTIONS = {
  model: { type: 'string' },
  device: { type: 'string' },
  threads: { type: 'string' },
} as const;

/** The three flags' lines for a command's usage. */
export const MODEL_USAGE = `  --model <dir>         model directory (default: the bundled models/kmou-small)
  --device <d>          cpu (default), cuda, cuda:N
  --threads <n>         LibTorch threads (default: the available cores)`;

/** The parsed flags: the model directory as given (or the bundled one) and the load options. */
export function modelFlags(values: { model?: string; device?: string; threads?: string }) {
  return {
    dir: values.model ?? defaultModelDir(),
    device: values.device,
    threads: optionalIntegerFlag(values.threads, '--threads', undefined, 1),
  };
}

/** Loads the model the flags name. */
export function loadModel(flags: ReturnType<typeof modelFlags>): Promise<NerModel> {
  return NerModel.load(flags.dir, { device: flags.device, threads: flags.threads });
}
