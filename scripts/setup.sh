#!/usr/bin/env bash
# Everything koner needs on a Debian 12 machine: system packages, npm packages, the native
# addon and the TypeScript build. Idempotent, and quick (a few seconds) when all is in place.
# `npm start` and `npm test` run it first.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  cmake g++ make ninja-build
  libtorch-dev        # LibTorch (CPU) and its headers
  libopenblas0-openmp # without it Debian's LibTorch runs on the reference BLAS (~10x slower)
  libdnnl-dev         # oneDNN's headers: the encoder's inference primitives (fused QKV, bf16)
  libgloo-dev         # c10d Gloo headers for CPU data-parallel training
  python3-torch python3-sentencepiece # test and benchmark oracles (/usr/bin/python3)
  clang-format        # C++ style check
  chromium            # headless browser for the demo page test (test/serve.test.ts)
)

say() { printf 'setup: %s\n' "$*" >&2; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { say "need root (or sudo) to install: ${missing[*]}"; exit 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages: `npm ci` when node_modules is absent or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  # .npmrc says the same (onnxruntime-node-install=skip: no CUDA download outside the registry);
  # the variable keeps it so should npm stop passing unknown .npmrc keys to install scripts.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
fi

# Native addon: configure once with cmake-js, then let the build tool decide what is stale.
if [ -f build/CMakeCache.txt ] && [ -f build/build.ninja -o -f build/Makefile ]; then
  cmake --build build --config Release --parallel "$(nproc)" >/dev/null || {
    say "native build failed; rerunning with output"
    cmake --build build --config Release --parallel 1
    exit 1
  }
else
  say "building the native addon (first time: a few minutes)"
  started=$(date +%s)
  npx cmake-js compile --out build --parallel "$(nproc)" --log-level warn
  say "native build took $(( $(date +%s) - started )) s"
fi

# TypeScript: rebuild when any source is newer than the last build.
if [ ! -f dist/index.js ] || [ -n "$(find lib tsconfig.json tsconfig.build.json -newer dist/index.js -print -quit)" ]; then
  say "compiling TypeScript"
  npx tsc -p tsconfig.build.json
  touch dist/index.js
fi
