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
 * From now on, every allocation of at least `bytes` gets a mapping of its own from the C library,
 * returned to the system when freed (glibc; elsewhere nothing happens and the result is false).
 * Without it glibc keeps freed large blocks in per-thread arenas, and training, which frees large
 * activations on several threads, grows: four steps of `koner pretrain`'s 4 × 256 recipe held
 * 3.2 GB, and 1.3 GB with 1 MiB. Process-wide, so the `koner train` and `koner pretrain` commands
 * set it; an application embedding koner decides for itself (`MALLOC_MMAP_THRESHOLD_` does the
 * same from outside).
 */
export function releaseLargeAllocations(bytes: number): boolean {
  if (!Number.isInteger(bytes) || bytes < 4096 || bytes > 32 * 1024 * 1024) {
    throw new TypeError(`bytes must be an integer from 4096 to 33554432, got ${String(bytes)}`);
  }
  return native().releaseLargeAllocations(bytes);
}
