/** Flag parsing helpers and the exit-code convention shared by `koner tag`, `eval` and `serve`. */

/** A bad command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** An integer flag value in `[min, max]`. @throws {UsageError} otherwise */
export function integerFlag(
  value: string,
  flag: string,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`${flag} expects an integer ${range}, got '${value}'`);
  }
  return n;
}

/** One of `allowed`. @throws {UsageError} otherwise */
export function choiceFlag<T extends string>(
  value: string,
  flag: string,
  allowed: readonly T[],
): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`${flag} expects one of ${allowed.join(', ')}, got '${value}'`);
  }
  return value as T;
}

/**
 * Runs a command and turns what it throws into an exit code: 2 with the usage for a bad command
 * line (a {@link UsageError}, or an unknown or malformed flag from `util.parseArgs`), 1 with the
 * message for anything else. Never rejects.
 */
export async function runCommand(
  name: string,
  usage: string,
  command: () => Promise<number>,
): Promise<number> {
  try {
    return await command();
  } catch (error) {
    const e = error as Error & { code?: string };
    if (e instanceof UsageError || e.code?.startsWith('ERR_PARSE_ARGS_')) {
      console.error(`koner ${name}: ${e.message}\n\n${usage}`);
      return 2;
    }
    console.error(`koner ${name}: ${e.message}`);
    return 1;
  }
}
