/**
 * Raw text for pretraining, streamed: paragraphs (one per line) from a list of files, gzip or
 * plain UTF-8, read chunk by chunk so a 100 MB part never sits in memory. Every paragraph carries
 * the {@link TextPosition} of the one after it, so a saved position resumes exactly where a run
 * stopped; resuming skips lines by counting newlines, without decoding or tokenizing them.
 *
 * @packageDocumentation
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';

/**
 * A place in a list of files: `line` (0-based, counting every line, blank ones included) of
 * `files[file]`. `{ file: files.length, line: 0 }` is the end of the list.
 */
export interface TextPosition {
  file: number;
  line: number;
}

/** A {@link TextPosition} in the `epoch`-th (0-based) pass over the files. */
export interface EpochPosition extends TextPosition {
  epoch: number;
}

/** One paragraph read by {@link readParagraphs}. */
export interface Paragraph {
  /** The line's text, without its line break. */
  text: string;
  /** Where this paragraph is. */
  at: TextPosition;
  /** Where the next paragraph is looked for: save this to resume after this paragraph. */
  position: TextPosition;
}

/** One paragraph read by {@link readEpochs}. */
export interface EpochParagraph {
  text: string;
  at: EpochPosition;
  position: EpochPosition;
}

/** Unreadable or malformed text, located by file and (1-based) line when there is one. */
export class TextStreamError extends Error {
  override name = 'TextStreamError';

  /**
   * @param file the path of the offending file.
   * @param line 1-based line, or 0 when the problem concerns the whole file.
   * @param reason what is wrong.
   */
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(line > 0 ? `${file}:${line}: ${reason}` : `${file}: ${reason}`, options);
  }
}

/** The start of the first file. */
export const TEXT_START: Readonly<TextPosition> = Object.freeze({ file: 0, line: 0 });

const NEWLINE = 0x0a;
const GZIP_MAGIC = [0x1f, 0x8b];
// Blank and whitespace-only lines are separators, not paragraphs.
const BLANK = /^\s*$/;

/** Whether `file` is read through gunzip: decided by its name, then checked against its bytes. */
function isGzipName(file: string): boolean {
  return file.endsWith('.gz');
}

/**
 * Checks that every file can be opened and that each `.gz` file starts with the gzip magic bytes,
 * so a bad path fails before a long run starts instead of when the stream reaches it.
 *
 * @throws TextStreamError naming the file.
 */
export async function checkTextFiles(files: readonly string[]): Promise<void> {
  for (const file of files) {
    let handle;
    try {
      handle = await open(file, 'r');
    } catch (error) {
      throw openError(file, error);
    }
    try {
      if (!isGzipName(file)) continue;
      const head = Buffer.alloc(2);
      const { bytesRead } = await handle.read(head, 0, 2, 0);
      if (bytesRead < 2 || head[0] !== GZIP_MAGIC[0] || head[1] !== GZIP_MAGIC[1]) {
        throw new TextStreamError(file, 0, 'not a gzip file (it does not start with 1f 8b)');
      }
    } catch (error) {
      throw error instanceof TextStreamError ? error : openError(file, error);
    } finally {
      await handle.close();
    }
  }
}

function openError(file: string, error: unknown): TextStreamError {
  const e = error as NodeJS.ErrnoException;
  const reason =
    e.code === 'ENOENT'
      ? 'cannot open: no such file'
      : e.code === 'EISDIR'
        ? 'cannot read: is a directory'
        : `cannot open: ${e.message}`;
  return new TextStreamError(file, 0, reason, { cause: error });
}

/** The decompressed bytes of a file, in chunks. */
function openLines(file: string): AsyncIterable<Buffer> {
  const input = createReadStream(file);
  // `pipeline` destroys both streams when either fails or the consumer stops early (a `break` in
  // the caller's loop), so no file handle outlives the generator.
  return isGzipName(file) ? pipeline(input, createGunzip(), () => {}) : input;
}

/** A stream failure as a {@link TextStreamError}; `lines` is how many lines were read before it. */
function streamError(file: string, lines: number, error: unknown): TextStreamError {
  if (error instanceof TextStreamError) return error;
  const e = error as NodeJS.ErrnoException;
  if (e.code === 'ENOENT' || e.code === 'EISDIR') return openError(file, error);
  const reason = e.code?.startsWith('Z_')
    ? `corrupt or truncated gzip data after line ${lines} (${e.message})`
    : `read failed after line ${lines}: ${e.message}`;
  return new TextStreamError(file, 0, reason, { cause: error });
}

