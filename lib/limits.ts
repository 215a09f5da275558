/**
 * Limits that every layer shares, written once: the model API, the command line and the HTTP
 * server check against these (the server may be configured lower, never higher).
 */
export const LIMITS = {
  /** Most tag paths one text may ask for: each costs a Viterbi pass and T × K of memory. */
  maxNBest: 100,
} as const;
