import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { makeDirectory } from '../lib/output-dir.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-output-dir-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('makeDirectory', () => {
  it('creates missing parents and accepts a directory that exists', async () => {
    const deep = path.join(tmp, 'a', 'b', 'c');
    await makeDirectory(deep);
    expect(statSync(deep).isDirectory()).toBe(true);
    await makeDirectory(deep);
    await Promise.all([1, 2, 3].map(() => makeDirectory(path.join(tmp, 'race', 'x'))));
  });

  it('names the part of the path that is a file', async () => {
    const file = path.join(tmp, 'file');
    writeFileSync(file, '');
    await expect(makeDirectory(path.join(file, 'sub'))).rejects.toThrow(
      new RegExp(`cannot create ${file}/sub: ${file} is not a directory`),
    );
    await expect(makeDirectory(file)).rejects.toThrow(/is not a directory/);
  });

  // Node's mkdir(…, { recursive: true }) spins for ever on such a path (ENOENT under a parent
  // that exists); a hang here fails the test by its timeout.
  it.skipIf(process.platform !== 'linux')(
    'fails at once under /proc',
    async () => {
      await expect(makeDirectory('/proc/1/koner-out')).rejects.toThrow(
        /cannot create \/proc\/1\/koner-out \((ENOENT|EACCES|EPERM)\)/,
      );
      await expect(makeDirectory('/proc/1/koner-out/deeper')).rejects.toThrow(/cannot create/);
    },
    10_000,
  );
});
