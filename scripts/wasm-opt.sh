#!/usr/bin/env bash
# wasm-opt as worker-build calls it, minus `--debuginfo`: that flag keeps the
# function-name section (~20% of the module, ~55 KiB gzipped) in the deployed
# Worker. Stack traces show wasm-function[N] instead of names.
args=()
for a in "$@"; do [[ "$a" == "--debuginfo" ]] || args+=("$a"); done
exec "$(dirname "$0")/../node_modules/.bin/wasm-opt" "${args[@]}"
