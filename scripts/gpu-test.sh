#!/usr/bin/env bash
# The CUDA check, for a Linux machine with a CUDA GPU and a PyTorch install but no npm access:
# builds the addon against that PyTorch's LibTorch, then runs the CUDA tests and benchmarks.
# They come compiled, with lib/, bench/ and the test fixtures they use, in dist-test/.
#
#   here:   ../shared/tools/gpu-bundle.sh && npm run compile:test
#   there:  bash scripts/gpu-test.sh
#           (carry .gpu, dist-test, node_modules/node-addon-api and node_modules/node-gyp-build)
#
# Results go to stdout and, when $OUT is set, to $OUT/gpu-test.log.
set -euo pipefail
cd "$(dirname "$0")/.."
log=/dev/null
[ -n "${OUT:-}" ] && log="$OUT/gpu-test.log"
exec > >(tee "$log") 2>&1

[ -f .gpu/setup.sh ] || { echo "gpu-test: .gpu/ missing: run ../shared/tools/gpu-bundle.sh here first"; exit 1; }
[ -f dist-test/lib/index.js ] || {
  echo "gpu-test: dist-test/ missing: run npm run compile:test here first"; exit 1; }
. .gpu/setup.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

start=$(date +%s)
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
mkdir -p build-gpu
cmake -S . -B build-gpu "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DKONER_CUDA=ON \
  -DTorch_DIR="$Torch_DIR" -DCMAKE_CUDA_ARCHITECTURES="80;90" > build-gpu/build.log 2>&1 || {
  tail -50 build-gpu/build.log; exit 1; }
cmake --build build-gpu --parallel "$(nproc)" >> build-gpu/build.log 2>&1 || { tail -80 build-gpu/build.log; exit 1; }
echo "gpu-test: native build against $Torch_DIR took $(( $(date +%s) - start )) s"
mkdir -p build/Release
cp build-gpu/koner.node build/Release/koner.node

node dist-test/lib/cli/main.js demo
node --test --test-reporter=spec dist-test/test/gpu/
for bench in dist-test/test/gpu/*.bench.js; do
  [ -e "$bench" ] && node "$bench"
done
