#!/usr/bin/env bash
# Deterministic simulation of the account, beyond the 32 seeds `cargo test`
# runs: scripts/dst.sh N [STEPS] runs N more seeds (release mode), starting
# at DST_BASE (default: a random base, printed so the run can be repeated).
#   DST_STRICT=1 scripts/dst.sh 50     also trigger the known core bugs
#   DST_SEED=S scripts/dst.sh          replay one seed (prints its minimal history on failure)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100}"
steps="${2:-${DST_STEPS:-2000}}"
if [[ -z "${DST_SEED:-}" ]]; then
  base="${DST_BASE:-$(( (RANDOM << 15 | RANDOM) + 1000 ))}"
  printf '[dst] %s seeds from %s, %s steps each%s\n' "$n" "$base" "$steps" "${DST_STRICT:+ (strict)}" >&2
  export DST_BASE="$base" DST_SEEDS="$n"
else
  printf '[dst] replaying seed %s, %s steps%s\n' "$DST_SEED" "$steps" "${DST_ONLY:+ (only steps $DST_ONLY)}" >&2
fi
export DST_STEPS="$steps"
exec cargo test --release -p governor-core --test dst -- --nocapture --test-threads=1 simulated_histories_keep_every_invariant
