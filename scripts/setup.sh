#!/usr/bin/env bash
# Installs everything the governor needs to build and test, idempotently:
# the wasm target, worker-build, the wasm-bindgen CLI matching Cargo.lock,
# the npm tools (wrangler, miniflare, esbuild, binaryen), and the simulator.
# Only crates.io and the npm registry are used; nothing is downloaded from
# GitHub (worker-build is pointed at the local tools by scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

WORKER_BUILD_VERSION=0.8.7

if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

[ -f Cargo.lock ] || cargo generate-lockfile
BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)

installed_version() { command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | awk '{print $2}'; }

if [ "$(installed_version worker-build || true)" != "$WORKER_BUILD_VERSION" ]; then
  say "installing worker-build $WORKER_BUILD_VERSION (a few minutes, once)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

if [ "$(installed_version wasm-bindgen || true)" != "$BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $BINDGEN_VERSION to match Cargo.lock (a few minutes, once)"
  # --locked can fail when the registry lacks a pinned transitive version.
  cargo install wasm-bindgen-cli --version "$BINDGEN_VERSION" --force
fi

if [ ! -x node_modules/.bin/wrangler ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm tools"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
fi

say "building the Sync simulator"
cargo build --release -p sync-sim --quiet
