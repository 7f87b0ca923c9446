#!/usr/bin/env bash
# Installs everything the governor needs to build and test, idempotently:
# the wasm target, worker-build, the wasm-bindgen CLI matching Cargo.lock,
# the npm tools (wrangler, miniflare, esbuild, binaryen, playwright-core), the
# simulator, clippy and rustfmt, a Python venv in .venv/ with the pinned
# Python packages (the Sync Python SDK, prometheus_client) and Debian's
# chromium for the browser tests. Only crates.io, the npm registry, PyPI and
# apt are used; nothing is downloaded from GitHub (worker-build is pointed at
# the local tools by scripts/build.sh) and no browser is downloaded by npm.
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

installed_version() { command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | awk '{print $NF}'; }

if [ "$(installed_version worker-build || true)" != "$WORKER_BUILD_VERSION" ]; then
  say "installing worker-build $WORKER_BUILD_VERSION (a few minutes, once)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

if [ "$(installed_version wasm-bindgen || true)" != "$BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $BINDGEN_VERSION to match Cargo.lock (a few minutes, once)"
  # --locked can fail when the registry lacks a pinned transitive version.
  cargo install wasm-bindgen-cli --version "$BINDGEN_VERSION" --force
fi

for component in clippy rustfmt; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    say "adding the $component component"
    rustup component add "$component"
  fi
done

# playwright-core drives the system Chromium (tests/lib/browser.mjs); never let
# it fetch a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -x node_modules/.bin/wrangler ] || [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm tools"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
fi

say "building the Sync simulator"
cargo build --release -p sync-sim --quiet

# Python: the examples' Python SDK test and the metrics parser. Pinned; a venv
# in .venv/ (gitignored). Without python3 the tests that need it are skipped.
PY_PACKAGES=(syncsdk==0.3.0 prometheus_client==0.26.0)
if ! command -v python3 >/dev/null 2>&1; then
  say "WARNING: no python3 on PATH: the Python example and metrics tests will be skipped (install python3 and python3-venv, then rerun)"
else
  if [ ! -x .venv/bin/python ]; then
    say "creating the Python venv in .venv/"
    python3 -m venv .venv || { rm -rf .venv; say "WARNING: python3 -m venv failed (on Debian: apt-get install python3-venv): the Python tests will be skipped"; }
  fi
  if [ -x .venv/bin/python ] && ! .venv/bin/python - "${PY_PACKAGES[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if all(version(n) == v for n, v in (p.split("==") for p in sys.argv[1:])) else 1)
PY
  then
    say "installing Python packages: ${PY_PACKAGES[*]}"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
  fi
fi

# Chromium for the browser tests (tests/lib/browser.mjs), from Debian.
CHROMIUM_BIN=${CHROMIUM_BIN:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM_BIN" ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing chromium (apt, once)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
  else
    say "WARNING: no Chromium at $CHROMIUM_BIN and no root apt-get to install it: the browser tests will be skipped (install Debian's chromium or set CHROMIUM_BIN)"
  fi
fi
