#!/usr/bin/env bash
# Builds the Rust floor fixture (bench/floor: a trivial web_sys Worker and a
# no-op Rust Durable Object reached over RPC or fetch) into bench/floor/build,
# with the same tools and release profile as scripts/build.sh. Bench only.
set -euo pipefail
cd "$(dirname "$0")/.."
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/scripts/wasm-opt.sh}"
worker-build --release bench/floor
node scripts/rpc-classes.mjs bench/floor/build/index.js Floor
