/**
 * The storage flag of the packing scripts (package-model.ts, ensemble-model.ts): weights as
 * float16 unless `--int8` (int8 rows, a scale per row: half the size) or `--int4` (int4 groups, a
 * float16 scale per 128 values: about a quarter) is the first argument. binding/io/
 * quantized_rows.h defines both layouts; koner reads them back as float32.
 */
import type { ConvertOptions } from '../lib/native.js';

const FLAGS = {
  '--int8': { dtype: 'int8', label: 'int8 rows' },
  '--int4': { dtype: 'int4', label: 'int4 groups' },
} as const satisfies Record<string, { dtype: ConvertOptions['dtype']; label: string }>;

export const STORAGE_USAGE = '[--int8 | --int4]';

/** The storage asked for by `args[0]`, and the arguments after the flag. */
export function storageFlag(args: string[]): {
  dtype: NonNullable<ConvertOptions['dtype']>;
  label: string;
  rest: string[];
} {
  const flag = FLAGS[args[0] as keyof typeof FLAGS];
  if (flag) return { ...flag, rest: args.slice(1) };
  return { dtype: 'float16', label: 'float16', rest: args };
}
