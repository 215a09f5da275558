import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { checkAddon, explainLoadFailure, install } from '../lib/install/index.js';
import {
  findLibTorch,
  libtorchHelp,
  missingBuildTools,
  PREBUILT_LIBTORCH,
  SYSTEM_TORCH_DIRS,
} from '../lib/install/libtorch.js';
import { addonLoadError, native, packageRoot } from '../lib/native.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'koner-install-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A CMake package directory of a fake LibTorch `version` under `root`, with or without CUDA. */
function fakeLibTorch(root: string, version: string, cuda = false): string {
  const torchDir = path.join(root, 'share', 'cmake', 'Torch');
  mkdirSync(torchDir, { recursive: true });
  mkdirSync(path.join(root, 'lib'), { recursive: true });
  writeFileSync(path.join(torchDir, 'TorchConfig.cmake'), '# fake\n');
  writeFileSync(
    path.join(torchDir, 'TorchConfigVersion.cmake'),
    `set(PACKAGE_VERSION "${version}")\n`,
  );
  if (cuda) writeFileSync(path.join(root, 'lib', 'libtorch_cuda.so'), '');
  return torchDir;
}

/** An executable `python3` stand-in printing a cmake prefix and a torch version. */
function fakePython(name: string, prefix: string, version: string): string {
  const file = path.join(tmp, name);
  writeFileSync(file, `#!/bin/sh\necho '${prefix}'\necho '${version}'\n`);
  chmodSync(file, 0o755);
  return file;
}

const noEnv = { PATH: process.env.PATH };

describe('findLibTorch', () => {
  it('takes Torch_DIR first, and refuses one without TorchConfig.cmake', () => {
    const torchDir = fakeLibTorch(path.join(tmp, 'explicit'), '2.5.1', true);
    const { found } = findLibTorch({ env: { ...noEnv, Torch_DIR: torchDir }, systemDirs: [] });
    expect(found).toEqual({ source: 'Torch_DIR', torchDir, version: '2.5.1', cuda: true });
    const empty = path.join(tmp, 'empty');
    mkdirSync(empty);
    expect(() => findLibTorch({ env: { ...noEnv, Torch_DIR: empty } })).toThrow(
      `Torch_DIR=${empty} holds no TorchConfig.cmake`,
    );
  });

  it('then the torch of python3, when it ships CMake files', () => {
    const root = path.join(tmp, 'site-packages', 'torch');
    fakeLibTorch(root, '2.4.0');
    const python = fakePython('python-with-cmake', path.join(root, 'share', 'cmake'), '2.4.0+cpu');
    const { found } = findLibTorch({ env: noEnv, python, systemDirs: [] });
    expect(found).toEqual({
      source: 'python3',
      torchDir: path.join(root, 'share', 'cmake', 'Torch'),
      version: '2.4.0+cpu',
      cuda: false,
    });
    // Debian's python3-torch names a cmake prefix it does not ship.
    const bare = fakePython('python-bare', path.join(tmp, 'nowhere'), '1.13.0a0');
    const search = findLibTorch({ env: noEnv, python: bare, systemDirs: [] });
    expect(search.found).toBeNull();
    expect(search.looked.join('; ')).toMatch(/torch 1\.13\.0a0 \(ships no CMake files/);
  });

  it('then the system; with none it lists every place it looked', () => {
    const system = fakeLibTorch(path.join(tmp, 'usr'), '1.13.1');
    const missing = path.join(tmp, 'no-python3');
    const { found } = findLibTorch({ env: noEnv, python: missing, systemDirs: [system] });
    expect(found).toMatchObject({ source: 'system', torchDir: system, version: '1.13.1' });
    const none = findLibTorch({ env: noEnv, python: missing, systemDirs: ['/nonexistent'] });
    expect(none.found).toBeNull();
    expect(none.looked).toEqual([
      'Torch_DIR (unset)',
      `${missing} (not on the PATH)`,
      'the system (/nonexistent)',
    ]);
  });

  it.skipIf(!existsSync(SYSTEM_TORCH_DIRS[0]))("finds this machine's Debian LibTorch", () => {
    const { found } = findLibTorch({ env: noEnv, python: path.join(tmp, 'no-python3') });
    expect(found?.source).toBe('system');
    expect(found?.version).toMatch(/^1\.13\./);
    expect(found?.cuda).toBe(false);
    expect(native().version()).toMatch(/^1\.13\./);
  });
});

describe('the install step', () => {
  it('says exactly what to install', () => {
    const help = libtorchHelp();
    expect(help).toContain('apt-get install libtorch-dev libopenblas0-openmp');
    expect(help).toContain('pip install torch');
    expect(help).toContain('python3 on the PATH');
    expect(help).toContain('Torch_DIR');
    expect(help).toContain('npm rebuild koner');
  });

  it('explains load failures in terms of LibTorch', () => {
    const missing = explainLoadFailure(
      'libtorch_cpu.so.1.13: cannot open shared object file: No such file or directory',
    );
    expect(missing).toContain(`needs ${PREBUILT_LIBTORCH}, which is not installed`);
    expect(explainLoadFailure('/x/koner.node: undefined symbol: _ZN3c10')).toMatch(
      /built against another LibTorch/,
    );
    expect(explainLoadFailure('No native build was found for platform=darwin')).toMatch(
      /no addon for .* in the package \(no prebuilt binary, no earlier build\)/,
    );
  });

  it('checks that the addon of a package directory loads, in a child process', () => {
    const check = checkAddon(packageRoot);
    expect(check).toMatchObject({ ok: true, torchVersion: native().version() });
  });

  it('fails with what to install when no addon loads and no LibTorch exists', () => {
    // A package as a user installs it, whose prebuilt binary cannot load here.
    const root = path.join(tmp, 'package');
    const prebuilds = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
    mkdirSync(prebuilds, { recursive: true });
    mkdirSync(path.join(root, 'node_modules'));
    writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'koner' }));
    writeFileSync(path.join(prebuilds, 'koner.glibc.node'), 'not a shared object');
    symlinkSync(
      path.join(packageRoot, 'node_modules', 'node-gyp-build'),
      path.join(root, 'node_modules', 'node-gyp-build'),
    );
    const lines: string[] = [];
    const code = install({
      root,
      env: noEnv,
      log: (m) => lines.push(m),
      find: { python: path.join(tmp, 'no-python3'), systemDirs: [] },
    });
    expect(code).toBe(1);
    const text = lines.join('\n');
    expect(text).toMatch(/koner: .*koner\.glibc\.node.*; building the addon from source/);
    expect(text).toMatch(/cannot build the native addon: no LibTorch found \(looked at Torch_DIR/);
    expect(text).toContain(libtorchHelp());
    expect(existsSync(path.join(root, 'build'))).toBe(false);
  });

  it('names missing build tools', () => {
    expect(missingBuildTools({ PATH: path.join(tmp, 'empty-bin') })).toEqual([
      'cmake',
      'g++',
      'make',
    ]);
    expect(missingBuildTools()).toEqual([]);
  });

  it('turns a runtime load failure into advice, never a bare dlopen error', () => {
    const dlopen = 'libc10.so.1.13: cannot open shared object file: No such file or directory';
    const installed = addonLoadError(path.join(tmp, 'package'), dlopen);
    expect(installed).toContain(`needs ${PREBUILT_LIBTORCH}, which is not installed`);
    expect(installed).toContain('npm rebuild koner');
    expect(installed).toContain(libtorchHelp());
    expect(addonLoadError(packageRoot, dlopen)).toMatch(
      /source checkout `npm run setup` builds it/,
    );
  });
});
