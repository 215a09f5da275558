// Run by scripts/gpu-test.sh on a CUDA machine (node:test, compiled into dist-test/: no npm there).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { runtimeInfo } from '../../lib/index.js';

test('the addon is built with CUDA and sees the GPU', () => {
  const info = runtimeInfo();
  assert.equal(info.compiledWithCuda, true);
  assert.equal(info.cudaAvailable, true);
  assert.ok(info.cudaDeviceCount >= 1);
});
