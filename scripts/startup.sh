#!/usr/bin/env bash
# The startup gate: what the platform limits (1 s of startup per isolate), in
# place of a bundle-size budget. Measures the built Worker (build/) offline
# with `wrangler check startup` (bench/startup.mjs: the median span of the
# startup CPU profile over STARTUP_RUNS runs, default 5, beside a trivial JS
# Worker measured the same way) and exits 1 when the median is over
# STARTUP_LIMIT_MS (default 200 ms: a fifth of the platform's limit; the
# governor measures about 30 ms here, as much as the trivial JS Worker, on a
# loaded 2-core machine). Exits 2 when the measurement fails. Does not build.
#   bash scripts/startup.sh [DIR]     DIR keeps startup.json and startup.txt
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=${STARTUP_LIMIT_MS:-200}
say() { printf '\033[1m[startup]\033[0m %s\n' "$*" >&2; }
if [ -n "${1:-}" ]; then
  OUT=$1; mkdir -p "$OUT"
else
  OUT=$(mktemp -d "${TMPDIR:-/tmp}/sync-governor-startup.XXXXXX")
  trap 'rm -rf "$OUT"' EXIT
fi
[ -f build/index.js ] || { say "no build/index.js: run scripts/build.sh first"; exit 2; }
bash scripts/deploy-config.sh >"$OUT/startup.toml"
node bench/startup.mjs "$OUT/startup.toml" "$OUT/startup.json" "${STARTUP_RUNS:-5}" | tee "$OUT/startup.txt" ||
  { say "the measurement failed"; exit 2; }
ms=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).governor.spanMs)' "$OUT/startup.json")
if awk -v m="$ms" -v l="$LIMIT" 'BEGIN { exit !(m > l) }'; then
  echo "governor: startup $ms ms, over the $LIMIT ms gate"
  exit 1
fi
echo "governor: startup $ms ms (gate $LIMIT ms; the platform's limit is 1000 ms)"
