import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { native, packageRoot } from '../lib/native.js';
import {
  distGroupOptions,
  readDistEnv,
  workerDevice,
  type DistEnv,
} from '../lib/train/dist-env.js';
import {
  checkLaunchFlags,
  findFreePort,
  launch,
  localWorkers,
  parseLaunchArgs,
  WorkerFailedError,
  type LaunchResult,
} from '../lib/train/launch.js';
import { inputFor, SIZES } from './fixtures/dist-worker.js';

const WORKER = path.join(packageRoot, 'test', 'fixtures', 'dist-worker.ts');

/** Collects forwarded output as lines. */
class Sink {
  readonly lines: string[] = [];
  write(text: string): void {
    this.lines.push(...text.split('\n').filter((line) => line !== ''));
  }
}

interface Run {
  out: Sink;
  err: Sink;
  result?: LaunchResult;
  error?: unknown;
  ms: number;
}

/** Launches `nproc` fixture workers on 127.0.0.1 (a free port) and waits for them. */
async function runWorkers(nproc: number, args: string[], graceMs?: number): Promise<Run> {
  const run: Run = { out: new Sink(), err: new Sink(), ms: 0 };
  const start = Date.now();
  try {
    run.result = await launch({
      flags: checkLaunchFlags({ nproc, masterAddr: '127.0.0.1' }),
      module: WORKER,
      args,
      execArgv: ['--import', 'tsx'],
      cwd: packageRoot,
      output: { stdout: run.out, stderr: run.err },
      graceMs,
    });
  } catch (error) {
    run.error = error;
  }
  run.ms = Date.now() - start;
  return run;
}

/** The `[rank N] TAG {json}` lines of a run, by rank; the prefix must match the payload's rank. */
function records<T extends { rank: number }>(lines: string[], tag: string): Map<number, T> {
  const out = new Map<number, T>();
  for (const line of lines) {
    const match = /^\[rank (\d+)\] (\w+) (.*)$/.exec(line);
    if (!match || match[2] !== tag) continue;
    const record = JSON.parse(match[3]) as T;
    expect(record.rank).toBe(Number(match[1]));
    out.set(record.rank, record);
  }
  return out;
}

