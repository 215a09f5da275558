#!/usr/bin/env bash
# Called by prebuildify as if it were node-gyp (`rebuild --target=… --devdir=… --release`):
# the arguments describe node-gyp's world and do not apply to a Node-API cmake-js build.
set -euo pipefail
cd "$(dirname "$0")/.."
config=Release
for arg in "$@"; do [ "$arg" = "--debug" ] && config=Debug; done
exec npx cmake-js compile --out build --config "$config" --parallel "$(nproc)"
