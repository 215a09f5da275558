/** Reader for the KMOU named-entity corpus (blocks of `## id`, `## raw`, `## markup`, morphemes). */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

import { MarkupError, parseMarkup } from '../labels/markup.js';
import {
  addMorphemeStats,
  alignMorphemes,
  emptyMorphemeStats,
  type MorphemeAlignmentStats,
  type MorphemeToken,
} from './morphemes.js';
import { readCorpusText } from './read-text.js';
import { CorpusError, type CorpusWarning, type KmouSentence } from './types.js';

/** Options for the KMOU readers. */
export interface KmouReadOptions {
  /**
   * Skip malformed blocks with a warning instead of throwing. Every skipped block is reported
   * through `onWarning`, and {@link readKmouCorpus} adds a summary with the total.
   */
  lenient?: boolean;
  /** Receives warnings in lenient mode (default: `console.warn` of the message). */
  onWarning?: (warning: CorpusWarning) => void;
  /** Entity types a `:TAG>` may name (default: the ten KMOU types). */
  types?: readonly string[];
}

/** Sentences of one KMOU file and how many malformed blocks lenient mode skipped. */
export interface KmouParseResult {
  sentences: KmouSentence[];
  skipped: number;
  /** How the morpheme lines met the raw sentences, over the sentences returned. */
  morphemeStats: MorphemeAlignmentStats;
}

const HEADER = '## ';
const HEADER_NAMES = ['id', 'raw sentence', 'markup'] as const;
/** A morpheme line's tab-separated fields. */
const MORPHEME_FIELDS = ['surface', 'lemma', 'POS', 'BIO'] as const;
/** The POS field of the line between two eojeols (`_\t_\t_\tO`); a literal `_` is tagged `SW`. */
const EOJEOL_BREAK = '_';

const defaultWarn = (warning: CorpusWarning): void => console.warn(warning.message);

/**
 * Parses the text of one KMOU file.
 *
 * @param content the file's text (a leading byte-order mark is ignored)
 * @param file the name used in sentences and error messages
 * @throws {CorpusError} naming file, line and problem for the first malformed block, unless
 *   `lenient` is set
 */
export function parseKmou(
  content: string,
  file: string,
  options: KmouReadOptions = {},
): KmouParseResult {
  return parseContent(content, file, file, options);
}

/** {@link parseKmou} with errors located at `where` (a full path) and sentences named `file`. */
function parseContent(
  content: string,
  file: string,
  where: string,
  options: KmouReadOptions,
): KmouParseResult {
  const warn = options.onWarning ?? defaultWarn;
  const lines = content.replace(/^\uFEFF/, '').split(/\r?\n/);
  const sentences: KmouSentence[] = [];
  const morphemeStats = emptyMorphemeStats();
  let skipped = 0;
  let blockStart = -1;
  for (let index = 0; index <= lines.length; index++) {
    const blank = index === lines.length || lines[index].trim() === '';
    if (!blank) {
      if (blockStart < 0) blockStart = index;
      continue;
    }
    if (blockStart < 0) continue;
    try {
      sentences.push(
        parseBlock(lines, blockStart, index, file, where, options.types, morphemeStats),
      );
    } catch (error) {
      if (!(error instanceof CorpusError) || !options.lenient) throw error;
      skipped++;
      warn({ file: where, line: error.line, message: `${error.message} (block skipped)` });
    }
    blockStart = -1;
  }
  return { sentences, skipped, morphemeStats };
}