/**
 * The lines `[start, end)` of one file (0-based line numbers), decoded, without their `\n`, in
 * runs: `lines[i]` is line `first + i`. Lines before `start` are counted, never decoded. A final
 * line without `\n` counts as a line.
 *
 * Each chunk's complete lines are decoded with one fatal `TextDecoder` call (a call per line costs
 * more than the decoding); only when that call fails are its lines decoded one by one, to name
 * the bad line.
 *
 * @throws TextStreamError when the file cannot be read, its gzip data is corrupt or truncated, a
 *   line is not valid UTF-8, or `start` is past its last line.
 */
async function* fileLines(
  file: string,
  start: number,
  end: number,
): AsyncGenerator<{ first: number; lines: string[] }> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const decode = (bytes: Uint8Array, first: number): string[] => {
    try {
      return decoder.decode(bytes).split('\n');
    } catch (error) {
      let line = first;
      for (let from = 0; from <= bytes.length; line++) {
        let nl = bytes.indexOf(NEWLINE, from);
        if (nl < 0) nl = bytes.length;
        try {
          decoder.decode(bytes.subarray(from, nl));
        } catch {
          break;
        }
        from = nl + 1;
      }
      throw new TextStreamError(file, line + 1, 'invalid UTF-8', { cause: error });
    }
  };
  let line = 0; // the line the next byte belongs to
  // Bytes of the current line when it began in an earlier chunk (copied: the stream may reuse its
  // buffers); null at a line start. A skipped line keeps an empty carry: only its existence counts.
  let carry: Buffer | null = null;
  try {
    for await (const chunk of openLines(file)) {
      let from = 0;
      // Skip: count newlines up to `start`.
      while (line < start) {
        const nl = chunk.indexOf(NEWLINE, from);
        if (nl < 0) break;
        carry = null;
        line++;
        from = nl + 1;
      }
      if (line < start) {
        if (from < chunk.length) carry = Buffer.alloc(0);
        continue;
      }
      const last = chunk.lastIndexOf(NEWLINE);
      if (last >= from) {
        // Lines [line, line + k) end in this chunk: decode them at once, the carried head with them.
        const bytes =
          carry === null
            ? chunk.subarray(from, last)
            : Buffer.concat([carry, chunk.subarray(from, last)]);
        let lines = decode(bytes, line);
        carry = null;
        from = last + 1;
        if (line + lines.length > end) lines = lines.slice(0, end - line);
        const first = line;
        line += lines.length;
        yield { first, lines };
        if (line >= end) return;
      }
      if (from < chunk.length) {
        const rest = chunk.subarray(from);
        carry = carry === null ? Buffer.from(rest) : Buffer.concat([carry, rest]);
      }
    }
  } catch (error) {
    throw streamError(file, line, error);
  }
  if (carry !== null) {
    if (line >= start && line < end) yield { first: line, lines: decode(carry, line) };
    line++;
  }
  if (start > line) {
    throw new TextStreamError(
      file,
      0,
      `position line ${start} is past the end of the file (${line} lines): ` +
        'was the file changed since the position was saved?',
    );
  }
}

/**
 * Counts the lines of a file (gzip or plain) as {@link readParagraphs} numbers them, streaming.
 * Cheap enough to run once per file (about a second per 100 MB); callers cache the result.
 *
 * @throws TextStreamError naming the file.
 */
export async function countLines(file: string): Promise<number> {
  await checkTextFiles([file]);
  const stream = openLines(file);
  let newlines = 0;
  let pending = false;
  try {
    for await (const chunk of stream) {
      if (chunk.length === 0) continue;
      for (let nl = chunk.indexOf(NEWLINE); nl >= 0; nl = chunk.indexOf(NEWLINE, nl + 1)) {
        newlines++;
      }
      pending = chunk[chunk.length - 1] !== NEWLINE;
    }
  } catch (error) {
    throw streamError(file, newlines, error);
  }
  return newlines + (pending ? 1 : 0);
}

