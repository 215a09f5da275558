/** Facts about the LibTorch runtime under koner, and its thread setting. */
import { native, type NativeCpuFeatures } from './native.js';

export interface RuntimeInfo {
  /** LibTorch's version, e.g. `1.13.0`. */
  torchVersion: string;
  /** Whether this addon was built against a CUDA LibTorch with koner's CUDA kernels. */
  compiledWithCuda: boolean;
  /** Whether a CUDA device can be used now. */
  cudaAvailable: boolean;
  /** How many CUDA devices are visible (0 without CUDA). */
  cudaDeviceCount: number;
  /** LibTorch's intra-op thread count for koner's work. */
  threads: number;
  /**
   * The CPU's reduced-precision features, read at run time (`avx512Bf16` or `amxBf16`: what
   * `dtype: 'bfloat16'` on the CPU needs), and whether the encoder's inference runs on oneDNN's
   * primitives (an addon built with libdnnl-dev).
   */
  cpu: NativeCpuFeatures;
}

export function runtimeInfo(): RuntimeInfo {
  const addon = native();
  return {
    torchVersion: addon.version(),
    compiledWithCuda: addon.compiledWithCuda(),
    cudaAvailable: addon.cudaAvailable(),
    cudaDeviceCount: addon.cudaDeviceCount(),
    threads: addon.getNumThreads(),
    cpu: addon.cpuFeatures(),
  };
}

/** LibTorch's intra-op thread count (defaults to the number of available cores). */
export function getThreads(): number {
  return native().getNumThreads();
}

/** Sets LibTorch's intra-op thread count for all later work, on every thread. */
export function setThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1 || threads > 4096) {
    throw new TypeError(`threads must be an integer from 1 to 4096, got ${String(threads)}`);
  }
  native().setNumThreads(threads);
}

/**
 * koner's cache of freed tensor memory. LibTorch's CPU tensors of 128 KiB and more come from page
 * mappings that koner keeps by size when a tensor is freed, for the next tensor of that size: a
 * training step frees and allocates the same activations every step, and handing them back to the
 * system costs a page fault per 4 KiB when they return (5× slower pretraining steps).
 */
export interface TensorMemory {
  /** Free blocks kept for reuse. */
  cachedBytes: number;
  /** Blocks that back live tensors (those of 128 KiB and more; smaller ones come from malloc). */
  inUseBytes: number;
  /** The most free bytes the cache keeps (`setTensorCacheLimit`; 1 GiB unless set). */
  limitBytes: number;
  /** Allocations served from the cache, since the process started. */
  hits: number;
  /** Allocations that mapped new memory. */
  misses: number;
}

export function tensorMemory(): TensorMemory {
  return native().tensorMemory();
}

/**
 * Sets the most free bytes the tensor cache keeps; the longest-unused blocks beyond it are handed
 * back to the system at once. 0 keeps none. Process-wide: `koner train` and `koner pretrain` set a
 * quarter of the machine's memory for their own process; `model.dispose()` empties the cache.
 */
export function setTensorCacheLimit(bytes: number): void {
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new TypeError(`bytes must be a non-negative integer, got ${String(bytes)}`);
  }
  native().setTensorCacheLimit(bytes);
}

/**
 * From now on, every allocation of at least `bytes` gets a mapping of its own from the C library,
 * returned to the system when freed (glibc; elsewhere nothing happens and the result is false).
 * Tensors of 128 KiB and more do not come from the C library (see `tensorMemory`); this governs
 * the rest of the process's large allocations. `MALLOC_MMAP_THRESHOLD_` does the same from outside.
 */
export function releaseLargeAllocations(bytes: number): boolean {
  if (!Number.isInteger(bytes) || bytes < 4096 || bytes > 32 * 1024 * 1024) {
    throw new TypeError(`bytes must be an integer from 4096 to 33554432, got ${String(bytes)}`);
  }
  return native().releaseLargeAllocations(bytes);
}
