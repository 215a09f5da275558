import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { describe, expect, it } from 'vitest';

import { getThreads, runtimeInfo, setThreads } from '../lib/index.js';
import { trainingTensorCache } from '../lib/cli/training-command.js';
import { native } from '../lib/native.js';
import { releaseLargeAllocations, setTensorCacheLimit, tensorMemory } from '../lib/runtime.js';

describe('runtime facts', () => {
  it('reports the LibTorch version the Python oracle also has', () => {
    const info = runtimeInfo();
    expect(info.torchVersion).toMatch(/^\d+\.\d+\.\d+/);
    const python = execFileSync('/usr/bin/python3', [
      '-c',
      'import torch; print(torch.__version__)',
    ])
      .toString()
      .trim();
    expect(info.torchVersion.split('.').slice(0, 2)).toEqual(python.split('.').slice(0, 2));
  });

  it('reports CUDA consistently', () => {
    const info = runtimeInfo();
    expect(typeof info.cudaAvailable).toBe('boolean');
    expect(Number.isInteger(info.cudaDeviceCount)).toBe(true);
    expect(info.cudaAvailable).toBe(info.cudaDeviceCount > 0);
  });

  it.runIf(process.platform === 'linux' && process.arch === 'x64')(
    "reads the CPU's reduced-precision features at run time, as the kernel lists them",
    () => {
      const flags = new Set(
        (/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').split(/\s+/),
      );
      const { cpu } = runtimeInfo();
      expect(cpu.avx512Bf16).toBe(flags.has('avx512_bf16'));
      expect(cpu.avx512Vnni).toBe(flags.has('avx512_vnni'));
      expect(cpu.amxBf16).toBe(flags.has('amx_bf16'));
      expect(cpu.amxInt8).toBe(flags.has('amx_int8'));
    },
  );

  it('reports the encoder on oneDNN primitives (setup installs libdnnl-dev)', () => {
    expect(runtimeInfo().cpu.onednnPrimitives).toBe(true);
  });
});

describe('threads', () => {
  it('defaults to the number of available cores, not LibTorch’s 1', async () => {
    expect(getThreads()).toBe(os.availableParallelism());
    expect(await native().testing.workerThreads()).toBe(os.availableParallelism());
  });

  it('applies a new count on the JS thread and on worker threads', async () => {
    const before = getThreads();
    try {
      setThreads(1);
      expect(getThreads()).toBe(1);
      expect(await native().testing.workerThreads()).toBe(1);
      setThreads(3);
      expect(getThreads()).toBe(3);
      expect(await native().testing.workerThreads()).toBe(3);
    } finally {
      setThreads(before);
    }
  });

  it.each([0, -1, 1.5, NaN, 5000, '2'])('rejects %s', (bad) => {
    expect(() => setThreads(bad as number)).toThrow(TypeError);
    expect(() => native().setNumThreads(bad as number)).toThrow(TypeError);
  });
});

describe('LibTorch errors reach JS', () => {
  const a = Float32Array.from([1, 2, 3, 4, 5, 6]); // 2×3
  const b = Float32Array.from([1, 0, 0, 1, 1, 1]); // 3×2 or 2×3

  it('computes a product synchronously and on a worker', async () => {
    const expected = [4, 5, 10, 11];
    expect(Array.from(native().testing.matmul(a, [2, 3], b, [3, 2]))).toEqual(expected);
    expect(Array.from(await native().testing.matmulAsync(a, [2, 3], b, [3, 2]))).toEqual(expected);
  });

  it('throws a shape mismatch as an Error without the C++ backtrace (sync)', () => {
    let error: unknown;
    try {
      native().testing.matmul(a, [2, 3], b, [2, 3]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    expect(message).toMatch(/cannot be multiplied \(2x3 and 2x3\)/);
    expect(message).not.toMatch(/Exception raised from|frame #/);
  });

  it('rejects a shape mismatch as an Error without the C++ backtrace (worker)', async () => {
    const promise = native().testing.matmulAsync(a, [2, 3], b, [2, 3]);
    await expect(promise).rejects.toBeInstanceOf(Error);
    await expect(promise).rejects.toThrow(/cannot be multiplied \(2x3 and 2x3\)/);
    await promise.catch((e: Error) =>
      expect(e.message).not.toMatch(/Exception raised from|frame #/),
    );
    // The process is still healthy after both errors.
    expect(
      Array.from(native().testing.matmul(a, [1, 6], Float32Array.of(1, 1, 1, 1, 1, 1), [6, 1])),
    ).toEqual([21]);
  });

  it('validates typed-array arguments before any tensor work', async () => {
    expect(() => native().testing.matmul(a, [2, 2], b, [3, 2])).toThrow(
      /a: shape \[2, 2\] needs 4 values, got 6/,
    );
    expect(() =>
      native().testing.matmul([1, 2] as unknown as Float32Array, [2], b, [2, 3]),
    ).toThrow(/a: expected a Float32Array/);
    expect(() => native().testing.matmul(a, [2, -3], b, [3, 2])).toThrow(/aShape: dimension 1/);
    expect(() => native().testing.matmulAsync(a, [2, 3], b, [7])).toThrow(
      /b: shape \[7\] needs 7 values, got 6/,
    );
  });
});

describe('large allocations', () => {
  it('get their own mapping from glibc, and the argument is checked', () => {
    const glibc = Boolean(
      (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)
        ?.header?.glibcVersionRuntime,
    );
    expect(releaseLargeAllocations(1 << 20)).toBe(glibc);
    expect(() => releaseLargeAllocations(0)).toThrow(
      /bytes must be an integer from 4096 to 33554432, got 0/,
    );
    expect(() => releaseLargeAllocations(8192.5)).toThrow(/got 8192\.5/);
  });
});

describe('tensor memory', () => {
  const KiB = 1024;
  const MiB = 1024 * KiB;
  const allocate = (bytes: number): bigint => native().testing.allocate(bytes);

  it('hands a freed block to the next tensor of its size, or up to two size classes smaller', () => {
    const limit = tensorMemory().limitBytes;
    expect(limit).toBe(2 ** 30);
    try {
      const first = allocate(512 * KiB);
      const before = tensorMemory();
      expect(before.cachedBytes).toBeGreaterThanOrEqual(512 * KiB);
      expect(allocate(512 * KiB)).toBe(first);
      expect(allocate(480 * KiB)).toBe(first); // 6% smaller: the same block
      const after = tensorMemory();
      expect(after.hits - before.hits).toBe(2);
      expect(after.misses).toBe(before.misses);
      expect(after.inUseBytes).toBe(before.inUseBytes);
      // A quarter of the size: no block within two classes, so new memory.
      allocate(128 * KiB);
      expect(tensorMemory().misses).toBe(after.misses + 1);
      // Below 128 KiB tensors come from malloc and never reach the cache.
      allocate(64 * KiB);
      expect(tensorMemory()).toMatchObject({ hits: after.hits, misses: after.misses + 1 });
    } finally {
      setTensorCacheLimit(limit);
    }
  });

  it('keeps at most its limit, handing the longest-unused blocks back', () => {
    const limit = tensorMemory().limitBytes;
    try {
      setTensorCacheLimit(0);
      expect(tensorMemory()).toMatchObject({ cachedBytes: 0, limitBytes: 0 });
      const before = tensorMemory();
      allocate(512 * KiB);
      allocate(512 * KiB);
      expect(tensorMemory().misses).toBe(before.misses + 2); // nothing kept between them
      expect(tensorMemory().cachedBytes).toBe(0);

      // Room for one 2 MiB block (its class: 2 MiB + 256 KiB) and no more: the 512 KiB block,
      // freed first, goes when the 2 MiB one is freed, and the next 512 KiB tensor maps anew.
      setTensorCacheLimit(2.5 * MiB);
      allocate(512 * KiB);
      const big = allocate(2 * MiB);
      expect(tensorMemory().cachedBytes).toBe(2.25 * MiB);
      const full = tensorMemory();
      expect(allocate(2 * MiB)).toBe(big);
      allocate(512 * KiB);
      expect(tensorMemory().hits).toBe(full.hits + 1);
      expect(tensorMemory().misses).toBe(full.misses + 1);
      expect(tensorMemory().cachedBytes).toBeLessThanOrEqual(2.5 * MiB);
    } finally {
      setTensorCacheLimit(limit);
    }
  });

  it('is a quarter of the memory for the training commands, and the limit is checked', () => {
    expect(trainingTensorCache()).toBe(Math.floor(os.totalmem() / 4));
    expect(() => setTensorCacheLimit(-1)).toThrow(/bytes must be a non-negative integer, got -1/);
    expect(() => setTensorCacheLimit(1.5)).toThrow(/got 1\.5/);
    expect(() => setTensorCacheLimit(Number.NaN)).toThrow(/got NaN/);
    expect(() => native().setTensorCacheLimit('1' as unknown as number)).toThrow(
      /bytes: must be a non-negative integer/,
    );
  });
});
