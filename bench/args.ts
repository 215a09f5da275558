/** Command-line options shared by the benchmark entry points (scripts/bench, test/gpu). */
import os from 'node:os';
import { parseArgs } from 'node:util';

import { DEVICE_NAMES, parseDevice } from '../lib/device.js';
import type { BenchOptions } from './common.js';
import { defaultPython } from './python.js';

export interface ParsedBenchArgs extends BenchOptions {
  /** --rounds N: timed rounds per side (each benchmark has its own default). */
  rounds?: number;
  /** --sentences N: how many sentences the inference benchmark reads. */
  sentences?: number;
  /** --steps N: training steps per side. */
  steps?: number;
  /** --only a,b,...: the rows all.ts runs (a…f). */
  only?: string[];
  /** --json PATH: also write the rows (and the run's facts) as JSON. */
  json?: string;
}

function positiveInteger(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`--${name}: expected a positive integer`);
  return n;
}

/**
 * --threads N (default: the available cores), --quick, --python PATH, --device cpu|cuda,
 * --rounds N, --sentences N, --steps N, --only a,b,c, --json PATH. Unknown options throw.
 */
export function parseBenchArgs(argv: string[] = process.argv.slice(2)): ParsedBenchArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      threads: { type: 'string' },
      quick: { type: 'boolean', default: false },
      python: { type: 'string' },
      device: { type: 'string', default: 'cpu' },
      rounds: { type: 'string' },
      sentences: { type: 'string' },
      steps: { type: 'string' },
      only: { type: 'string' },
      json: { type: 'string' },
    },
    strict: true,
  });
  const device = values.device ?? 'cpu';
  if (parseDevice(device) === null) {
    throw new TypeError(`--device: expected ${DEVICE_NAMES}, got ${device}`);
  }
  return {
    threads: positiveInteger(values.threads, 'threads') ?? os.availableParallelism(),
    quick: values.quick ?? false,
    python: values.python ?? defaultPython(device),
    device,
    rounds: positiveInteger(values.rounds, 'rounds'),
    sentences: positiveInteger(values.sentences, 'sentences'),
    steps: positiveInteger(values.steps, 'steps'),
    only: values.only?.split(',').map((s) => s.trim().toLowerCase()),
    json: values.json,
  };
}
