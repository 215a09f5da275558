/** The sentence shape every corpus reader returns and every writer accepts. */

/**
 * A named entity in a sentence: UTF-16 offsets `[start, end)` into the sentence text, so
 * `text.slice(start, end) === entity.text`.
 */
export interface EntitySpan {
  start: number;
  end: number;
  /** Entity type, e.g. `PER` (no `B-`/`I-` prefix). */
  label: string;
  text: string;
}

/** A sentence with its entities, sorted by start and not overlapping. */
export interface Sentence {
  text: string;
  entities: EntitySpan[];
}

/** A sentence read from the KMOU corpus. */
export interface KmouSentence extends Sentence {
  /** File name relative to the directory that was read (or the path given, for one file). */
  file: string;
  /** The block's id line without its `## ` prefix. */
  id: string;
  /** 1-based line of the block's first line. */
  line: number;
  /** The block's markup line without its `## ` prefix, as in the file. */
  markup: string;
  /**
   * The block's morphemes as character spans, in text order, non-overlapping, each non-empty and
   * without whitespace at either end (see `alignMorphemes`); `[]` for a block without morpheme
   * lines.
   */
  morphemes: MorphemeSpan[];
}

/**
 * A morpheme of a sentence: UTF-16 offsets `[start, end)` into the sentence text and its Sejong
 * POS tag as the corpus writes it — one tag (`NNG`), or tags joined with `+` for a surface that
 * fuses several morphemes (`담긴` is `VV+ETM`, for 담기 + ㄴ).
 */
export interface MorphemeSpan {
  start: number;
  end: number;
  pos: string;
}

/** A sentence read from a CoNLL-style BIO file: tokens joined with single spaces. */
export interface ConllSentence extends Sentence {
  /** The path the sentence was read from. */
  file: string;
  /** 1-based line of the sentence's first token. */
  line: number;
}

/** A malformed input, located by file and 1-based line. */
export class CorpusError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'CorpusError';
  }
}

/** What a lenient reader reports instead of throwing. */
export interface CorpusWarning {
  file: string;
  /** 1-based line; 0 for a summary that concerns a whole directory. */
  line: number;
  /** `file:line: reason`, ready to print. */
  message: string;
}
