#!/usr/bin/env bash
# Builds the Worker (Rust → wasm + JS shim in build/) with locally installed
# tools only: worker-build would otherwise download them from GitHub.
set -euo pipefail
cd "$(dirname "$0")/.."
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/scripts/wasm-opt.sh}"
# One Worker (build/): the data path, the operations (admin API, metrics)
# and the account objects.
worker-build --release "$@"
# The account object's RPC method needs its class to derive from DurableObject.
node scripts/rpc-classes.mjs build/index.js AccountObject
