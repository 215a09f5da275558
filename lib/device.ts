/**
 * Device names, parsed once for the TypeScript side: `'cpu'`, `'cuda'` (the current GPU) or
 * `'cuda:N'`. Whether such a device exists is the addon's to say (binding/napi/args.cc parses the
 * same names and checks them against the machine).
 */

/** A device name taken apart. */
export type Device = { kind: 'cpu' } | { kind: 'cuda'; index: number | null };

/** `name` taken apart, or null when it is not `cpu`, `cuda` or `cuda:N`. */
export function parseDevice(name: unknown): Device | null {
  if (name === 'cpu') return { kind: 'cpu' };
  if (name === 'cuda') return { kind: 'cuda', index: null };
  const m = typeof name === 'string' ? /^cuda:(0|[1-9]\d{0,2})$/.exec(name) : null;
  return m ? { kind: 'cuda', index: Number(m[1]) } : null;
}

/** What a refusal says a device must be. */
export const DEVICE_NAMES = "'cpu', 'cuda' or 'cuda:N'";
