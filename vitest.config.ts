import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Native tests load LibTorch (hundreds of MB); forks keep each file's addon in its own process.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 600_000,
  },
});
