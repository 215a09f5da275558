/**
 * The one shape of a `koner` command and its flags: a command is `{ name, summary, usage, run }`;
 * `runCommand` turns what `run` throws into an exit code, the same way for every command. A bad
 * command line (an unknown flag, a bad value, a missing argument) prints the message and the
 * command's usage and exits 2; a config that fails validation exits 2 with its message; anything
 * else exits 1 with its message.
 */

/** A `koner` subcommand. */
export interface CliCommand {
  name: string;
  /** One line for `koner help`. */
  summary: string;
  usage: string;
  /** Runs the command on its arguments (after the name); resolves with the exit code. */
  run(argv: string[]): Promise<number>;
}

/** A bad command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure with an exit code of its own (2 for a config that fails validation), no usage. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CommandError';
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

/** An optional integer flag: `fallback` when absent. @throws {UsageError} for a bad value */
export function optionalIntegerFlag<T extends number | undefined>(
  value: string | undefined,
  flag: string,
  fallback: T,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number | T {
  return value === undefined ? fallback : integerFlag(value, flag, min, max);
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

/** Refuses positional arguments where a command takes none. @throws {UsageError} */
export function noPositionals(positionals: readonly string[]): void {
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
}

/** Whether the arguments ask for help (`--help` or `-h` before any `--`). */
function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** Runs a command: its usage for `--help`, else `run`, with errors as exit codes. Never rejects. */
export async function runCommand(command: CliCommand, argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    console.log(command.usage);
    return 0;
  }
  try {
    return await command.run(argv);
  } catch (error) {
    const e = error as Error & { code?: string };
    if (e instanceof UsageError || e.code?.startsWith('ERR_PARSE_ARGS_')) {
      console.error(`koner ${command.name}: ${e.message}\n\n${command.usage}`);
      return 2;
    }
    console.error(`koner ${command.name}: ${e.message}`);
    return e instanceof CommandError ? e.exitCode : 1;
  }
}
