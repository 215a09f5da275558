/**
 * A training worker's view of a data-parallel job: the environment the launcher
 * (lib/train/launch.ts) gives each worker process, as torchrun gives `RANK`,
 * `LOCAL_RANK`, `WORLD_SIZE`, `MASTER_ADDR` and `MASTER_PORT`, and the DistGroup options and
 * device that follow from it.
 *
 * @packageDocumentation
 */
import { parseDevice } from '../device.js';
import type { DistGroupOptions } from '../native.js';

/** The variables the launcher sets, by field. */
export const DIST_ENV_VARS = {
  rank: 'KONER_RANK',
  localRank: 'KONER_LOCAL_RANK',
  worldSize: 'KONER_WORLD_SIZE',
  localWorldSize: 'KONER_LOCAL_WORLD_SIZE',
  nodeRank: 'KONER_NODE_RANK',
  masterAddr: 'KONER_MASTER_ADDR',
  masterPort: 'KONER_MASTER_PORT',
} as const;

/** This worker's place in the job. */
export interface DistEnv {
  /** Global rank, 0 … worldSize − 1; rank 0 evaluates, logs and saves. */
  rank: number;
  /** Rank on this machine, 0 … localWorldSize − 1: the CUDA device index on GPU machines. */
  localRank: number;
  worldSize: number;
  /** Workers on this machine (`--nproc`). */
  localWorldSize: number;
  nodeRank: number;
  /** Where rank 0 hosts the rendezvous store. */
  masterAddr: string;
  masterPort: number;
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, min: number, max: number): number {
  const text = env[name] ?? '';
  const value = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new Error(
      `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

/**
 * The job this process is a worker of, or `null` when it was not started by the launcher (no
 * `KONER_RANK`, `KONER_WORLD_SIZE`, … at all: a single-process run).
 *
 * @throws Error naming the variable when some are set and others missing or malformed.
 */
export function readDistEnv(env: Env = process.env): DistEnv | null {
  const names = Object.values(DIST_ENV_VARS);
  const missing = names.filter((name) => env[name] === undefined);
  if (missing.length === names.length) return null;
  if (missing.length > 0) {
    throw new Error(
      `incomplete data-parallel environment: ${missing.join(', ')} not set ` +
        `(start workers with \`koner train --nproc N\`)`,
    );
  }
  const worldSize = integer(env, DIST_ENV_VARS.worldSize, 1, 65535);
  const localWorldSize = integer(env, DIST_ENV_VARS.localWorldSize, 1, worldSize);
  const masterAddr = (env[DIST_ENV_VARS.masterAddr] ?? '').trim();
  if (masterAddr === '') throw new Error(`${DIST_ENV_VARS.masterAddr} must not be empty`);
  return {
    rank: integer(env, DIST_ENV_VARS.rank, 0, worldSize - 1),
    localRank: integer(env, DIST_ENV_VARS.localRank, 0, localWorldSize - 1),
    worldSize,
    localWorldSize,
    nodeRank: integer(env, DIST_ENV_VARS.nodeRank, 0, worldSize - 1),
    masterAddr,
    masterPort: integer(env, DIST_ENV_VARS.masterPort, 1, 65535),
  };
}

/**
 * The device a worker trains on: one GPU per worker, the one numbered by its local rank, as
 * torchrun's workers do; the CPU stays the CPU.
 *
 * @throws Error when the configuration names a single GPU (`cuda:N`) for several local workers.
 */
export function workerDevice(device: string, env: DistEnv): string {
  const parsed = parseDevice(device);
  if (parsed?.kind === 'cuda' && parsed.index === null) return `cuda:${env.localRank}`;
  if (parsed?.kind === 'cuda' && env.localWorldSize > 1) {
    throw new Error(
      `device ${device} names one GPU, but ${env.localWorldSize} workers run on this machine: ` +
        `use device "cuda" (each worker takes cuda:<local rank>)`,
    );
  }
  return device;
}

/**
 * Options for `DistGroup.connect`: NCCL between GPUs, Gloo between CPU processes.
 *
 * @param device this worker's device, as {@link workerDevice} returns it.
 * @param timeoutMs how long a collective may wait for the slowest rank (default 30 minutes, as
 *   torch.distributed: the others wait while rank 0 evaluates and saves).
 */
export function distGroupOptions(
  env: DistEnv,
  device: string,
  timeoutMs = 30 * 60 * 1000,
): DistGroupOptions {
  const cuda = /^cuda(?::(\d+))?$/.exec(device);
  return {
    rank: env.rank,
    worldSize: env.worldSize,
    masterAddr: env.masterAddr,
    masterPort: env.masterPort,
    backend: cuda ? 'nccl' : 'gloo',
    timeoutMs,
    ...(cuda ? { cudaDevice: cuda[1] === undefined ? env.localRank : Number(cuda[1]) } : {}),
  };
}

/**
 * Makes this worker exit when its launcher goes away (the IPC channel of `child_process.fork`
 * closes), so that a killed launcher leaves no worker waiting in a collective. Does nothing in a
 * process that was not forked. The channel stays unreferenced: it never keeps a worker alive.
 */
export function exitWithLauncher(env: DistEnv): void {
  if (!process.connected) return;
  process.once('disconnect', () => {
    process.stderr.write(`koner: rank ${env.rank}: the launcher went away; stopping\n`);
    process.exit(1);
  });
  (process.channel as { unref?: () => void } | undefined)?.unref?.();
}
