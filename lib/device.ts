/**
 * Device names, parsed once for the TypeScript side: `'cpu'`, `'cuda'` (the current GPU) or
 * `'cuda:N'`. Whether such a device exists is the addon's to say (binding/napi/args.cc parses the
 * same names and checks them against the machine).
 */

/** A device name taken apart. */
export type Device = { kind: 'cpu' } | { kind: 'cuda'; index: number | null };

/** The device names as a JSON Schema `pattern` (the configs' `device` field). */
export const DEVICE_PATTERN = '^(cpu|cuda(:(0|[1-9][0-9]{0,2}))?)$';
const DEVICE_RE = new RegExp(DEVICE_PATTERN);

/** `name` taken apart, or null when it is not `cpu`, `cuda` or `cuda:N`. */
export function parseDevice(name: unknown): Device | null {
  const m = typeof name === 'string' ? DEVICE_RE.exec(name) : null;
  if (m === null) return null;
  if (m[1] === 'cpu') return { kind: 'cpu' };
  return { kind: 'cuda', index: m[3] === undefined ? null : Number(m[3]) };
}

/** What a refusal says a device must be. */
export const DEVICE_NAMES = "'cpu', 'cuda' or 'cuda:N'";
