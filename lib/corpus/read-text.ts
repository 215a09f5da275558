/** A corpus file's text: invalid UTF-8 is a CorpusError naming the line, or a lenient warning. */
import { readFile } from 'node:fs/promises';

import { decodeText, InvalidUtf8Error } from '../text-file.js';
import { CorpusError, type CorpusWarning } from './types.js';

export async function readCorpusText(
  file: string,
  options: { lenient?: boolean; onWarning?: (warning: CorpusWarning) => void } = {},
): Promise<string> {
  const bytes = await readFile(file);
  try {
    return decodeText(bytes, file, {
      lenient: options.lenient,
      onWarning: (w) =>
        (options.onWarning ?? ((c: CorpusWarning) => console.warn(c.message)))({
          file,
          line: w.line,
          message: w.message,
        }),
    });
  } catch (error) {
    if (!(error instanceof InvalidUtf8Error)) throw error;
    throw new CorpusError(file, error.line, InvalidUtf8Error.reason(error.offset));
  }
}
