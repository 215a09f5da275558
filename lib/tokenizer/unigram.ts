/**
 * SentencePiece's unigram segmentation: the optimized Viterbi of unigram_model.cc
 * (`Model::EncodeOptimized`, the default encoder), run over normalized UTF-8 bytes.
 *
 * Ties matter, so the arithmetic is the C++ one: a piece's score is a float widened to double
 * (user-defined pieces get the double `length * max_score - 0.1`), added in double to the float
 * best score of the path so far, compared against the float stored at the end position and stored
 * back rounded to float; the unknown-character candidate is a float + float sum. Candidates are
 * visited by start position, then by length, and only a strictly better one replaces the stored
 * best, so the first of equal-score segmentations wins, as in the reference.
 */
import { ByteTrie } from './byte-trie.js';
import { PieceType, type ModelPiece } from './model-proto.js';
import { oneCharLen } from './utf8.js';

const FLT_MAX = 3.4028234663852886e38;
const FLT_MIN = 1.1754943508222875e-38;
const UNK_PENALTY = 10;

/** Thrown when the model's pieces cannot form a unigram model. */
export class UnigramError extends Error {
  override name = 'UnigramError';
}

/** Unigram segmenter; one instance reuses its scratch buffers across calls. */
export class UnigramModel {
  /** SentencePiece id of the unknown piece. */
  readonly unkId: number;
  /** Number of pieces found by the last `encode`. */
  count = 0;
  /** Start byte (in the normalized text) of each piece found by the last `encode`. */
  starts = new Int32Array(64);
  /** SentencePiece id of each piece found by the last `encode`. */
  ids = new Int32Array(64);

  private readonly trie: ByteTrie;
  /** Per trie state: the score of the piece ending there, widened to double as in C++. */
  private readonly stateScore: Float64Array;
  /** Per trie state: the SentencePiece id of the piece ending there, -1 if none. */
  private readonly stateId: Int32Array;
  private readonly unkScore: number;
  private bestScore = new Float32Array(256);
  private bestStart = new Int32Array(256);
  private bestId = new Int32Array(256);

  constructor(pieces: readonly ModelPiece[]) {
    let unkId = -1;
    let minScore = FLT_MAX;
    let maxScore = FLT_MIN;
    for (let i = 0; i < pieces.length; i++) {
      const { type, score } = pieces[i];
      if (type === PieceType.Normal) {
        minScore = Math.min(minScore, score);
        maxScore = Math.max(maxScore, score);
      } else if (type === PieceType.Unknown) {
        if (unkId >= 0) throw new UnigramError('more than one piece has type UNKNOWN');
        unkId = i;
      }
    }
    if (unkId < 0) throw new UnigramError('no piece has type UNKNOWN');
    this.unkId = unkId;
    this.unkScore = Math.fround(minScore - UNK_PENALTY);

    // Normal, user-defined and unused pieces are matched in the text; control and unknown pieces
    // (and byte pieces) are reserved ids only, so a literal "<unk>" in the text is plain text.
    const encoder = new TextEncoder();
    const keys: Uint8Array[] = [];
    const values: number[] = [];
    // Like model_interface.cc, matched and reserved pieces are checked for duplicates separately.
    const matched = new Map<string, number>();
    const reserved = new Map<string, number>();
    for (let i = 0; i < pieces.length; i++) {
      const { piece, type } = pieces[i];
      if (piece.length === 0) throw new UnigramError(`piece ${i} is empty`);
      const isMatched =
        type === PieceType.Normal || type === PieceType.UserDefined || type === PieceType.Unused;
      const seen = isMatched ? matched : reserved;
      const prev = seen.get(piece);
      if (prev !== undefined) {
        throw new UnigramError(
          `piece ${JSON.stringify(piece)} is defined twice (ids ${prev}, ${i})`,
        );
      }
      seen.set(piece, i);
      if (type === PieceType.Normal || type === PieceType.UserDefined) {
        keys.push(encoder.encode(piece));
        values.push(i);
      } else if (type === PieceType.Unused) {
        // Kept as a path so longer pieces through it stay reachable, but never a match itself.
        keys.push(encoder.encode(piece));
        values.push(-1);
      }
    }
    this.trie = new ByteTrie(keys, values);

    const states = this.trie.value;
    this.stateScore = new Float64Array(states.length);
    this.stateId = new Int32Array(states.length).fill(-1);
    for (let s = 0; s < states.length; s++) {
      const id = states[s];
      if (id < 0) continue;
      this.stateId[s] = id;
      const { type, score } = pieces[id];
      if (type === PieceType.UserDefined) {
        // C++: `length * max_score_ - 0.1` with a byte length, float product, double difference.
        const length = encoder.encode(pieces[id].piece).length;
        this.stateScore[s] = Math.fround(length * maxScore) - 0.1;
      } else {
        this.stateScore[s] = Math.fround(score);
      }
    }
  }

  /**
   * Segments `text[0, size)` (normalized, valid UTF-8). Results are in `count`, `starts` and
   * `ids`, in text order; piece `k` ends where piece `k + 1` starts (the last one at `size`).
   */
  encode(text: Uint8Array, size: number): number {
    if (size === 0) return (this.count = 0);
    if (size + 1 > this.bestScore.length) {
      const cap = Math.max(size + 1, 2 * this.bestScore.length);
      this.bestScore = new Float32Array(cap);
      this.bestStart = new Int32Array(cap);
      this.bestId = new Int32Array(cap);
    }
    const bestScore = this.bestScore;
    const bestStart = this.bestStart;
    const bestId = this.bestId;
    bestScore[0] = 0;
    bestStart.fill(-1, 0, size + 1);

    const { base, check } = this.trie;
    const stateScore = this.stateScore;
    const stateId = this.stateId;
    const unkScore = this.unkScore;
    const unkId = this.unkId;

    for (let start = 0; start < size;) {
      const tillHere = bestScore[start];
      const mblen = Math.min(oneCharLen(text[start]), size - start);
      let hasSingle = false;
      let state = 0;
      for (let pos = start; pos < size;) {
        const next = base[state] + text[pos];
        if (check[next] !== state) break;
        state = next;
        pos++;
        const id = stateId[state];
        if (id < 0) continue;
        const candidate = stateScore[state] + tillHere;
        if (bestStart[pos] === -1 || candidate > bestScore[pos]) {
          bestScore[pos] = candidate;
          bestStart[pos] = start;
          bestId[pos] = id;
        }
        if (pos - start === mblen) hasSingle = true;
      }
      if (!hasSingle) {
        const end = start + mblen;
        const candidate = Math.fround(unkScore + tillHere);
        if (bestStart[end] === -1 || candidate > bestScore[end]) {
          bestScore[end] = candidate;
          bestStart[end] = start;
          bestId[end] = unkId;
        }
      }
      start += mblen;
    }

    let count = 0;
    for (let end = size; end > 0; end = bestStart[end]) count++;
    if (count > this.starts.length) {
      const cap = Math.max(count, 2 * this.starts.length);
      this.starts = new Int32Array(cap);
      this.ids = new Int32Array(cap);
    }
    let k = count;
    for (let end = size; end > 0; end = bestStart[end]) {
      k--;
      this.starts[k] = bestStart[end];
      this.ids[k] = bestId[end];
    }
    return (this.count = count);
  }
}
