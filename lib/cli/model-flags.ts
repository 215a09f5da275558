/**
 * The flags of every command that runs a model (`--model`, `--device`, `--dtype`, `--threads`),
 * once.
 */
import { defaultModelDir } from '../model/default-model.js';
import { NerModel } from '../model/ner-model.js';
import { ENCODER_DTYPES } from '../native.js';
import { choiceFlag, optionalIntegerFlag } from './args.js';

/** `util.parseArgs` options for the four flags. */
export const MODEL_OPTIONS = {
  model: { type: 'string' },
  device: { type: 'string' },
  dtype: { type: 'string' },
  threads: { type: 'string' },
} as const;

/** The four flags' lines for a command's usage. */
export const MODEL_USAGE = `  --model <dir>         model directory (default: the bundled models/kmou-small)
  --device <d>          cpu (default), cuda, cuda:N
  --dtype <t>           the encoder's precision: float32 (default, or the model's inference_dtype
                        where the CPU has it); bfloat16 (CUDA, or a CPU with AVX512_BF16 or
                        AMX-BF16); float16 (CUDA); int8 (CPU with AVX512_VNNI or AMX-INT8:
                        dynamic quantization of the products). The CRF stays float32
  --threads <n>         LibTorch threads (default: the available cores)`;

/** The parsed flags: the model directory as given (or the bundled one) and the load options. */
export function modelFlags(values: {
  model?: string;
  device?: string;
  dtype?: string;
  threads?: string;
}) {
  return {
    dir: values.model ?? defaultModelDir(),
    device: values.device,
    dtype:
      values.dtype === undefined ? undefined : choiceFlag(values.dtype, '--dtype', ENCODER_DTYPES),
    threads: optionalIntegerFlag(values.threads, '--threads', undefined, 1),
  };
}

/** Loads the model the flags name. */
export function loadModel(flags: ReturnType<typeof modelFlags>): Promise<NerModel> {
  return NerModel.load(flags.dir, {
    device: flags.device,
    dtype: flags.dtype,
    threads: flags.threads,
  });
}
