/**
 * KoBERT's SentencePiece (unigram) tokenizer in TypeScript: reads the `.model` file itself and
 * reproduces SentencePiece 0.1.97 exactly (pieces and offsets), with model ids taken from the
 * vocabulary JSON.
 */
import { readFile } from 'node:fs/promises';

import { ByteTrie } from './byte-trie.js';
import { TokenizerLoadError } from './errors.js';
import { ModelType, PieceType, parseModelProto, type ModelProto } from './model-proto.js';
import { Normalizer } from './normalizer.js';
import { UnigramModel } from './unigram.js';
import { decodeUtf8, encodeUtf8 } from './utf8.js';
import { Vocab, type SpecialIds } from './vocab.js';

export { TokenizerLoadError } from './errors.js';
export type { SpecialIds } from './vocab.js';
export {
  collateSyllables,
  DEFAULT_MAX_SYLLABLES,
  pieceSyllables,
  SYLLABLE_PAD,
  SYLLABLE_UNKNOWN,
  SYLLABLE_VOCAB_SIZE,
  syllableId,
  syllableKind,
} from './syllables.js';
export type { PieceSyllables, SyllableBatch, SyllableKind } from './syllables.js';

/** The result of {@link Tokenizer.encode}; the three arrays are parallel, one entry per piece. */
export interface Encoding {
  /** SentencePiece pieces, e.g. `['▁안', '녕']`; a run of unknown characters is one piece. */
  pieces: string[];
  /**
   * Model ids from the vocabulary JSON, looked up by piece string (`[UNK]` when absent). An
   * `Int32Array` so it can go to the native model without conversion.
   */
  ids: Int32Array;
  /**
   * UTF-16 `[start, end)` of each piece in the original string, so `text.slice(start, end)` is
   * the text the piece came from, exactly as SentencePiece reports it: when one character
   * normalizes to several pieces (`㈜` → `▁(`, `주`, `)`), all but the last are empty spans at its
   * start and the last covers it; a dummy-prefix `▁` standing alone is an empty span; removed
   * characters (extra spaces, zero-width characters) fall inside a neighbour's span or none.
   */
  offsets: Array<[number, number]>;
}

/** Options of {@link Tokenizer.load}. */
export interface TokenizerLoadOptions {
  /** Path of the vocabulary JSON (`token_to_idx`, `idx_to_token`, special-token fields). */
  vocab: string;
}

/**
 * A SentencePiece unigram tokenizer: the model's normalizer (precompiled charsmap and whitespace
 * rules), Viterbi segmentation with SentencePiece's tie-breaking, and offsets into the input.
 *
 * Lone UTF-16 surrogates, which SentencePiece cannot receive, are read as U+FFFD (as
 * `TextEncoder` writes them); their offsets still cover the surrogate.
 */
export class Tokenizer {
  /** Model ids of `[UNK]`, `[PAD]`, `[CLS]`, `[SEP]` and `[MASK]`. */
  readonly specialIds: SpecialIds;

  private readonly vocab: Vocab;
  private readonly model: UnigramModel;
  private readonly normalizer: Normalizer;
  /** Per SentencePiece id: the piece string. */
  private readonly pieceText: readonly string[];
  /** Per SentencePiece id: the model id of the piece. */
  private readonly pieceVocabId: Int32Array;
  private inBytes = new Uint8Array(256);
  private inU16 = new Int32Array(257);
  private idScratch = new Int32Array(64);

  private constructor(proto: ModelProto, vocab: Vocab) {
    this.vocab = vocab;
    this.specialIds = vocab.special;
    this.model = new UnigramModel(proto.pieces);
    this.normalizer = new Normalizer(
      proto.normalizerSpec,
      proto.trainerSpec.treatWhitespaceAsSuffix,
      userDefinedTrie(proto),
    );
    this.pieceText = proto.pieces.map((p) => p.piece);
    this.pieceVocabId = Int32Array.from(
      proto.pieces,
      (p) => vocab.get(p.piece) ?? vocab.special.unk,
    );
  }

  /**
   * Loads a tokenizer from a SentencePiece `.model` file and the vocabulary JSON.
   *
   * @param modelPath path of the `.model` file (a serialized `ModelProto`, unigram type).
   * @param options `vocab`: path of the vocabulary JSON.
   * @throws {TokenizerLoadError} naming the file and the problem when a file is missing,
   *   unreadable, truncated or malformed, or describes a model this tokenizer cannot run (BPE,
   *   byte fallback).
   */
  static async load(modelPath: string, options: TokenizerLoadOptions): Promise<Tokenizer> {
    if (typeof modelPath !== 'string') throw new TypeError('modelPath must be a string');
    if (typeof options?.vocab !== 'string') throw new TypeError('options.vocab must be a path');
    const [model, vocab] = await Promise.all([readInput(modelPath), readInput(options.vocab)]);
    let vocabJson: string;
    try {
      // Also drops a byte-order mark, which JSON.parse would reject.
      vocabJson = new TextDecoder('utf-8', { fatal: true }).decode(vocab);
    } catch (e) {
      throw new TokenizerLoadError(options.vocab, 'bad vocabulary: not valid UTF-8', { cause: e });
    }
    return Tokenizer.fromBytes(model, vocabJson, { model: modelPath, vocab: options.vocab });
  }

