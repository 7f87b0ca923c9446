#!/usr/bin/env bash
# The deployable size of the built Worker (build/, from scripts/build.sh):
# bundles it offline with `wrangler deploy --dry-run` and prints the upload
# and gzip sizes. A sanity gate, not a budget: exits 1 when the gzip size is
# over SIZE_LIMIT_KIB (default 1024 KiB, a third of the Workers Free plan's
# 3 MB compressed limit; Paid allows 10 MB, and newer limits count 64 MiB
# uncompressed only). What the platform does limit is startup time:
# scripts/startup.sh gates that. Exits 2 when the dry run itself fails. Does
# not build.
#
#   bash scripts/size.sh [DIR]
#
# DIR (optional) keeps the outputs: wrangler.toml (the copy used), dist/ (the
# bundle), size.txt (wrangler's output), wasm.bytes (the .wasm's size).
# Without it they go to a temporary directory that is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=${SIZE_LIMIT_KIB:-1024}
say() { printf '\033[1m[size]\033[0m %s\n' "$*" >&2; }

if [ -n "${1:-}" ]; then
  OUT=$1; mkdir -p "$OUT"
else
  OUT=$(mktemp -d "${TMPDIR:-/tmp}/sync-governor-size.XXXXXX")
  trap 'rm -rf "$OUT"' EXIT
fi

[ -f build/index.js ] || { say "no build/index.js: run scripts/build.sh first"; exit 2; }
bash scripts/deploy-config.sh >"$OUT/wrangler.toml"
rm -rf "$OUT/dist"
if ! WRANGLER_SEND_METRICS=false timeout 180 npx --no-install wrangler deploy --dry-run \
  --config "$OUT/wrangler.toml" --outdir "$OUT/dist" >"$OUT/size.txt" 2>&1; then
  say "wrangler dry run failed:"; tail -20 "$OUT/size.txt" >&2; exit 2
fi
wasm=$(ls "$OUT"/dist/*.wasm 2>/dev/null | head -1 || true)
[ -n "$wasm" ] && stat -c %s "$wasm" >"$OUT/wasm.bytes"
line=$(grep -E 'Total Upload' "$OUT/size.txt" | tail -1 || true)
gzip=$(printf '%s' "$line" | sed -nE 's/.*gzip: *([0-9.]+) *KiB.*/\1/p')
[ -n "$gzip" ] || { say "no 'Total Upload: ... gzip: ... KiB' in wrangler's output:"; tail -20 "$OUT/size.txt" >&2; exit 2; }
echo "governor: $line"
if awk -v g="$gzip" -v l="$LIMIT" 'BEGIN { exit !(g > l) }'; then
  echo "governor: gzip: $gzip KiB, over the $LIMIT KiB sanity gate"
  exit 1
fi
echo "governor: gzip: $gzip KiB (sanity gate $LIMIT KiB)"
