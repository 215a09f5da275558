/**
 * CoNLL-style BIO files: `token<TAB or space>tag` per line, a blank line between sentences.
 * Lines with more columns keep the first as the token and the last as the tag, so CoNLL-2003
 * style files (token, POS, chunk, tag) read too.
 */
import { writeFile } from 'node:fs/promises';

import { chunkBio, parseTag, type ParsedTag } from '../labels/scheme.js';
import { readCorpusText } from './read-text.js';
import { CorpusError, type ConllSentence, type EntitySpan, type Sentence } from './types.js';

/** A sentence as BIO-tagged tokens. */
export interface BioSentence {
  tokens: string[];
  tags: string[];
}

/** What converting sentences to tokens kept and lost. */
export interface ConllReport {
  sentences: number;
  tokens: number;
  entities: number;
  /** Entities whose boundaries are token boundaries: they read back with the same text. */
  exact: number;
  /** Entities that start or end inside a token, so they read back as whole tokens. */
  widened: number;
  /** Entities whose every token already belongs to an earlier entity: not written. */
  dropped: number;
}

/** Options for {@link writeConll} and {@link toBio}. */
export interface ConllWriteOptions {
  /** Column separator (default tab). */
  separator?: '\t' | ' ';
  /**
   * Also cut tokens at entity boundaries (`일본은` → `일본`, `은`), so that every entity
   * survives; the text then reads back with spaces at those cuts. Default false.
   */
  splitAtEntities?: boolean;
}

/** Parses CoNLL text into sentences; `file` names the source in sentences and errors. */
export function parseConll(content: string, file: string): ConllSentence[] {
  const lines = content.replace(/^\uFEFF/, '').split(/\r?\n/);
  const sentences: ConllSentence[] = [];
  let tokens: string[] = [];
  let tags: ParsedTag[] = [];
  let first = 0;
  const flush = (): void => {
    if (tokens.length > 0) sentences.push({ file, line: first, ...fromTokens(tokens, tags) });
    tokens = [];
    tags = [];
  };
  lines.forEach((line, index) => {
    const lineNo = index + 1;
    if (line.trim() === '') return flush();
    // CoNLL-2003 marks documents this way; a document boundary is also a sentence boundary.
    if (line.startsWith('-DOCSTART-')) return flush();
    if (/^[\t ]/.test(line)) throw new CorpusError(file, lineNo, 'missing token column');
    const fields = line.trimEnd().split(/[\t ]+/);
    if (fields.length < 2) {
      throw new CorpusError(
        file,
        lineNo,
        `missing tag column after token ${JSON.stringify(fields[0])}`,
      );
    }
    const tag = fields[fields.length - 1];
    const parsed = parseTag(tag);
    if (!parsed) {
      throw new CorpusError(
        file,
        lineNo,
        `bad tag ${JSON.stringify(tag)}: expected O, B-TYPE or I-TYPE`,
      );
    }
    if (/\s/.test(fields[0])) {
      throw new CorpusError(file, lineNo, `token ${JSON.stringify(fields[0])} contains whitespace`);
    }
    if (tokens.length === 0) first = lineNo;
    tokens.push(fields[0]);
    tags.push(parsed);
  });
  flush();
  return sentences;
}

/** Reads a CoNLL-style BIO file. @throws {CorpusError} for a bad line, with file and line. */
export async function readConll(filePath: string): Promise<ConllSentence[]> {
  return parseConll(await readCorpusText(filePath), filePath);
}

/**
 * Builds a sentence from BIO-tagged tokens: tokens joined with single spaces, entities over
 * whole tokens. An `I-` after `O` or another type starts an entity (see `chunkBio`).
 *
 * @throws {Error} for a tag that is not `O`, `B-TYPE` or `I-TYPE`, or a token with whitespace.
 */
export function fromBio(bio: BioSentence): Sentence {
  if (bio.tokens.length !== bio.tags.length) {
    throw new Error(`${bio.tokens.length} tokens but ${bio.tags.length} tags`);
  }
  const tags = bio.tags.map((tag) => {
    const parsed = parseTag(tag);
    if (!parsed) throw new Error(`bad tag ${JSON.stringify(tag)}: expected O, B-TYPE or I-TYPE`);
    return parsed;
  });
  return fromTokens(bio.tokens, tags);
}

