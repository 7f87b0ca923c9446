#!/usr/bin/env bash
# The deployable size of the built Worker (build/, from scripts/build.sh):
# bundles it offline with `wrangler deploy --dry-run` and prints the gzip
# size, for the governor (build/, wrangler.toml) and for the operations Worker
# (build-ops/, wrangler.ops.toml), each held to the budget. Exits 1 when a gzip
# size is over SIZE_LIMIT_KIB (default 350; the
# Workers Free plan's limit is 3 MiB compressed, 350 KiB is the project's own
# budget), 2 when the dry run itself fails. Does not build.
#
#   bash scripts/size.sh [DIR]
#
# DIR (optional) keeps the outputs: wrangler.toml (the copy used), dist/ (the
# bundle), size.txt (wrangler's output), wasm.bytes (the .wasm's size).
# Without it they go to a temporary directory that is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LIMIT=${SIZE_LIMIT_KIB:-350}
say() { printf '\033[1m[size]\033[0m %s\n' "$*" >&2; }

if [ -n "${1:-}" ]; then
  OUT=$1; mkdir -p "$OUT"
else
  OUT=$(mktemp -d "${TMPDIR:-/tmp}/sync-governor-size.XXXXXX")
  trap 'rm -rf "$OUT"' EXIT
fi

# A copy of a wrangler config without [build] (the Worker is already built)
# and with absolute paths (main, [assets] directory: the copy lives
# elsewhere), so the dry run only bundles and measures.
copy_config() { # config, built main
  awk -v root="$ROOT" -v main="$2" '
    /^\[/ { section = $0 }
    /^\[build\]/ { skip = 1; next }
    /^\[/ { skip = 0 }
    skip { next }
    /^main *=/ { print "main = \"" root "/" main "\""; next }
    section == "[assets]" && /^directory *=/ {
      dir = $0; sub(/^directory *= *"/, "", dir); sub(/".*$/, "", dir); sub(/^\.\//, "", dir)
      if (dir !~ /^\//) dir = root "/" dir
      print "directory = \"" dir "\""; next
    }
    { print }' "$1"
}

over=0
measure() { # label, config, built main, output suffix
  local label=$1 config=$2 main=$3 sfx=$4
  [ -f "$main" ] || { say "no $main: run scripts/build.sh first"; exit 2; }
  copy_config "$config" "$main" >"$OUT/wrangler$sfx.toml"
  rm -rf "$OUT/dist$sfx"
  if ! WRANGLER_SEND_METRICS=false timeout 180 npx --no-install wrangler deploy --dry-run \
    --config "$OUT/wrangler$sfx.toml" --outdir "$OUT/dist$sfx" >"$OUT/size$sfx.txt" 2>&1; then
    say "$label: wrangler dry run failed:"; tail -20 "$OUT/size$sfx.txt" >&2; exit 2
  fi
  local wasm line gzip
  wasm=$(ls "$OUT"/dist"$sfx"/*.wasm 2>/dev/null | head -1 || true)
  [ -n "$wasm" ] && stat -c %s "$wasm" >"$OUT/wasm$sfx.bytes"
  line=$(grep -E 'Total Upload' "$OUT/size$sfx.txt" | tail -1 || true)
  gzip=$(printf '%s' "$line" | sed -nE 's/.*gzip: *([0-9.]+) *KiB.*/\1/p')
  [ -n "$gzip" ] || { say "$label: no 'Total Upload: ... gzip: ... KiB' in wrangler's output:"; tail -20 "$OUT/size$sfx.txt" >&2; exit 2; }
  echo "$label: $line"
  if awk -v g="$gzip" -v l="$LIMIT" 'BEGIN { exit !(g > l) }'; then
    echo "$label: gzip: $gzip KiB, over the $LIMIT KiB budget"
    over=1
  else
    echo "$label: gzip: $gzip KiB (budget $LIMIT KiB)"
  fi
}

# The operations Worker first: the governor's lines come last (bench.sh reads them).
measure operations wrangler.ops.toml build-ops/index.js -ops
measure governor wrangler.toml build/index.js ""
exit $over
