/**
 * Text files as koner reads them: UTF-8, a leading byte-order mark dropped (editors on Windows
 * write one), and invalid UTF-8 never replaced silently: an error naming the file and line, or,
 * where the caller is lenient, a warning and U+FFFD in place of the bad bytes.
 */
import { isUtf8 } from 'node:buffer';
import { readFile } from 'node:fs/promises';
import { Transform } from 'node:stream';

/** Bytes that are not UTF-8, at `line` (1-based) of `file`. */
export class InvalidUtf8Error extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly offset: number,
  ) {
    super(`${file}:${line}: ${InvalidUtf8Error.reason(offset)}`);
    this.name = 'InvalidUtf8Error';
  }

  static reason(offset: number): string {
    return `invalid UTF-8 at byte ${offset}; save the file as UTF-8`;
  }
}

export interface TextReadOptions {
  /** Replace invalid bytes with U+FFFD and warn instead of throwing. */
  lenient?: boolean;
  /** Receives the lenient warning (default: console.warn of its message). */
  onWarning?: (warning: InvalidUtf8Error) => void;
}

/** The byte offset of the first invalid UTF-8 sequence, or -1 when there is none. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  if (isUtf8(bytes)) return -1;
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i];
    const n =
      b < 0x80
        ? 1
        : b >= 0xc2 && b < 0xe0
          ? 2
          : b >= 0xe0 && b < 0xf0
            ? 3
            : b >= 0xf0 && b < 0xf5
              ? 4
              : 0;
    if (n === 0 || i + n > bytes.length) return i;
    for (let k = 1; k < n; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return i;
    // Overlong forms, surrogates and code points past U+10FFFF.
    const b1 = bytes[i + 1];
    if ((b === 0xe0 && b1 < 0xa0) || (b === 0xed && b1 >= 0xa0)) return i;
    if ((b === 0xf0 && b1 < 0x90) || (b === 0xf4 && b1 >= 0x90)) return i;
    i += n;
  }
  return -1;
}

function lineOf(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

/**
 * Decodes UTF-8 bytes read from `file` (the name is for messages), without a leading BOM.
 *
 * @throws {InvalidUtf8Error} for invalid bytes, unless `lenient`
 */
export function decodeText(bytes: Uint8Array, file: string, options: TextReadOptions = {}): string {
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0) {
    const error = new InvalidUtf8Error(file, lineOf(bytes, bad), bad);
    if (!options.lenient) throw error;
    error.message += '; bad bytes read as U+FFFD';
    if (options.onWarning) options.onWarning(error);
    else console.warn(error.message);
  }
  // The decoder drops a leading BOM (ignoreBOM: false) and, when lenient, replaces bad bytes.
  return new TextDecoder('utf-8').decode(bytes);
}

/** Reads a UTF-8 text file; see {@link decodeText}. */
export async function readTextFile(file: string, options: TextReadOptions = {}): Promise<string> {
  return decodeText(await readFile(file), file, options);
}

/**
 * Reads and parses a JSON file (BOM allowed, invalid UTF-8 refused).
 *
 * @throws Error naming the file: unreadable, not UTF-8 or not JSON
 */
export async function readJsonFile(file: string, what = 'the file'): Promise<unknown> {
  let text: string;
  try {
    text = await readTextFile(file);
  } catch (error) {
    if (error instanceof InvalidUtf8Error) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new Error(`${file}: cannot read ${what} (${code})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message})`);
  }
}

/**
 * A stream stage that passes UTF-8 through and checks it on the way, for input too large to read
 * whole (`koner tag` on stdin): invalid bytes fail the stream with an {@link InvalidUtf8Error}
 * naming the line, or, when `lenient`, are read as U+FFFD with a warning.
 */
export function checkUtf8Stream(file: string, options: TextReadOptions = {}): Transform {
  let pending: Buffer = Buffer.alloc(0);
  let line = 1;
  let offset = 0; // of pending[0] in the stream
  const decoder = new TextDecoder('utf-8');
  const pass = (bytes: Buffer, final: boolean): string => {
    // A sequence cut by the chunk's end waits for the next chunk.
    const end = final ? bytes.length : completeLength(bytes);
    const part = bytes.subarray(0, end);
    const bad = firstInvalidUtf8(part);
    if (bad >= 0) {
      const error = new InvalidUtf8Error(file, line + newlines(part, bad), offset + bad);
      if (!options.lenient) throw error;
      error.message += '; bad bytes read as U+FFFD';
      if (options.onWarning) options.onWarning(error);
      else console.warn(error.message);
    }
    line += newlines(part, part.length);
    offset += end;
    pending = Buffer.from(bytes.subarray(end));
    return decoder.decode(part, { stream: !final });
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      try {
        done(null, pass(pending.length ? Buffer.concat([pending, chunk]) : chunk, false));
      } catch (error) {
        done(error as Error);
      }
    },
    flush(done) {
      try {
        done(null, pass(pending, true));
      } catch (error) {
        done(error as Error);
      }
    },
  });
}

function newlines(bytes: Uint8Array, end: number): number {
  let n = 0;
  for (let i = 0; i < end; i++) if (bytes[i] === 0x0a) n++;
  return n;
}

/** The length of `bytes` without an incomplete sequence at its end. */
function completeLength(bytes: Uint8Array): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back];
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? bytes.length - back : bytes.length;
  }
  return bytes.length;
}
