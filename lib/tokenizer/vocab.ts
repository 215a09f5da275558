/**
 * The model vocabulary (KoBERT's `kobertvocab_*.json`, a GluonNLP vocabulary): piece string <->
 * model id, and the special tokens. Model ids come from here, not from SentencePiece's piece ids.
 */

/** Model ids of the special tokens. */
export interface SpecialIds {
  /** `[UNK]`: pieces absent from the vocabulary. */
  readonly unk: number;
  /** `[PAD]`: padding. */
  readonly pad: number;
  /** `[CLS]`: start of sequence. */
  readonly cls: number;
  /** `[SEP]`: end of sequence / segment separator. */
  readonly sep: number;
  /** `[MASK]`: masked-LM placeholder. */
  readonly mask: number;
}

/** Thrown when the vocabulary JSON is malformed. */
export class VocabError extends Error {
  override name = 'VocabError';
}

// JSON field naming each special token, and the token used when the field is absent.
const SPECIALS: ReadonlyArray<[keyof SpecialIds, string, string]> = [
  ['unk', 'unknown_token', '[UNK]'],
  ['pad', 'padding_token', '[PAD]'],
  ['cls', 'cls_token', '[CLS]'],
  ['sep', 'sep_token', '[SEP]'],
  ['mask', 'mask_token', '[MASK]'],
];

/** A dense vocabulary: ids are exactly `0 .. size - 1`. */
export class Vocab {
  private constructor(
    private readonly tokenToId: Map<string, number>,
    private readonly idToToken: readonly string[],
    readonly special: SpecialIds,
  ) {}

  /** Number of entries. */
  get size(): number {
    return this.idToToken.length;
  }

  /** The id of `token`, or `undefined` when absent. */
  get(token: string): number | undefined {
    return this.tokenToId.get(token);
  }

  /** The token with id `id`, or `undefined` when out of range. */
  token(id: number): string | undefined {
    return Number.isInteger(id) ? this.idToToken[id] : undefined;
  }

  /**
   * Parses the JSON text: an object whose `token_to_idx` maps each token to its id, optionally with
   * a consistent `idx_to_token` array and the special-token fields (`unknown_token`, ...).
   */
  static parse(json: string): Vocab {
    let data: unknown;
    try {
      data = JSON.parse(json);
    } catch (e) {
      throw new VocabError(`not valid JSON (${(e as Error).message})`);
    }
    if (!isObject(data)) throw new VocabError('the JSON is not an object');
    const map = data.token_to_idx;
    if (!isObject(map)) throw new VocabError('"token_to_idx" is missing or not an object');

    const entries = Object.entries(map);
    const idToToken: string[] = new Array<string>(entries.length);
    const tokenToId = new Map<string, number>();
    for (const [token, id] of entries) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= entries.length) {
        const range = `0..${entries.length - 1}`;
        throw new VocabError(
          `token_to_idx[${JSON.stringify(token)}] = ${JSON.stringify(id)} is not an id in ${range}`,
        );
      }
      if (idToToken[id] !== undefined) {
        throw new VocabError(
          `id ${id} is given to both ${JSON.stringify(idToToken[id])} and ${JSON.stringify(token)}`,
        );
      }
      idToToken[id] = token;
      tokenToId.set(token, id);
    }
    if (entries.length === 0) throw new VocabError('"token_to_idx" is empty');

    const list = data.idx_to_token;
    if (list !== undefined) {
      if (!Array.isArray(list) || list.length !== entries.length) {
        throw new VocabError('"idx_to_token" is not an array as long as "token_to_idx"');
      }
      for (let i = 0; i < list.length; i++) {
        if (list[i] !== idToToken[i]) {
          const expected = JSON.stringify(idToToken[i]);
          throw new VocabError(
            `idx_to_token[${i}] = ${JSON.stringify(list[i])} but token_to_idx gives ${expected}`,
          );
        }
      }
    }

    const special: Partial<Record<keyof SpecialIds, number>> = {};
    for (const [key, field, fallback] of SPECIALS) {
      const value = data[field];
      const token = typeof value === 'string' ? value : fallback;
      const id = tokenToId.get(token);
      if (id === undefined) throw new VocabError(`special token ${token} is not in token_to_idx`);
      special[key] = id;
    }
    return new Vocab(tokenToId, idToToken, Object.freeze(special as SpecialIds));
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
