#!/usr/bin/env bash
# Formats the C++/CUDA sources with the repo's .clang-format; `--check` only reports.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- 'binding/*.h' 'binding/*.cc' 'binding/*.cu' 'binding/*.cuh')
[ ${#files[@]} -gt 0 ] || exit 0
if [ "${1:-}" = "--check" ]; then
  clang-format --dry-run --Werror "${files[@]}"
else
  clang-format -i "${files[@]}"
fi
