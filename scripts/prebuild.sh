#!/usr/bin/env bash
# `npm run prebuild`: prebuilds/linux-x64/node.napi.node (found by node-gyp-build when build/
# is absent). prebuildify drives node-gyp; scripts/prebuild-backend.sh stands in for it and
# builds with cmake-js, since prebuildify's own --target would collide with cmake-js's.
set -euo pipefail
cd "$(dirname "$0")/.."
exec npx prebuildify --napi --strip --node-gyp "$PWD/scripts/prebuild-backend.sh" "$@"
