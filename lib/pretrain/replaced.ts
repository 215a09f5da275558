/**
 * ELECTRA's second half (Clark et al., 2020): the generator's draws put back into the window,
 * and the discriminator's targets. The generator is a small masked LM; at every masked position
 * it proposes a piece, sampled from its distribution. The discriminator reads the original window
 * with those proposals in it and learns, at every piece, whether it is original or replaced: a
 * proposal that happens to be the original piece counts as original.
 *
 * @packageDocumentation
 */
import type { MaskedBatch } from './examples.js';
import { IGNORE_LABEL } from './masking.js';

/** The discriminator's batch: ids with the draws in place, and a target per piece. */
export interface ReplacedBatch {
  /** `B × T` ids: the original window, a draw at each masked position; padding as before. */
  ids: Int32Array;
  /** `B × T`: 1 replaced, 0 original, {@link NOT_JUDGED} past each row's length. */
  labels: Int32Array;
  shape: [number, number];
  lengths: Int32Array;
  /** Pieces whose draw differs from the original. */
  replaced: number;
}

/** The target of a padding position. */
export const NOT_JUDGED = -1;

/**
 * Puts `samples` (one per masked position of `batch`, in row-major order, as the native step
 * returns them) into the original windows.
 *
 * @throws RangeError when there are not exactly as many samples as masked positions.
 */
export function replacedBatch(batch: MaskedBatch, samples: Int32Array): ReplacedBatch {
  const [rows, width] = batch.shape;
  if (samples.length !== batch.maskedCount) {
    throw new RangeError(
      `samples: ${samples.length} draws for ${batch.maskedCount} masked positions`,
    );
  }
  const ids = new Int32Array(batch.ids);
  const labels = new Int32Array(rows * width).fill(NOT_JUDGED);
  let next = 0;
  let replaced = 0;
  for (let b = 0; b < rows; b++) {
    for (let t = 0; t < batch.lengths[b]; t++) {
      const i = b * width + t;
      const original = batch.labels[i];
      if (original === IGNORE_LABEL) {
        labels[i] = 0;
        continue;
      }
      ids[i] = samples[next++];
      labels[i] = ids[i] === original ? 0 : 1;
      replaced += labels[i];
    }
  }
  if (next !== samples.length) {
    throw new RangeError(
      `samples: ${samples.length - next} masked positions lie past their row's length`,
    );
  }
  return { ids, labels, shape: [rows, width], lengths: batch.lengths, replaced };
}
