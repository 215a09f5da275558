#!/usr/bin/env bash
# Called by prebuildify as if it were node-gyp (`rebuild --target=… --devdir=… --release`), in
# the staging folder: those arguments describe node-gyp's world and do not apply to a Node-API
# cmake-js build. Output: ./build/Release/koner.node, a copy of the repo's build.
set -euo pipefail
root="${KONER_ROOT:?run through scripts/prebuild.sh}"
config=Release
for arg in "$@"; do [ "$arg" = "--debug" ] && config=Debug; done
if [ -f "$root/build/CMakeCache.txt" ]; then
  cmake --build "$root/build" --config "$config" --parallel "$(nproc)"
else
  (cd "$root" && npx cmake-js compile --out build --config "$config" --parallel "$(nproc)")
fi
mkdir -p "build/$config"
cp "$root/build/$config/koner.node" "build/$config/koner.node"
