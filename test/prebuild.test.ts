import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { packageRoot } from '../lib/native.js';

describe('npm run prebuild', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-prebuild-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('writes prebuilds/linux-x64/*.node that node-gyp-build loads when build/ is absent', () => {
    execFileSync('npm', ['run', '--silent', 'prebuild'], { cwd: packageRoot, stdio: 'pipe' });
    const prebuilds = path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`);
    const built = readdirSync(prebuilds).filter((f) => f.endsWith('.node'));
    expect(built).toEqual(['koner.glibc.node']);
    expect(statSync(path.join(prebuilds, built[0])).size).toBeGreaterThan(0);

    // A package with prebuilds/ and no build/, as a user installs it.
    writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ name: 'koner' }));
    cpSync(path.join(packageRoot, 'prebuilds'), path.join(tmp, 'prebuilds'), { recursive: true });
    const script = `
      const load = require(${JSON.stringify(path.join(packageRoot, 'node_modules/node-gyp-build'))});
      const file = load.resolve(${JSON.stringify(tmp)});
      const addon = load(${JSON.stringify(tmp)});
      console.log(JSON.stringify({ file, version: addon.version() }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script]).toString());
    expect(out.file).toBe(
      path.join(tmp, 'prebuilds', `${process.platform}-${process.arch}`, 'koner.glibc.node'),
    );
    expect(out.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});