/** Parses lines `[from, to)`, one block; throws a CorpusError for anything malformed. */
function parseBlock(
  lines: readonly string[],
  from: number,
  to: number,
  file: string,
  where: string,
  types: readonly string[] | undefined,
  morphemeStats: MorphemeAlignmentStats,
): KmouSentence {
  for (let k = 0; k < HEADER_NAMES.length; k++) {
    const line = from + k;
    if (line >= to || !lines[line].startsWith(HEADER)) {
      const found = line >= to ? 'the block ends' : `found ${quote(lines[line])}`;
      throw new CorpusError(
        where,
        line + 1,
        `expected the ${HEADER_NAMES[k]} line starting with '${HEADER}', but ${found}` +
          ' (a block is 3 header lines, then morpheme lines)',
      );
    }
  }
  for (let line = from + HEADER_NAMES.length; line < to; line++) {
    if (lines[line].startsWith(HEADER)) {
      throw new CorpusError(
        where,
        line + 1,
        `unexpected '${HEADER}' line among morpheme lines (missing blank line between sentences?)`,
      );
    }
  }
  const id = lines[from].slice(HEADER.length);
  const text = lines[from + 1].slice(HEADER.length);
  const markup = lines[from + 2].slice(HEADER.length);
  if (id.trim() === '') throw new CorpusError(where, from + 1, 'empty sentence id');
  if (text.trim() === '') throw new CorpusError(where, from + 2, 'empty raw sentence');
  let entities;
  try {
    entities = parseMarkup(text, markup, { types });
  } catch (error) {
    if (!(error instanceof MarkupError)) throw error;
    throw new CorpusError(
      where,
      from + 3,
      `markup line, column ${error.index + 1 + HEADER.length}: ${error.reason}`,
    );
  }
  const eojeols = parseMorphemeLines(lines, from + HEADER_NAMES.length, to, where);
  const aligned = alignMorphemes(text, eojeols);
  addMorphemeStats(morphemeStats, aligned.stats);
  return { file, id, line: from + 1, text, markup, entities, morphemes: aligned.morphemes };
}

/**
 * Morpheme lines `[from, to)` grouped by eojeol. Only the structure is checked here (four
 * fields, a surface and a tag); whether the surfaces spell the text is the aligner's business.
 */
function parseMorphemeLines(
  lines: readonly string[],
  from: number,
  to: number,
  where: string,
): MorphemeToken[][] {
  const eojeols: MorphemeToken[][] = [[]];
  for (let line = from; line < to; line++) {
    const fields = lines[line].split('\t');
    if (fields.length !== MORPHEME_FIELDS.length) {
      throw new CorpusError(
        where,
        line + 1,
        `morpheme line has ${fields.length} tab-separated field${fields.length === 1 ? '' : 's'}` +
          `, expected ${MORPHEME_FIELDS.length} (${MORPHEME_FIELDS.join(', ')}): ${quote(lines[line])}`,
      );
    }
    const [surface, , pos] = fields;
    for (const [name, value] of [
      ['surface', surface],
      ['POS', pos],
    ] as const) {
      if (value.trim() === '') {
        throw new CorpusError(where, line + 1, `morpheme line has an empty ${name} field`);
      }
    }
    if (pos === EOJEOL_BREAK) eojeols.push([]);
    else eojeols[eojeols.length - 1].push({ surface, pos });
  }
  return eojeols;
}

function quote(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

/** Reads one KMOU file; sentences carry `file` as given. */
export async function readKmouFile(
  filePath: string,
  options: KmouReadOptions = {},
): Promise<KmouParseResult> {
  return parseKmou(await readCorpusText(filePath, options), filePath, options);
}

/**
 * Reads every `*.txt` file of a KMOU directory (not recursive), in code-unit order of file
 * name so the sentence order is the same on every machine, or a single file.
 *
 * @returns sentences in file order, then block order; `file` is the name relative to `dir`.
 *   In lenient mode, skipped blocks are reported through `onWarning`, followed by one summary
 *   warning with their count.
 * @throws {CorpusError} for a malformed block (not in lenient mode), or an Error when the
 *   directory holds no `.txt` file.
 */
export async function readKmouCorpus(
  dir: string,
  options: KmouReadOptions = {},
): Promise<KmouSentence[]> {
  const warn = options.onWarning ?? defaultWarn;
  let names: string[];
  let root: string;
  if ((await stat(dir)).isDirectory()) {
    root = dir;
    const entries = await readdir(dir, { withFileTypes: true });
    names = entries
      .filter((entry) => entry.isFile() && entry.name.endsWith('.txt'))
      .map((entry) => entry.name)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (names.length === 0) throw new Error(`${dir}: no .txt files to read`);
  } else {
    root = path.dirname(dir);
    names = [path.basename(dir)];
  }
  const contents = await Promise.all(
    names.map((name) =>
      readCorpusText(path.join(root, name), { lenient: options.lenient, onWarning: warn }),
    ),
  );
  const sentences: KmouSentence[] = [];
  let skipped = 0;
  contents.forEach((content, k) => {
    const where = path.join(root, names[k]);
    const result = parseContent(content, names[k], where, { ...options, onWarning: warn });
    for (const sentence of result.sentences) sentences.push(sentence);
    skipped += result.skipped;
  });
  if (skipped > 0) {
    warn({
      file: dir,
      line: 0,
      message: `${dir}: skipped ${skipped} malformed block${skipped === 1 ? '' : 's'} (lenient mode)`,
    });
  }
  return sentences;
}
