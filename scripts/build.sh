#!/usr/bin/env bash
# Builds the Worker (Rust → wasm + JS shim in build/) with locally installed
# tools only: worker-build would otherwise download them from GitHub.
set -euo pipefail
cd "$(dirname "$0")/.."
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/scripts/wasm-opt.sh}"
# The governor (build/), then the operations Worker: the admin API and the
# metrics, built from the same crate with `--features ops` (build-ops/).
worker-build --release "$@"
worker-build --release --out-dir build-ops . --features ops