interface CollectivesResult {
  rank: number;
  worldSize: number;
  backend: string;
  device: string;
  means: number[][];
  fromRoot: number[][];
  fromLast: number[];
  sums: number[];
  maxima: number[];
  waitedMs: number;
  ordered: unknown[];
  afterDestroy: string;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('DistGroup over Gloo, through the launcher', () => {
  it.each([2, 3])('%i workers agree on every collective', async (nproc) => {
    const run = await runWorkers(nproc, ['collectives', '4096']);
    expect(run.error, run.err.lines.join('\n')).toBeUndefined();
    expect(run.result?.workers.map((w) => [w.rank, w.code])).toEqual(
      range(nproc).map((r) => [r, 0]),
    );
    for (const line of [...run.out.lines, ...run.err.lines]) expect(line).toMatch(/^\[rank \d+\] /);
    const results = records<CollectivesResult>(run.out.lines, 'RESULT');
    expect([...results.keys()].sort()).toEqual(range(nproc));

    // The mean over ranks, computed here from the same inputs, across 4 KiB buckets: tensors of
    // 4099 and 2500 floats are larger than a bucket, others share one.
    const inputs = range(nproc).map(inputFor);
    const expected = SIZES.map((size, t) =>
      range(size).map((i) => inputs.reduce((sum, input) => sum + input[t][i], 0) / nproc),
    );
    for (const result of results.values()) {
      expect(result.worldSize).toBe(nproc);
      expect(result.backend).toBe('gloo');
      expect(result.device).toBe('cpu');
      expect(result.means.map((m) => m.length)).toEqual(SIZES);
      let worst = 0;
      result.means.forEach((mean, t) =>
        mean.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - expected[t][i])))),
      );
      expect(worst).toBeLessThan(1e-5);

      expect(result.fromRoot).toEqual([
        [0, 0.5],
        [0, 0, 0],
      ]);
      expect(result.fromLast).toEqual([(nproc - 1) * 10]);
      const sum = (f: (r: number) => number) => range(nproc).reduce((s, r) => s + f(r), 0);
      expect(result.sums).toEqual([sum((r) => r), nproc, sum((r) => r * r), nproc / 2]);
      expect(result.maxima).toEqual([nproc - 1, 5]);
      // Rank 0 slept 400 ms before the barrier; nobody left it before rank 0 arrived.
      if (result.rank !== 0) expect(result.waitedMs).toBeGreaterThanOrEqual(300);
      expect(result.ordered[0]).toEqual([sum((r) => r)]);
      expect((result.ordered[1] as number[])[0]).toBeCloseTo(sum((r) => r) / nproc, 6);
      expect(result.ordered.slice(2)).toEqual([[nproc, 2 * nproc], null, [2 * (nproc - 1)]]);
      expect(result.afterDestroy).toMatch(/destroyed/);
    }
  });

  it('a worker that dies makes the others fail fast, and the launcher names it', async () => {
    // A long grace: the survivors must stop by themselves, from their own collective's error.
    const run = await runWorkers(3, ['die'], 30_000);
    expect(run.error).toBeInstanceOf(WorkerFailedError);
    const error = run.error as WorkerFailedError;
    expect(error.message).toMatch(/rank 2 \(local rank 2 on node 0\) exited with code 3/);
    expect([error.rank, error.code, error.signal]).toEqual([2, 3, null]);
    // Ranks 0 and 1 ended on their own (code 1 after their allreduce failed), not killed.
    expect(error.workers.map((w) => [w.rank, w.code, w.stopped])).toEqual([
      [0, 1, false],
      [1, 1, false],
      [2, 3, false],
    ]);
    const failures = records<{ rank: number; ms: number; message: string }>(
      run.out.lines,
      'FAILED',
    );
    expect([...failures.keys()].sort()).toEqual([0, 1]);
    for (const failure of failures.values()) {
      expect(failure.message).toMatch(
        new RegExp(`^koner dist: allreduce on rank ${failure.rank} of 3 .*another worker died`),
      );
      expect(failure.ms).toBeLessThan(15_000);
    }
    console.log(
      `dead worker detected after ${[...failures.values()].map((f) => `${f.ms} ms`).join(', ')}; ` +
        `launch ended after ${run.ms} ms`,
    );
    expect(run.ms).toBeLessThan(60_000);
  });
  it('stops workers that do not notice a failure by themselves', async () => {
    const run = await runWorkers(3, ['stuck'], 500);
    expect(run.error).toBeInstanceOf(WorkerFailedError);
    const error = run.error as WorkerFailedError;
    expect(error.message).toMatch(/rank 2 .*exited with code 4; the job was stopped/);
    expect(error.workers.map((w) => [w.rank, w.code, w.signal, w.stopped])).toEqual([
      [0, null, 'SIGTERM', true],
      [1, null, 'SIGTERM', true],
      [2, 4, null, false],
    ]);
  });
});

describe('DistGroup.connect options', () => {
  const good = { rank: 0, worldSize: 2, masterAddr: '127.0.0.1', masterPort: 29500 };
  const { DistGroup } = native();

  it.each([
    [{ ...good, rank: 2 }, /options\.rank: must be from 0 to worldSize - 1 = 1, got 2/],
    [{ ...good, rank: -1 }, /options\.rank/],
    [{ ...good, worldSize: 0 }, /options\.worldSize/],
    [{ ...good, masterPort: 70000 }, /options\.masterPort: must be an integer from 1 to 65535/],
    [{ ...good, masterPort: 0 }, /options\.masterPort/],
    [{ ...good, masterPort: 1.5 }, /options\.masterPort/],
    [{ ...good, masterAddr: '' }, /options\.masterAddr/],
    [{ ...good, backend: 'mpi' }, /options\.backend: must be 'gloo' or 'nccl', got 'mpi'/],
    [{ ...good, timeoutMs: 0 }, /options\.timeoutMs/],
    [{ ...good, colour: 'red' }, /options\.colour: unknown field/],
    [{ rank: 0, worldSize: 1, masterPort: 1 }, /options\.masterAddr: missing/],
  ])('rejects %o', (options, message) => {
    expect(() => DistGroup.connect(options as never)).toThrow(message);
  });

  it.skipIf(native().compiledWithCuda())('rejects nccl in a build without CUDA', () => {
    expect(() => DistGroup.connect({ ...good, backend: 'nccl' })).toThrow(
      /options\.backend: 'nccl' is unavailable: .*no NCCL/,
    );
  });

  it('cannot be constructed directly', () => {
    const Class = DistGroup as unknown as new () => unknown;
    expect(() => new Class()).toThrow(/DistGroup\.connect/);
  });

  it('gives up on a rendezvous nobody comes to, saying what is missing', async () => {
    const port = await findFreePort();
    const start = Date.now();
    await expect(
      DistGroup.connect({ ...good, rank: 1, masterPort: port, timeoutMs: 1000 }),
    ).rejects.toThrow(/rank 1 of 2 could not reach the rendezvous store at 127\.0\.0\.1:\d+/);
    await expect(DistGroup.connect({ ...good, masterPort: port, timeoutMs: 1000 })).rejects.toThrow(
      /rank 0 of 2 could not (host the rendezvous store|connect to all its peers) .*are all 2 workers started/,
    );
    expect(Date.now() - start).toBeLessThan(15_000);
  });
});

