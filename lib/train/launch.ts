/**
 * `koner train --nproc N`: starts N worker processes on this machine, as torchrun does, with the
 * same multi-machine flags (`--nnodes`, `--node-rank`, `--master-addr`, `--master-port`).
 * Worker `localRank` of node `nodeRank` is global rank `nodeRank × nproc + localRank` of
 * `nnodes × nproc`; each gets the job in its environment (lib/train/dist-env.ts), and the
 * workers meet through the TCP store that global rank 0 hosts at the master address and port.
 *
 * The launcher forwards each worker's output line by line with a `[rank N]` prefix. When a
 * worker exits with an error, the others get a short grace period (their collectives fail within
 * moments, and they report it themselves), are then stopped, and the launch fails with an error
 * naming the rank and its exit code or signal.
 *
 * @packageDocumentation
 */
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import readline from 'node:readline';
import type { Readable } from 'node:stream';

import { DIST_ENV_VARS } from './dist-env.js';

/** The launch flags, validated. */
export interface LaunchFlags {
  /** Worker processes on this machine: one per GPU on CUDA, or CPU workers. */
  nproc: number;
  /** Machines in the job (default 1). */
  nnodes: number;
  /** This machine's index, 0 … nnodes − 1 (default 0). */
  nodeRank: number;
  /** Where global rank 0 (on node 0) listens (default 127.0.0.1; required with nnodes > 1). */
  masterAddr: string;
  /** Its port; `null` picks a free one on a single machine, and 29500 across machines. */
  masterPort: number | null;
}

/** torchrun's default master port, used across machines when none is given. */
export const DEFAULT_MASTER_PORT = 29500;

const FLAG_NAMES: Record<string, keyof LaunchFlags> = {
  '--nproc': 'nproc',
  '--nproc-per-node': 'nproc',
  '--nproc_per_node': 'nproc',
  '--nnodes': 'nnodes',
  '--node-rank': 'nodeRank',
  '--node_rank': 'nodeRank',
  '--master-addr': 'masterAddr',
  '--master_addr': 'masterAddr',
  '--master-port': 'masterPort',
  '--master_port': 'masterPort',
};

/** The flag users type for a field, for error messages. */
const FLAG_OF: Record<keyof LaunchFlags, string> = {
  nproc: '--nproc',
  nnodes: '--nnodes',
  nodeRank: '--node-rank',
  masterAddr: '--master-addr',
  masterPort: '--master-port',
};

/** Raw flag values: strings from a command line, or numbers from code. */
export type LaunchFlagInput = Partial<Record<keyof LaunchFlags, string | number | null>>;