function checkPosition(
  value: TextPosition,
  files: readonly string[],
  name: string,
): asserts value is TextPosition {
  const ok =
    value !== null &&
    typeof value === 'object' &&
    Number.isInteger(value.file) &&
    Number.isInteger(value.line) &&
    value.file >= 0 &&
    value.line >= 0 &&
    value.file <= files.length &&
    (value.file < files.length || value.line === 0);
  if (!ok) {
    throw new RangeError(
      `${name} must be { file, line } with file in 0..${files.length} and line ≥ 0 ` +
        `(line 0 when file = ${files.length}), got ${JSON.stringify(value)}`,
    );
  }
}

/** Options of {@link readParagraphs}. */
export interface ReadParagraphsOptions {
  /**
   * Stop before this position (exclusive): lines from it on are not read. Used to keep a
   * held-out tail of the last file out of training (see `heldOutSplit`). Default: the end.
   */
  until?: TextPosition;
}

/**
 * Streams the paragraphs of `files` in order, one per non-blank line, from `from` (default the
 * start) up to `options.until`. Each paragraph's `position` is where the next one is looked for,
 * so `readParagraphs(files, p.position)` continues exactly after paragraph `p`.
 *
 * `.gz` files are gunzipped; other files are read as plain text. Each line must be valid UTF-8
 * (decoded with a fatal decoder: silently replaced bytes would train the model on U+FFFD); a
 * trailing `\r` is dropped.
 *
 * @throws TextStreamError naming the file (and 1-based line) for a missing or unreadable file, a
 *   `.gz` file that is not gzip or whose data is corrupt or truncated, invalid UTF-8, or a `from`
 *   line past the end of its file. All files are opened and checked before anything is yielded.
 * @throws RangeError for a malformed position.
 */
export async function* readParagraphs(
  files: readonly string[],
  from: TextPosition = TEXT_START,
  options: ReadParagraphsOptions = {},
): AsyncGenerator<Paragraph> {
  checkPosition(from, files, 'from');
  const until = options.until ?? { file: files.length, line: 0 };
  checkPosition(until, files, 'until');
  await checkTextFiles(files);
  for (let f = from.file; f < files.length && f <= until.file; f++) {
    const start = f === from.file ? from.line : 0;
    const end = f === until.file ? until.line : Infinity;
    if (start >= end) return;
    for await (const { first, lines } of fileLines(files[f], start, end)) {
      for (let i = 0; i < lines.length; i++) {
        let text = lines[i];
        if (text.endsWith('\r')) text = text.slice(0, -1);
        if (BLANK.test(text)) continue;
        const line = first + i;
        yield { text, at: { file: f, line }, position: { file: f, line: line + 1 } };
      }
    }
  }
}

/** Options of {@link readEpochs}. */
export interface ReadEpochsOptions extends ReadParagraphsOptions {
  /** Passes over the files (default `Infinity`: the caller stops when it has enough). */
  epochs?: number;
}

/**
 * {@link readParagraphs} over and over: pass 0, pass 1, …, each position tagged with its pass, so
 * pretraining can run for more steps than one pass holds and still resume exactly.
 *
 * @throws TextStreamError as {@link readParagraphs}, or when a whole pass finds no paragraph
 *   (otherwise it would loop forever).
 */
export async function* readEpochs(
  files: readonly string[],
  from: EpochPosition = { epoch: 0, ...TEXT_START },
  options: ReadEpochsOptions = {},
): AsyncGenerator<EpochParagraph> {
  const epochs = options.epochs ?? Infinity;
  if (!Number.isInteger(from.epoch) || from.epoch < 0) {
    throw new RangeError(`from.epoch must be an integer ≥ 0, got ${JSON.stringify(from)}`);
  }
  if (!(epochs === Infinity || (Number.isInteger(epochs) && epochs >= 1))) {
    throw new RangeError(`epochs must be a positive integer or Infinity, got ${epochs}`);
  }
  for (let epoch = from.epoch; epoch < epochs; epoch++) {
    const start = epoch === from.epoch ? { file: from.file, line: from.line } : TEXT_START;
    let any = false;
    for await (const p of readParagraphs(files, start, options)) {
      any = true;
      yield { text: p.text, at: { epoch, ...p.at }, position: { epoch, ...p.position } };
    }
    if (!any && start.file === 0 && start.line === 0) {
      throw new Error(`no paragraph to read in ${files.length} file(s): ${files.join(', ')}`);
    }
  }
}
