#!/usr/bin/env bash
# The deployable size of the built Worker (build/, from scripts/build.sh):
# bundles it offline with `wrangler deploy --dry-run` and prints the gzip
# size. Exits 1 when the gzip size is over SIZE_LIMIT_KIB (default 350; the
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
[ -f build/index.js ] || { say "no build/index.js: run scripts/build.sh first"; exit 2; }

# A copy of wrangler.toml without [build] (the Worker is already built) and
# with absolute paths (main, [assets] directory: the copy lives elsewhere), so
# the dry run only bundles and measures.
awk -v root="$ROOT" '
  /^\[/ { section = $0 }
  /^\[build\]/ { skip = 1; next }
  /^\[/ { skip = 0 }
  skip { next }
  /^main *=/ { print "main = \"" root "/build/index.js\""; next }
  section == "[assets]" && /^directory *=/ {
    dir = $0; sub(/^directory *= *"/, "", dir); sub(/".*$/, "", dir); sub(/^\.\//, "", dir)
    if (dir !~ /^\//) dir = root "/" dir
    print "directory = \"" dir "\""; next
  }
  { print }' wrangler.toml >"$OUT/wrangler.toml"
rm -rf "$OUT/dist"
if ! WRANGLER_SEND_METRICS=false timeout 180 npx --no-install wrangler deploy --dry-run \
  --config "$OUT/wrangler.toml" --outdir "$OUT/dist" >"$OUT/size.txt" 2>&1; then
  say "wrangler dry run failed:"; tail -20 "$OUT/size.txt" >&2; exit 2
fi
WASM=$(ls "$OUT"/dist/*.wasm 2>/dev/null | head -1 || true)
[ -n "$WASM" ] && stat -c %s "$WASM" >"$OUT/wasm.bytes"

LINE=$(grep -E 'Total Upload' "$OUT/size.txt" | tail -1 || true)
GZIP=$(printf '%s' "$LINE" | sed -nE 's/.*gzip: *([0-9.]+) *KiB.*/\1/p')
[ -n "$GZIP" ] || { say "no 'Total Upload: ... gzip: ... KiB' in wrangler's output:"; tail -20 "$OUT/size.txt" >&2; exit 2; }
echo "$LINE"
if awk -v g="$GZIP" -v l="$LIMIT" 'BEGIN { exit !(g > l) }'; then
  echo "gzip: $GZIP KiB, over the $LIMIT KiB budget"
  exit 1
fi
echo "gzip: $GZIP KiB (budget $LIMIT KiB)"
