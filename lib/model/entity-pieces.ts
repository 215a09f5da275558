/**
 * The pieces of each entity (`withProbabilities: true`): every piece whose offsets overlap the
 * entity's span, with its tag and the posterior probability of that tag.
 */
import type { NerEntity, NerEntityWithPieces } from './ner-model.js';

/**
 * Adds `pieces` to each entity. Piece offsets are in text order (the tokenizer's pieces never go
 * back), so the first piece of an entity is found by binary search and the work is the output's
 * size plus a logarithm per entity, however long the text.
 */
export function attachPieces(
  entities: readonly NerEntity[],
  pieces: readonly string[],
  offsets: readonly (readonly [number, number])[],
  tags: readonly string[],
  probabilities: ArrayLike<number>,
): NerEntityWithPieces[] {
  return entities.map((entity) => {
    const out: NerEntityWithPieces = { ...entity, pieces: [] };
    // The first piece that ends after the entity starts.
    let lo = 0;
    let hi = offsets.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (offsets[mid][1] > entity.start) hi = mid;
      else lo = mid + 1;
    }
    for (let p = lo; p < offsets.length; p++) {
      const [start, end] = offsets[p];
      if (start >= entity.end) break;
      if (end > entity.start) {
        out.pieces.push({
          piece: pieces[p],
          start,
          end,
          tag: tags[p],
          probability: probabilities[p],
        });
      }
    }
    return out;
  });
}
