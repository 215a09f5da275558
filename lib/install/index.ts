/**
 * npm's `install` step for koner in a user's app (run through scripts/install.mjs), in the way
 * sharp and onnxruntime-node behave:
 *
 * 1. When an addon loads (the prebuilt linux-x64 glibc binary, or an earlier build), done.
 * 2. Otherwise find a LibTorch (./libtorch.ts) and build the addon from the shipped sources
 *    with cmake-js into build/Release/koner.node, keeping only that file.
 * 3. Check that the new binary loads.
 *
 * When there is no LibTorch the step fails with what to install, never a bare dlopen error.
 * `KONER_BUILD_FROM_SOURCE=1` skips step 1 (a CUDA PyTorch on a machine where the prebuilt
 * binary also loads against Debian's CPU LibTorch). An environment variable, because npm 11
 * warns that unknown flags such as `--build-from-source` will stop reaching install scripts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

import {
  findLibTorch,
  libtorchHelp,
  missingBuildTools,
  PREBUILT_LIBTORCH,
  type FindLibTorchOptions,
} from './libtorch.js';

/** Whether a native addon loads from a package directory. */
export type AddonCheck =
  { ok: true; file: string; torchVersion: string } | { ok: false; reason: string };

/**
 * Loads the addon the way lib/native.ts does (node-gyp-build: build/Release, then prebuilds/),
 * in a child process, so that a binary that fails to load, or crashes, cannot take the caller
 * down.
 */
export function checkAddon(root: string, env: NodeJS.ProcessEnv = process.env): AddonCheck {
  const gypBuild = createRequire(path.join(root, 'package.json')).resolve('node-gyp-build');
  const script = `
    const load = require(${JSON.stringify(gypBuild)});
    const file = load.resolve(${JSON.stringify(root)});
    const addon = load(${JSON.stringify(root)});
    console.log(JSON.stringify({ file, torchVersion: addon.version() }));`;
  const child = spawnSync(process.execPath, ['-e', script], {
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (child.status === 0) {
    const { file, torchVersion } = JSON.parse(child.stdout) as {
      file: string;
      torchVersion: string;
    };
    return { ok: true, file, torchVersion };
  }
  return { ok: false, reason: loadFailure(child.stderr ?? '', child.signal) };
}

/** The line of a failed load that says why (the Error's message), without the stack. */
function loadFailure(stderr: string, signal: NodeJS.Signals | null): string {
  const line = stderr.split('\n').find((l) => /^\w*Error: /.test(l));
  if (line) return line.replace(/^\w*Error: /, '');
  if (signal) return `the loading process was killed by ${signal}`;
  return stderr.trim().split('\n').pop() ?? 'unknown error';
}

/** Why a load failed, in a user's words: a missing LibTorch, another LibTorch, or no binary. */
export function explainLoadFailure(reason: string): string {
  if (
    /libtorch[\w.]*\.so|libc10[\w.]*\.so/.test(reason) &&
    /cannot open shared object/.test(reason)
  ) {
    return `the prebuilt addon needs ${PREBUILT_LIBTORCH}, which is not installed (${reason})`;
  }
  if (/undefined symbol/.test(reason)) {
    return `the addon was built against another LibTorch than the one found (${reason})`;
  }
  if (/No native build was found/.test(reason)) {
    return `no addon for ${process.platform}-${process.arch} in the package (no prebuilt binary, no earlier build)`;
  }
  return reason;
}

export interface InstallOptions {
  /** The package directory (holds package.json, binding/, CMakeLists.txt). */
  root: string;
  env?: NodeJS.ProcessEnv;
  /** Where progress and errors go (default: stderr, which npm shows when the step fails). */
  log?: (message: string) => void;
  /** Overrides of the LibTorch search (tests). */
  find?: Omit<FindLibTorchOptions, 'env'>;
}

const truthy = (value: string | undefined) => value !== undefined && /^(1|true|yes)$/i.test(value);

/** Runs the install step; returns the process exit code (0: an addon loads). */
export function install(options: InstallOptions): number {
  const { root } = options;
  const env = options.env ?? process.env;
  const log = options.log ?? ((message: string) => console.error(message));
  if (!truthy(env.KONER_BUILD_FROM_SOURCE)) {
    const check = checkAddon(root, env);
    if (check.ok) {
      log(
        `koner: native addon ${path.relative(root, check.file)} loads (LibTorch ${check.torchVersion})`,
      );
      return 0;
    }
    log(`koner: ${explainLoadFailure(check.reason)}; building the addon from source`);
  } else {
    log('koner: KONER_BUILD_FROM_SOURCE is set: building the addon from source');
  }

  let search;
  try {
    search = findLibTorch({ ...options.find, env });
  } catch (error) {
    log(`koner: ${(error as Error).message}`);
    return 1;
  }
  if (!search.found) {
    log(
      `koner: cannot build the native addon: no LibTorch found (looked at ${search.looked.join('; ')}).\n` +
        libtorchHelp(),
    );
    return 1;
  }
  const missing = missingBuildTools(env);
  if (missing.length) {
    log(
      `koner: building the native addon needs ${missing.join(', ')} on the PATH ` +
        `(Debian: apt-get install cmake g++ make), then run: npm rebuild koner`,
    );
    return 1;
  }

  const torch = search.found;
  const jobs = env.CMAKE_BUILD_PARALLEL_LEVEL ?? String(os.availableParallelism());
  log(
    `koner: building against LibTorch ${torch.version ?? '(version unknown)'} from ${torch.source} ` +
      `(${torch.torchDir}), ${jobs} jobs; this takes a few minutes`,
  );
  const cmakeJs = createRequire(path.join(root, 'package.json')).resolve('cmake-js/bin/cmake-js');
  const build = path.join(root, 'build');
  const args = [
    cmakeJs,
    'compile',
    '--out',
    build,
    '--parallel',
    jobs,
    '--log-level',
    'warn',
    `--CDTorch_DIR=${torch.torchDir}`,
  ];
  // Compile the CUDA kernels only when they are linked in (a CUDA LibTorch): a CPU LibTorch has no
  // use for them, and a machine's nvcc need not suit its C++ compiler.
  if (!torch.cuda) args.push('--CDKONER_CUDA=OFF');
  const result = spawnSync(process.execPath, args, { cwd: root, env, stdio: ['ignore', 2, 2] });
  if (result.status !== 0) {
    log(
      `koner: the native build failed (${result.error?.message ?? `exit ${result.status}`}); the ` +
        `output above says why.\n${libtorchHelp()}`,
    );
    return 1;
  }
  pruneBuild(build);
  const check = checkAddon(root, env);
  if (!check.ok) {
    log(`koner: the addon built but does not load: ${check.reason}\n${libtorchHelp()}`);
    return 1;
  }
  log(`koner: built ${path.relative(root, check.file)} (LibTorch ${check.torchVersion})`);
  return 0;
}

/**
 * Leaves only build/Release/koner.node: the objects and the precompiled LibTorch header take
 * hundreds of MB that an installed package never uses again.
 */
function pruneBuild(build: string): void {
  for (const entry of readdirSync(build)) {
    if (entry !== 'Release') rmSync(path.join(build, entry), { recursive: true, force: true });
  }
  const release = path.join(build, 'Release');
  if (!existsSync(release)) return;
  for (const entry of readdirSync(release)) {
    if (entry !== 'koner.node') rmSync(path.join(release, entry), { recursive: true, force: true });
  }
}
