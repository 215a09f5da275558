// Run by scripts/gpu-test.sh on a CUDA machine (node:test: no npm packages there).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { runtimeInfo } from '../../dist/index.js';

test('the addon is built with CUDA and sees the GPU', () => {
  const info = runtimeInfo();
  assert.equal(info.compiledWithCuda, true);
  assert.equal(info.cudaAvailable, true);
  assert.ok(info.cudaDeviceCount >= 1);
});
