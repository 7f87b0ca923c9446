#!/usr/bin/env bash
# Prints a copy of wrangler.toml for measuring the built Worker offline
# (scripts/size.sh, scripts/startup.sh): without [build] (the Worker is
# already built: nothing rebuilds) and with absolute paths (main, and an [assets]
# directory if there is one), so the copy may live anywhere.
#   bash scripts/deploy-config.sh > DIR/wrangler.toml
set -euo pipefail
cd "$(dirname "$0")/.."
awk -v root="$PWD" '
  /^\[/ { section = $0 }
  /^\[build\]/ { skip = 1; next }
  /^\[/ { skip = 0 }
  skip { next }
  /^main *=/ { m = $0; sub(/^main *= *"/, "", m); sub(/".*$/, "", m); print "main = \"" root "/" m "\""; next }
  section == "[assets]" && /^directory *=/ {
    dir = $0; sub(/^directory *= *"/, "", dir); sub(/".*$/, "", dir); sub(/^\.\//, "", dir)
    if (dir !~ /^\//) dir = root "/" dir
    print "directory = \"" dir "\""; next
  }
  { print }' wrangler.toml
