/**
 * Loads the native addon: `prebuilds/<platform>-<arch>/` first when `build/` is absent
 * (node-gyp-build's order: build/Release, build/Debug, prebuilds). The typed surface below is
 * the whole contract between `lib/` and `binding/`.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The functions binding/napi exports. Shapes are arrays of dimensions; data is row-major. */
export interface NativeAddon {
  version(): string;
  cudaAvailable(): boolean;
  cudaDeviceCount(): number;
  compiledWithCuda(): boolean;
  getNumThreads(): number;
  setNumThreads(n: number): void;
  /** The thread count seen by tensor work on a worker thread. */
  workerThreads(): Promise<number>;
  matmul(a: Float32Array, aShape: number[], b: Float32Array, bShape: number[]): Float32Array;
  matmulAsync(
    a: Float32Array,
    aShape: number[],
    b: Float32Array,
    bShape: number[],
  ): Promise<Float32Array>;
}

/** The package root: one level above both `lib/` (sources) and `dist/` (compiled). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

let addon: NativeAddon | undefined;

/** The addon, loaded on first use, with LibTorch's thread count set to the available cores. */
export function native(): NativeAddon {
  if (!addon) {
    const require = createRequire(import.meta.url);
    const load = require('node-gyp-build') as (dir: string) => NativeAddon;
    try {
      addon = load(packageRoot);
    } catch (error) {
      throw new Error(
        `koner: the native addon could not be loaded from ${packageRoot} ` +
          `(run \`npm run setup\` to build it): ${(error as Error).message}`,
      );
    }
    addon.setNumThreads(os.availableParallelism());
  }
  return addon;
}
