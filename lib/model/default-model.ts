/**
 * The model that ships with koner: trained by `configs/kmou-small.json` on the KMOU training set
 * (4 layers × 256, CRF head, float16 weights; scores in README and models/kmou-small/eval.json).
 */
import path from 'node:path';

import { packageRoot } from '../native.js';

/** The directory of the default model (`models/kmou-small` in the package). */
export function defaultModelDir(): string {
  return path.join(packageRoot, 'models', 'kmou-small');
}
