/**
 * Whole-word masking for masked-LM pretraining, BERT's recipe with words instead of pieces: a
 * word (eojeol: a piece starting with `▁` and the pieces after it up to the next `▁`) is chosen
 * or not as a whole, so the model cannot guess a masked piece from the unmasked rest of its word
 * (`▁대한` + `[MASK]` → `민국`) and has to use the sentence.
 *
 * @packageDocumentation
 */
import type { SpecialIds } from '../tokenizer/index.js';
import type { Rng } from '../train/rng.js';

/** How many pieces are chosen, and what a chosen word becomes. */
export interface MaskingOptions {
  /** Share of a window's pieces to choose for prediction (BERT: 0.15). */
  maskProbability: number;
  /** Share of chosen words whose pieces all become `[MASK]` (BERT: 0.8). */
  replaceWithMask: number;
  /**
   * Share of chosen words whose pieces become random normal pieces (BERT: 0.1); the rest
   * (`1 − replaceWithMask − replaceWithRandom`) keep their pieces but are still predicted.
   */
  replaceWithRandom: number;
}

/** BERT's masking: 15% of pieces, of which 80% `[MASK]`, 10% random, 10% kept. */
export const BERT_MASKING: Readonly<MaskingOptions> = Object.freeze({
  maskProbability: 0.15,
  replaceWithMask: 0.8,
  replaceWithRandom: 0.1,
});

/** The label of a position that is not predicted (PyTorch's `ignore_index` convention). */
export const IGNORE_LABEL = -1;

/** One masked window, `[CLS] pieces [SEP]`. */
export interface MaskedWindow {
  /** Model input: `[CLS]`, the pieces with chosen words replaced, `[SEP]`. */
  ids: Int32Array;
  /** Same length: the original id at chosen positions, {@link IGNORE_LABEL} elsewhere. */
  labels: Int32Array;
  /** Chosen positions (labels that are not {@link IGNORE_LABEL}). */
  masked: number;
}

/** Whether a piece starts a word: SentencePiece marks a preceding space with `▁`. */
export function startsWord(piece: string): boolean {
  return piece.charCodeAt(0) === 0x2581;
}

/**
 * Masks windows of one vocabulary. Build one per run; {@link mask} draws every random choice from
 * the `Rng` it is given, so the same generator state always masks a window the same way.
 */
export class WholeWordMasker {
  private readonly special: SpecialIds;
  private readonly options: MaskingOptions;
  /** Special ids, sorted and distinct: the ids a random replacement must skip. */
  private readonly skipped: number[];
  /** How many ids a random replacement draws from. */
  private readonly normalCount: number;
  // Scratch, reused across windows.
  private wordStarts = new Int32Array(64);
  private order = new Int32Array(64);

