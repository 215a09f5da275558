#!/usr/bin/env bash
# `npm run prebuild`: prebuilds/linux-x64/koner.glibc.node, which node-gyp-build loads when
# build/ is absent. prebuildify drives node-gyp and moves its output away; here
# scripts/prebuild-backend.sh stands in for node-gyp (prebuildify's --target would collide
# with cmake-js's): it brings build/ up to date and hands prebuildify a copy in a staging
# folder, so build/'s own file, which running processes may have loaded, is never moved.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
stage="$root/build-prebuild"
mkdir -p "$stage"
echo '{ "name": "koner" }' > "$stage/package.json"
KONER_ROOT="$root" npx --prefix "$root" prebuildify --napi --tag-libc --cwd "$stage" --out "$root" \
  --node-gyp "$root/scripts/prebuild-backend.sh" "$@"
for f in "$root"/prebuilds/*/*.node; do strip --strip-unneeded "$f"; done
ls -l "$root"/prebuilds/*/*.node