describe('launch flags', () => {
  it('takes torchrun’s flags out of a command line', () => {
    expect(parseLaunchArgs(['--config', 'train.json', '--nproc', '2'])).toEqual({
      flags: { nproc: 2, nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', masterPort: null },
      rest: ['--config', 'train.json'],
    });
    expect(
      parseLaunchArgs([
        '--nproc=4',
        '--nnodes',
        '2',
        '--node_rank=1',
        '--master-addr',
        '10.0.0.5',
        '--master_port',
        '29400',
        'x',
      ]),
    ).toEqual({
      flags: { nproc: 4, nnodes: 2, nodeRank: 1, masterAddr: '10.0.0.5', masterPort: 29400 },
      rest: ['x'],
    });
    expect(parseLaunchArgs(['constructor', '--nproc', '1']).rest).toEqual(['constructor']);
    expect(parseLaunchArgs(['--config', 'c.json'])).toEqual({
      flags: null,
      rest: ['--config', 'c.json'],
    });
  });

  it.each([
    [['--nproc', '0'], /--nproc must be an integer from 1 to 1024, got "0"/],
    [['--nproc', 'two'], /--nproc must be an integer/],
    [['--nproc'], /--nproc needs a value/],
    [['--nproc', '2', '--nproc', '3'], /--nproc is given twice/],
    [['--nproc', '1', '--nnodes', '2'], /--master-addr is required with --nnodes 2/],
    [
      ['--nproc', '1', '--nnodes', '2', '--node-rank', '2', '--master-addr', 'h'],
      /--node-rank must be an integer from 0 to 1/,
    ],
    [
      ['--nproc', '1', '--master-port', '70000'],
      /--master-port must be an integer from 1 to 65535/,
    ],
    [['--node-rank', '1'], /--node-rank need --nproc/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseLaunchArgs(argv)).toThrow(message);
  });

  it('numbers workers across machines as torchrun does', () => {
    const flags = checkLaunchFlags({ nproc: 2, nnodes: 3, nodeRank: 1, masterAddr: 'n0' });
    expect(localWorkers(flags)).toEqual([
      { rank: 2, localRank: 0 },
      { rank: 3, localRank: 1 },
    ]);
  });
});

describe('worker environment', () => {
  const env = {
    KONER_RANK: '3',
    KONER_LOCAL_RANK: '1',
    KONER_WORLD_SIZE: '4',
    KONER_LOCAL_WORLD_SIZE: '2',
    KONER_NODE_RANK: '1',
    KONER_MASTER_ADDR: 'n0',
    KONER_MASTER_PORT: '29500',
  };
  const job: DistEnv = {
    rank: 3,
    localRank: 1,
    worldSize: 4,
    localWorldSize: 2,
    nodeRank: 1,
    masterAddr: 'n0',
    masterPort: 29500,
  };

  it('reads the launcher’s variables, or none', () => {
    expect(readDistEnv(env)).toEqual(job);
    expect(readDistEnv({})).toBeNull();
    expect(() => readDistEnv({ ...env, KONER_MASTER_PORT: undefined })).toThrow(
      /KONER_MASTER_PORT not set/,
    );
    expect(() => readDistEnv({ ...env, KONER_RANK: '4' })).toThrow(
      /KONER_RANK must be an integer from 0 to 3, got "4"/,
    );
  });

  it('gives each worker its GPU and backend', () => {
    expect(workerDevice('cuda', job)).toBe('cuda:1');
    expect(workerDevice('cpu', job)).toBe('cpu');
    expect(() => workerDevice('cuda:0', job)).toThrow(/use device "cuda"/);
    expect(distGroupOptions(job, 'cuda:1', 5000)).toEqual({
      rank: 3,
      worldSize: 4,
      masterAddr: 'n0',
      masterPort: 29500,
      backend: 'nccl',
      timeoutMs: 5000,
      cudaDevice: 1,
    });
    expect(distGroupOptions(job, 'cpu').backend).toBe('gloo');
  });
});
