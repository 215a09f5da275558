/**
 * The LibTorch koner runs on: the one the prebuilt addon links, where a from-source build finds
 * one (CMakeLists.txt's order: `Torch_DIR`, then the torch of the `python3` on the PATH when it
 * ships CMake files, then the system), and what to tell a user who has none.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * What the prebuilt addon (prebuilds/linux-x64/koner.glibc.node) links: Debian 12's LibTorch
 * 1.13 (package libtorch1.13, libraries `libtorch_cpu.so.1.13` and `libc10.so.1.13`). LibTorch
 * puts its version in the library names because its C++ ABI changes between versions, so the
 * binary loads with 1.13.x only; with any other LibTorch it fails to load and the install script
 * builds from source against that one.
 */
export const PREBUILT_LIBTORCH = "Debian 12's LibTorch 1.13 (libtorch_cpu.so.1.13)";

/** Where a system LibTorch keeps its CMake package (CMake's own default search places). */
export const SYSTEM_TORCH_DIRS: readonly string[] = [
  '/usr/lib/x86_64-linux-gnu/cmake/Torch',
  '/usr/lib/aarch64-linux-gnu/cmake/Torch',
  '/usr/lib/cmake/Torch',
  '/usr/lib64/cmake/Torch',
  '/usr/share/cmake/Torch',
  '/usr/local/lib/cmake/Torch',
  '/usr/local/share/cmake/Torch',
];

/** A LibTorch to build against. */
export interface LibTorch {
  /** How it was found: the `Torch_DIR` variable, a Python torch, or the system. */
  source: 'Torch_DIR' | 'python3' | 'system';
  /** The directory holding TorchConfig.cmake (CMake's `Torch_DIR`). */
  torchDir: string;
  /** Its version, when it says (e.g. `1.13.1`, `2.5.1+cu124`). */
  version: string | null;
  /** Whether it has libtorch_cuda (then the CUDA kernels are built and linked). */
  cuda: boolean;
}

export interface FindLibTorchOptions {
  /** Default: process.env (`Torch_DIR`, `PATH`). */
  env?: NodeJS.ProcessEnv;
  /** The Python asked for its torch (default `python3`, found on the PATH as CMake does). */
  python?: string;
  /** Default {@link SYSTEM_TORCH_DIRS}. */
  systemDirs?: readonly string[];
}

/** The outcome of a search: the LibTorch found, or null with every place looked at. */
export interface LibTorchSearch {
  found: LibTorch | null;
  looked: string[];
}

const hasConfig = (dir: string) =>
  existsSync(path.join(dir, 'TorchConfig.cmake')) ||
  existsSync(path.join(dir, 'torch-config.cmake'));

function configVersion(torchDir: string): string | null {
  try {
    const text = readFileSync(path.join(torchDir, 'TorchConfigVersion.cmake'), 'utf8');
    return /set\(PACKAGE_VERSION "([^"]+)"\)/.exec(text)?.[1] ?? null;
  } catch {
    return null;
  }
}

/** libtorch_cuda beside the libraries of `<root>/share/cmake/Torch` or `<libdir>/cmake/Torch`. */
function hasCudaLibrary(torchDir: string): boolean {
  const candidates = [
    path.resolve(torchDir, '..', '..', '..', 'lib'),
    path.resolve(torchDir, '..', '..'),
  ];
  return candidates.some((dir) => existsSync(path.join(dir, 'libtorch_cuda.so')));
}

function fromDir(source: LibTorch['source'], torchDir: string, version?: string): LibTorch {
  return {
    source,
    torchDir,
    version: version ?? configVersion(torchDir),
    cuda: hasCudaLibrary(torchDir),
  };
}

/**
 * Looks for a LibTorch in CMakeLists.txt's order. A `Torch_DIR` that holds no TorchConfig.cmake
 * is an error (the build would fail on it), not a reason to look elsewhere.
 */
export function findLibTorch(options: FindLibTorchOptions = {}): LibTorchSearch {
  const env = options.env ?? process.env;
  const looked: string[] = [];
  const explicit = env.Torch_DIR;
  if (explicit) {
    if (!hasConfig(explicit)) {
      throw new Error(
        `Torch_DIR=${explicit} holds no TorchConfig.cmake: point it at LibTorch's ` +
          `share/cmake/Torch directory, or unset it`,
      );
    }
    return { found: fromDir('Torch_DIR', explicit), looked };
  }
  looked.push('Torch_DIR (unset)');

  const python = options.python ?? 'python3';
  const probe = spawnSync(
    python,
    [
      '-c',
      'import torch, torch.utils; print(torch.utils.cmake_prefix_path); print(torch.__version__)',
    ],
    { env, encoding: 'utf8', timeout: 120_000 },
  );
  if (probe.status === 0) {
    const [prefix, version] = probe.stdout.trim().split('\n');
    const torchDir = path.join(prefix, 'Torch');
    if (hasConfig(torchDir)) return { found: fromDir('python3', torchDir, version), looked };
    looked.push(`${python}'s torch ${version} (ships no CMake files at ${torchDir})`);
  } else {
    looked.push(
      probe.error ? `${python} (not on the PATH)` : `${python} (its "import torch" failed)`,
    );
  }

  for (const dir of options.systemDirs ?? SYSTEM_TORCH_DIRS) {
    if (hasConfig(dir)) return { found: fromDir('system', dir), looked };
  }
  looked.push(`the system (${(options.systemDirs ?? SYSTEM_TORCH_DIRS).join(', ')})`);
  return { found: null, looked };
}

/** What to install to get a LibTorch koner can use, and how koner then finds it. */
export function libtorchHelp(): string {
  return [
    'koner needs LibTorch (the C++ library of PyTorch). Install one of:',
    '  - on Debian 12:  apt-get install libtorch-dev libopenblas0-openmp',
    `    (${PREBUILT_LIBTORCH}: the prebuilt addon loads as it is; OpenBLAS makes it ~10x faster)`,
    '  - anywhere:      pip install torch',
    '    (koner builds against the torch of the python3 on the PATH; or set Torch_DIR to a',
    '    LibTorch share/cmake/Torch directory, e.g. <site-packages>/torch/share/cmake/Torch)',
    'then run: npm rebuild koner',
  ].join('\n');
}

/** Build tools a from-source build needs that are not on the PATH. */
export function missingBuildTools(env: NodeJS.ProcessEnv = process.env): string[] {
  const missing: string[] = [];
  const found = (cmd: string) => !spawnSync(cmd, ['--version'], { env }).error;
  if (!found('cmake')) missing.push('cmake');
  if (!found(env.CXX ?? 'c++') && !found('g++') && !found('clang++')) missing.push('g++');
  if (!found('make') && !found('ninja')) missing.push('make');
  return missing;
}
