/** Thrown by `Tokenizer.load` when a tokenizer file is missing, unreadable or malformed. */
export class TokenizerLoadError extends Error {
  override name = 'TokenizerLoadError';

  /**
   * @param file the path (or label) of the offending file.
   * @param problem what is wrong with it.
   */
  constructor(
    readonly file: string,
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${problem}`, options);
  }
}
