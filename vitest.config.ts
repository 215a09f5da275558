import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // CUDA tests run under node:test on a GPU machine (scripts/gpu-test.sh), compiled to dist-test/.
    exclude: [...configDefaults.exclude, 'test/gpu/**'],
    // Native tests load LibTorch (hundreds of MB); forks keep each file's addon in its own process.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 600_000,
  },
});
