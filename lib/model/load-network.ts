/**
 * The native model of one network's directory (config.json and model.safetensors): what
 * `NerModel.load` builds for a model, and for each member of an ensemble.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

import { type EncoderDtype, native, type NativeModel } from '../native.js';
import { type ModelConfig, WEIGHTS_FILE } from './config.js';
import { checkConfigFitsWeights } from './weights-fit.js';

/** Where a loaded network runs; both absent: as it was built (CPU, float32). */
export interface NetworkPlacement {
  device?: string;
  dtype?: EncoderDtype;
}

/** Builds `config`'s network, reads `dir`'s weights into it and places it as asked. */
export async function loadNetwork(
  dir: string,
  config: ModelConfig,
  placement: NetworkPlacement = {},
): Promise<NativeModel> {
  const weights = path.join(dir, WEIGHTS_FILE);
  if (!existsSync(weights)) throw new Error(`${dir}: ${WEIGHTS_FILE} is missing`);
  // The sizes first, from the header alone: a config that its weights contradict must not
  // allocate the model it describes.
  const tensors = await native().inspectCheckpoint(weights);
  checkConfigFitsWeights(config, tensors, path.join(dir, 'config.json'), weights);
  const model = new (native().Model)(config);
  try {
    await model.loadWeights(weights);
    if (placement.device !== undefined || placement.dtype !== undefined) {
      await model.to(placement.device ?? 'cpu', placement.dtype ?? 'float32');
    }
  } catch (error) {
    await model.dispose();
    throw error;
  }
  return model;
}