  /**
   * Builds a tokenizer from file contents already in memory.
   *
   * @param model the bytes of the `.model` file.
   * @param vocabJson the text of the vocabulary JSON.
   * @param names how to name the two inputs in error messages.
   * @throws {TokenizerLoadError} as {@link Tokenizer.load}.
   */
  static fromBytes(
    model: Uint8Array,
    vocabJson: string,
    names: { model?: string; vocab?: string } = {},
  ): Tokenizer {
    const modelName = names.model ?? '<model>';
    const vocabName = names.vocab ?? '<vocab>';
    let proto: ModelProto;
    try {
      proto = parseModelProto(model);
    } catch (e) {
      throw new TokenizerLoadError(modelName, `not a valid SentencePiece model: ${message(e)}`, {
        cause: e,
      });
    }
    if (proto.trainerSpec.modelType !== ModelType.Unigram) {
      throw new TokenizerLoadError(
        modelName,
        `model type ${proto.trainerSpec.modelType} is not supported (only unigram, type 1)`,
      );
    }
    if (proto.trainerSpec.byteFallback) {
      throw new TokenizerLoadError(modelName, 'byte-fallback models are not supported');
    }
    let vocab: Vocab;
    try {
      vocab = Vocab.parse(vocabJson);
    } catch (e) {
      throw new TokenizerLoadError(vocabName, `bad vocabulary: ${message(e)}`, { cause: e });
    }
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(proto, vocab);
    } catch (e) {
      throw new TokenizerLoadError(modelName, `bad SentencePiece model: ${message(e)}`, {
        cause: e,
      });
    }
    // A vocabulary from another model would silently turn every piece into [UNK].
    if (
      !proto.pieces.some((p) => p.type === PieceType.Normal && vocab.get(p.piece) !== undefined)
    ) {
      throw new TokenizerLoadError(vocabName, `bad vocabulary: no piece of ${modelName} is in it`);
    }
    return tokenizer;
  }

  /** Number of entries in the vocabulary (the model's embedding rows). */
  get vocabSize(): number {
    return this.vocab.size;
  }

  /**
   * The vocabulary entry with model id `id`.
   *
   * @throws {RangeError} when `id` is not in `0 .. vocabSize - 1`.
   */
  idToPiece(id: number): string {
    const piece = this.vocab.token(id);
    if (piece === undefined) throw new RangeError(`id ${id} is not in 0..${this.vocabSize - 1}`);
    return piece;
  }

  /** The model id of `piece`, or the `[UNK]` id when it is not in the vocabulary. */
  pieceToId(piece: string): number {
    return this.vocab.get(piece) ?? this.specialIds.unk;
  }

  /**
   * Tokenizes `text` as SentencePiece's `EncodeAsImmutableProto` does, without special tokens.
   * Empty or all-whitespace text gives no pieces.
   *
   * @throws {TypeError} when `text` is not a string.
   */
  encode(text: string): Encoding {
    if (typeof text !== 'string') {
      throw new TypeError(`Tokenizer.encode expects a string, got ${describe(text)}`);
    }
    if (3 * text.length + 1 > this.inBytes.length) {
      const cap = Math.max(3 * text.length + 1, 2 * this.inBytes.length);
      this.inBytes = new Uint8Array(cap);
      this.inU16 = new Int32Array(cap + 1);
    }
    const byteLength = encodeUtf8(text, this.inBytes, this.inU16);
    const normalizer = this.normalizer;
    const size = normalizer.normalize(this.inBytes, byteLength);
    const model = this.model;
    const count = model.encode(normalizer.out, size);

    const pieces: string[] = [];
    const offsets: Array<[number, number]> = [];
    if (count > this.idScratch.length) this.idScratch = new Int32Array(2 * count);
    const ids = this.idScratch;
    const norm = normalizer.out;
    const normToOrig = normalizer.normToOrig;
    const u16 = this.inU16;
    const starts = model.starts;
    const spIds = model.ids;
    const unkId = model.unkId;
    let m = 0;
    for (let k = 0; k < count; k++) {
      const id = spIds[k];
      const start = starts[k];
      if (id === unkId) {
        // SentencePiece merges a run of unknown characters into one piece.
        while (k + 1 < count && spIds[k + 1] === unkId) k++;
        const end = k + 1 < count ? starts[k + 1] : size;
        const piece = decodeUtf8(norm, start, end);
        pieces.push(piece);
        ids[m++] = this.vocab.get(piece) ?? this.specialIds.unk;
        offsets.push([u16[normToOrig[start]], u16[normToOrig[end]]]);
      } else {
        const end = k + 1 < count ? starts[k + 1] : size;
        pieces.push(this.pieceText[id]);
        ids[m++] = this.pieceVocabId[id];
        offsets.push([u16[normToOrig[start]], u16[normToOrig[end]]]);
      }
    }
    return { pieces, ids: ids.slice(0, m), offsets };
  }
}

async function readInput(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new TokenizerLoadError(path, `cannot read the file (${message(e)})`, { cause: e });
  }
}

/** User-defined pieces, which the normalizer must pass through verbatim, or null if none. */
function userDefinedTrie(proto: ModelProto): ByteTrie | null {
  const encoder = new TextEncoder();
  const keys = proto.pieces
    .filter((p) => p.type === PieceType.UserDefined)
    .map((p) => encoder.encode(p.piece));
  return keys.length > 0 ? new ByteTrie(keys, new Array<number>(keys.length).fill(0)) : null;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}