  /**
   * @param special the tokenizer's special ids (`tokenizer.specialIds`).
   * @param vocabSize the number of ids (`tokenizer.vocabSize`).
   * @throws RangeError for shares outside [0, 1] (or masking + random over 1), or a vocabulary
   *   without normal ids or whose special ids are out of range.
   */
  constructor(special: SpecialIds, vocabSize: number, options: MaskingOptions = BERT_MASKING) {
    const { maskProbability, replaceWithMask, replaceWithRandom } = options;
    const share = (x: number, name: string): void => {
      if (typeof x !== 'number' || !(x >= 0 && x <= 1)) {
        throw new RangeError(`${name} must be a number in [0, 1], got ${x}`);
      }
    };
    share(maskProbability, 'maskProbability');
    share(replaceWithMask, 'replaceWithMask');
    share(replaceWithRandom, 'replaceWithRandom');
    if (maskProbability === 0) throw new RangeError('maskProbability must be above 0');
    if (replaceWithMask + replaceWithRandom > 1 + 1e-12) {
      throw new RangeError(
        `replaceWithMask + replaceWithRandom must be ≤ 1, got ${replaceWithMask + replaceWithRandom}`,
      );
    }
    if (!Number.isInteger(vocabSize) || vocabSize < 1) {
      throw new RangeError(`vocabSize must be a positive integer, got ${vocabSize}`);
    }
    const ids = [special.unk, special.pad, special.cls, special.sep, special.mask];
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new RangeError(`special id ${id} is not in 0..${vocabSize - 1}`);
      }
    }
    this.special = special;
    this.options = { maskProbability, replaceWithMask, replaceWithRandom };
    // Derived, not assumed: KoBERT's specials are 0..4, another vocabulary may place them anywhere.
    this.skipped = [...new Set(ids)].sort((a, b) => a - b);
    this.normalCount = vocabSize - this.skipped.length;
    if (this.normalCount < 1) throw new RangeError('the vocabulary has no normal (non-special) id');
  }

  /** A uniformly drawn id that is not a special id. */
  randomNormalId(rng: Rng): number {
    let id = rng.nextInt(this.normalCount);
    // Map 0..normalCount-1 onto the ids in order, stepping over each special id at or below it.
    for (const s of this.skipped) if (id >= s) id++;
    return id;
  }

  /**
   * Masks one window of pieces (no `[CLS]`/`[SEP]`; see the module comment for words).
   *
   * Words are visited in a random order (a lazy Fisher–Yates shuffle) and taken whole while the
   * chosen pieces stay within `round(n × maskProbability)` (at least 1); a word that would exceed
   * it is passed over, as in BERT's `create_pretraining_data.py`. When no word fits (one long
   * word), the first word visited is taken anyway: every window of ≥ 1 piece trains something.
   * Each chosen word is then, as a whole, `[MASK]`ed, replaced by random normal ids (never a
   * special id), or kept, with the configured shares.
   *
   * @param ids the pieces' ids. @param pieces the piece strings (parallel to `ids`).
   * @throws RangeError when `ids` and `pieces` differ in length.
   */
  mask(ids: Int32Array, pieces: readonly string[], rng: Rng): MaskedWindow {
    const n = ids.length;
    if (pieces.length !== n) {
      throw new RangeError(`${n} ids but ${pieces.length} pieces`);
    }
    const out = new Int32Array(n + 2);
    const labels = new Int32Array(n + 2).fill(IGNORE_LABEL);
    out[0] = this.special.cls;
    out.set(ids, 1);
    out[n + 1] = this.special.sep;
    if (n === 0) return { ids: out, labels, masked: 0 };

    // Word starts; the window's first piece starts a word even without `▁` (a cut mid-word). A
    // lone `▁` piece starts a word whose other pieces follow it.
    if (this.wordStarts.length < n + 1) {
      this.wordStarts = new Int32Array(2 * n + 1);
      this.order = new Int32Array(2 * n + 1);
    }
    const starts = this.wordStarts;
    let words = 0;
    for (let i = 0; i < n; i++) if (i === 0 || startsWord(pieces[i])) starts[words++] = i;
    starts[words] = n;

    const order = this.order;
    for (let w = 0; w < words; w++) order[w] = w;
    const budget = Math.max(1, Math.round(n * this.options.maskProbability));
    let chosen = 0;
    for (let k = 0; k < words && chosen < budget; k++) {
      const j = k + rng.nextInt(words - k);
      const w = order[j];
      order[j] = order[k];
      order[k] = w;
      const size = starts[w + 1] - starts[w];
      if (chosen + size > budget) continue;
      this.replace(out, labels, ids, starts[w], starts[w + 1], rng);
      chosen += size;
    }
    if (chosen === 0) {
      // Every word was longer than the budget: take the first one visited.
      const w = order[0];
      this.replace(out, labels, ids, starts[w], starts[w + 1], rng);
      chosen = starts[w + 1] - starts[w];
    }
    return { ids: out, labels, masked: chosen };
  }

  /** Chooses pieces `[start, end)` (one word) and replaces them in `out` (offset by [CLS]). */
  private replace(
    out: Int32Array,
    labels: Int32Array,
    ids: Int32Array,
    start: number,
    end: number,
    rng: Rng,
  ): void {
    const r = rng.nextFloat();
    const { replaceWithMask, replaceWithRandom } = this.options;
    for (let i = start; i < end; i++) {
      labels[i + 1] = ids[i];
      if (r < replaceWithMask) out[i + 1] = this.special.mask;
      else if (r < replaceWithMask + replaceWithRandom) out[i + 1] = this.randomNormalId(rng);
    }
  }
}
