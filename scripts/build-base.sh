#!/usr/bin/env bash
# Builds the Worker as it was at an earlier commit, for bench section 7
# (bench/modes.mjs): by default 87718ec, the release before the operations
# features (shadow mode, metrics, decision logs). The commit's tree is
# exported with `git archive` (no worktree, nothing changes in this
# repository) into its own directory and built there exactly as
# scripts/build.sh builds production (the same wasm-opt wrapper, so no
# function-name section), with a cargo target directory of its own.
# Cached: nothing is done when <dir>/build/index.js exists and
# <dir>/.source-commit names the commit. Prints the build directory.
#   bash scripts/build-base.sh [commit] [dir]
# Defaults: BENCH_MODES_BASE_COMMIT (87718ec),
# BENCH_MODES_BASE_DIR (${TMPDIR:-/tmp}/sync-governor-base-<commit>),
# BENCH_MODES_BASE_TARGET (cargo target directory, default <dir>/target).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
COMMIT=${1:-${BENCH_MODES_BASE_COMMIT:-87718ec}}
FULL=$(git rev-parse --verify "$COMMIT^{commit}")
DIR=${2:-${BENCH_MODES_BASE_DIR:-${TMPDIR:-/tmp}/sync-governor-base-$COMMIT}}
say() { printf '\033[1m[build-base]\033[0m %s\n' "$*" >&2; }

if [ -e "$DIR" ]; then
  have=$(cat "$DIR/.source-commit" 2>/dev/null || true)
  if [ "$have" != "$FULL" ]; then
    say "$DIR exists but is not an export of $FULL (.source-commit: ${have:-none}); remove it or pick another dir"
    exit 1
  fi
  if [ -f "$DIR/build/index.js" ]; then
    echo "$DIR/build"
    exit 0
  fi
else
  say "exporting $FULL into $DIR"
  mkdir -p "$DIR"
  git archive "$FULL" | tar -x -C "$DIR"
  ln -s "$ROOT/node_modules" "$DIR/node_modules"
  echo "$FULL" >"$DIR/.source-commit"
fi
say "building $COMMIT in $DIR (a few minutes the first time)"
(
  cd "$DIR"
  export CARGO_TARGET_DIR=${BENCH_MODES_BASE_TARGET:-$DIR/target}
  export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
  export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
  export WASM_OPT_BIN="$ROOT/scripts/wasm-opt.sh"
  worker-build --release >&2
  # Builds since the object is called over RPC make its class derive from
  # DurableObject, as their own scripts/build.sh did (else every call fails).
  if [ -f scripts/rpc-classes.mjs ]; then node scripts/rpc-classes.mjs build/index.js AccountObject >&2; fi
)
test -f "$DIR/build/index.js"
echo "$DIR/build"