function fromTokens(tokens: readonly string[], tags: readonly ParsedTag[]): Sentence {
  const starts: number[] = [];
  let text = '';
  for (const token of tokens) {
    if (token === '' || /\s/.test(token)) {
      throw new Error(`token ${JSON.stringify(token)} is empty or contains whitespace`);
    }
    if (text !== '') text += ' ';
    starts.push(text.length);
    text += token;
  }
  const entities: EntitySpan[] = chunkBio(tags).map(({ type, first, last }) => {
    const start = starts[first];
    const end = starts[last] + tokens[last].length;
    return { start, end, label: type, text: text.slice(start, end) };
  });
  return { text, entities };
}

/** Where each entity's content (its text less outer whitespace) starts and ends. */
function contentRange(text: string, entity: EntitySpan): [number, number] {
  let { start, end } = entity;
  while (start < end && /\s/.test(text[start])) start++;
  while (end > start && /\s/.test(text[end - 1])) end--;
  return [start, end];
}

/**
 * Converts a sentence to BIO-tagged tokens (runs of non-whitespace, optionally also cut at
 * entity boundaries). A token belongs to the first entity whose content it overlaps.
 *
 * @returns the tokens and tags, and per-entity outcome counts in `report`
 * @throws {Error} for a sentence without any token, which a CoNLL file cannot hold.
 */
export function toBio(
  sentence: Sentence,
  options: ConllWriteOptions = {},
): BioSentence & { report: Omit<ConllReport, 'sentences' | 'tokens'> } {
  const { text } = sentence;
  const ranges = sentence.entities.map((entity) => contentRange(text, entity));
  const cuts = new Set<number>();
  if (options.splitAtEntities) for (const [start, end] of ranges) cuts.add(start).add(end);
  const spans: [number, number][] = [];
  for (const match of text.matchAll(/\S+/g)) {
    let start = match.index;
    const end = start + match[0].length;
    for (let k = start + 1; k < end; k++) {
      if (cuts.has(k)) {
        spans.push([start, k]);
        start = k;
      }
    }
    spans.push([start, end]);
  }
  if (spans.length === 0) throw new Error(`sentence ${JSON.stringify(text)} has no token`);

  const owner = new Array<number>(spans.length).fill(-1);
  const report = { entities: ranges.length, exact: 0, widened: 0, dropped: 0 };
  ranges.forEach(([start, end], e) => {
    let owned = 0;
    let whole = true;
    spans.forEach(([a, b], t) => {
      if (a >= end || b <= start) return;
      if (owner[t] >= 0) {
        whole = false;
        return;
      }
      owner[t] = e;
      owned++;
      if (a < start || b > end) whole = false;
    });
    if (owned === 0) report.dropped++;
    else if (whole) report.exact++;
    else report.widened++;
  });
  const tags = owner.map((e, t) => {
    if (e < 0) return 'O';
    return `${t > 0 && owner[t - 1] === e ? 'I' : 'B'}-${sentence.entities[e].label}`;
  });
  return { tokens: spans.map(([a, b]) => text.slice(a, b)), tags, report };
}

/**
 * Formats sentences as CoNLL text (see {@link toBio} for how entities map to tokens).
 * @returns the text and what the conversion kept, widened and dropped
 */
export function formatConll(
  sentences: readonly Sentence[],
  options: ConllWriteOptions = {},
): { content: string; report: ConllReport } {
  const separator = options.separator ?? '\t';
  const report: ConllReport = {
    sentences: 0,
    tokens: 0,
    entities: 0,
    exact: 0,
    widened: 0,
    dropped: 0,
  };
  const blocks = sentences.map((sentence, index) => {
    let bio;
    try {
      bio = toBio(sentence, options);
    } catch (error) {
      throw new Error(`sentence ${index}: ${(error as Error).message}`, { cause: error });
    }
    report.sentences++;
    report.tokens += bio.tokens.length;
    report.entities += bio.report.entities;
    report.exact += bio.report.exact;
    report.widened += bio.report.widened;
    report.dropped += bio.report.dropped;
    return bio.tokens.map((token, t) => `${token}${separator}${bio.tags[t]}\n`).join('');
  });
  return { content: blocks.join('\n'), report };
}

/**
 * Writes sentences to a CoNLL-style BIO file.
 * @returns what the conversion kept, widened and dropped, so no entity is lost unnoticed
 */
export async function writeConll(
  filePath: string,
  sentences: readonly Sentence[],
  options: ConllWriteOptions = {},
): Promise<ConllReport> {
  const { content, report } = formatConll(sentences, options);
  await writeFile(filePath, content, 'utf8');
  return report;
}