function integerFlag(
  field: keyof LaunchFlags,
  value: string | number,
  min: number,
  max: number,
): number {
  const n = typeof value === 'number' ? value : /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new Error(
      `${FLAG_OF[field]} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/**
 * Checks and completes launch flags.
 *
 * @throws Error naming the flag (`--node-rank must be …`).
 */
export function checkLaunchFlags(input: LaunchFlagInput): LaunchFlags {
  if (input.nproc === undefined || input.nproc === null) {
    throw new Error(`${FLAG_OF.nproc} is required`);
  }
  const nproc = integerFlag('nproc', input.nproc, 1, 1024);
  const nnodes = input.nnodes == null ? 1 : integerFlag('nnodes', input.nnodes, 1, 65535);
  if (nnodes * nproc > 65535) {
    throw new Error(`--nnodes × --nproc must be at most 65535 workers, got ${nnodes * nproc}`);
  }
  const nodeRank =
    input.nodeRank == null ? 0 : integerFlag('nodeRank', input.nodeRank, 0, nnodes - 1);
  let masterAddr = '127.0.0.1';
  if (input.masterAddr != null) {
    masterAddr = String(input.masterAddr).trim();
    if (masterAddr === '' || /\s/.test(masterAddr)) {
      throw new Error(
        `${FLAG_OF.masterAddr} must be a host name or address, got ${JSON.stringify(input.masterAddr)}`,
      );
    }
  } else if (nnodes > 1) {
    throw new Error(
      `${FLAG_OF.masterAddr} is required with --nnodes ${nnodes}: the address of node 0, ` +
        `which every machine can reach`,
    );
  }
  const masterPort =
    input.masterPort == null ? null : integerFlag('masterPort', input.masterPort, 1, 65535);
  return { nproc, nnodes, nodeRank, masterAddr, masterPort };
}

/**
 * Takes the launch flags out of a command line (`--nproc 2`, `--nproc=2`; torchrun's
 * underscore spellings too) and returns them validated, with the other arguments in order.
 * Without `--nproc`, `flags` is `null`: a single-process run.
 *
 * @throws Error naming the flag when one lacks its value or has a bad one.
 */
export function parseLaunchArgs(argv: readonly string[]): {
  flags: LaunchFlags | null;
  rest: string[];
} {
  const input: LaunchFlagInput = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const field = Object.hasOwn(FLAG_NAMES, name) ? FLAG_NAMES[name] : undefined;
    if (!field) {
      rest.push(arg);
      continue;
    }
    let value: string;
    if (eq > 0 && name !== arg) {
      value = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new Error(`${name} needs a value`);
      value = next;
      i++;
    }
    if (input[field] !== undefined) throw new Error(`${FLAG_OF[field]} is given twice`);
    input[field] = value;
  }
  if (input.nproc === undefined) {
    const stray = (Object.keys(input) as (keyof LaunchFlags)[]).map((f) => FLAG_OF[f]);
    if (stray.length > 0) throw new Error(`${stray.join(', ')} need --nproc`);
    return { flags: null, rest };
  }
  return { flags: checkLaunchFlags(input), rest };
}

/** One worker of this machine. */
export interface LocalWorker {
  rank: number;
  localRank: number;
}

/** This machine's workers: global ranks `nodeRank × nproc` … `nodeRank × nproc + nproc − 1`. */
export function localWorkers(flags: LaunchFlags): LocalWorker[] {
  return Array.from({ length: flags.nproc }, (_, localRank) => ({
    rank: flags.nodeRank * flags.nproc + localRank,
    localRank,
  }));
}

/** A port nobody listens on at `host` now (the OS's pick; free until someone takes it). */
export function findFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no free port found'))));
    });
  });
}

/** Where forwarded output goes (`process.stdout`/`process.stderr` by default). */
export interface LaunchOutput {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/** Options of {@link launch}. */
export interface LaunchOptions {
  flags: LaunchFlags;
  /** The worker module (a path), run with `child_process.fork`. */
  module: string;
  /** Its arguments. */
  args?: string[];
  /** Node options of the workers (default: this process's `execArgv`, as fork does). */
  execArgv?: string[];
  /** Added to this process's environment; the job's variables are set over it. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  output?: LaunchOutput;
  /**
   * After a worker fails, how long the others may take to stop on their own (default 3000 ms)
   * before they get SIGTERM, and SIGKILL as long again after that.
   */
  graceMs?: number;
}

/** How a worker ended. */
export interface WorkerExit extends LocalWorker {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the launcher stopped it (after another worker failed, or on an interrupt). */
  stopped: boolean;
}

/** A launch whose workers all exited with code 0. */
export interface LaunchResult {
  masterAddr: string;
  masterPort: number;
  workers: WorkerExit[];
}

function describeExit(exit: Pick<WorkerExit, 'code' | 'signal'>): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/** The launch failed: `rank` is the first worker that exited with an error. */
export class WorkerFailedError extends Error {
  readonly rank: number;
  readonly localRank: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Every local worker's end, in local-rank order. */
  readonly workers: WorkerExit[];

  constructor(failed: WorkerExit, workers: WorkerExit[], nodeRank: number) {
    super(
      `koner train: rank ${failed.rank} (local rank ${failed.localRank} on node ${nodeRank}) ` +
        `${describeExit(failed)}; the job was stopped`,
    );
    this.name = 'WorkerFailedError';
    this.rank = failed.rank;
    this.localRank = failed.localRank;
    this.code = failed.code;
    this.signal = failed.signal;
    this.workers = workers;
  }
}

// Copies a worker's stream to `sink` line by line, each line prefixed (a last line without a
// newline still comes out whole when the stream ends).
function forward(stream: Readable | null, sink: { write(text: string): unknown }, prefix: string) {
  if (!stream) return;
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  lines.on('line', (line) => sink.write(`${prefix}${line}\n`));
}

/**
 * Runs this machine's workers of a job and settles when all have ended.
 *
 * @returns the master address and port and every worker's exit, when all exited with code 0.
 * @throws WorkerFailedError naming the first worker that exited with another code or a signal
 *   (the others were stopped); Error when the launcher itself was interrupted (SIGINT/SIGTERM).
 */
export async function launch(options: LaunchOptions): Promise<LaunchResult> {
  const flags = checkLaunchFlags(options.flags);
  const masterPort =
    flags.masterPort ??
    (flags.nnodes === 1 ? await findFreePort(flags.masterAddr) : DEFAULT_MASTER_PORT);
  const output = options.output ?? { stdout: process.stdout, stderr: process.stderr };
  const graceMs = options.graceMs ?? 3000;
  const workers = localWorkers(flags);

  return new Promise<LaunchResult>((resolve, reject) => {
    const exits: (WorkerExit | undefined)[] = workers.map(() => undefined);
    const children: ChildProcess[] = [];
    const signalled = new Set<number>();
    const timers: NodeJS.Timeout[] = [];
    let failed: WorkerExit | undefined;
    let interrupted: NodeJS.Signals | undefined;
    let stopping = false;
    let open = workers.length;

    const signalAll = (signal: NodeJS.Signals) => {
      children.forEach((child, i) => {
        if (exits[i] !== undefined) return;
        signalled.add(i);
        child.kill(signal);
      });
    };
    // The survivors of a failure usually stop by themselves within moments (their collectives
    // fail): let them, so that their own error reaches the log, then insist.
    const stopAll = () => {
      if (stopping) return;
      stopping = true;
      timers.push(
        setTimeout(() => {
          signalAll('SIGTERM');
          timers.push(setTimeout(() => signalAll('SIGKILL'), graceMs));
        }, graceMs),
      );
    };
    const onSignal = (signal: NodeJS.Signals) => {
      interrupted ??= signal;
      signalAll('SIGTERM');
      stopAll();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    const finish = () => {
      timers.forEach(clearTimeout);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      const done = exits as WorkerExit[];
      if (failed) reject(new WorkerFailedError(failed, done, flags.nodeRank));
      else if (interrupted) reject(new Error(`koner train: interrupted by ${interrupted}`));
      else resolve({ masterAddr: flags.masterAddr, masterPort, workers: done });
    };
    const ended = (index: number, code: number | null, signal: NodeJS.Signals | null) => {
      if (exits[index] !== undefined) return;
      const exit = { ...workers[index], code, signal, stopped: signalled.has(index) };
      exits[index] = exit;
      if ((code !== 0 || signal) && !failed && !stopping) {
        failed = exit;
        stopAll();
      }
    };

    workers.forEach((worker, index) => {
      const env: Record<string, string | undefined> = {
        ...process.env,
        ...options.env,
        [DIST_ENV_VARS.rank]: String(worker.rank),
        [DIST_ENV_VARS.localRank]: String(worker.localRank),
        [DIST_ENV_VARS.worldSize]: String(flags.nnodes * flags.nproc),
        [DIST_ENV_VARS.localWorldSize]: String(flags.nproc),
        [DIST_ENV_VARS.nodeRank]: String(flags.nodeRank),
        [DIST_ENV_VARS.masterAddr]: flags.masterAddr,
        [DIST_ENV_VARS.masterPort]: String(masterPort),
      };
      const child = fork(options.module, options.args ?? [], {
        env,
        cwd: options.cwd,
        execArgv: options.execArgv ?? process.execArgv,
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      });
      children.push(child);
      const prefix = `[rank ${worker.rank}] `;
      forward(child.stdout, output.stdout, prefix);
      forward(child.stderr, output.stderr, prefix);
      // 'exit' orders the failures (the first is the cause); 'close' follows once the output is
      // flushed too, and also ends a worker that could not be started ('error' without 'exit').
      child.once('exit', (code, signal) => ended(index, code, signal));
      child.on('error', (error) => output.stderr.write(`${prefix}${error.message}\n`));
      child.once('close', (code, signal) => {
        ended(index, code, signal);
        if (--open === 0) finish();
      });
    });
  });
}
